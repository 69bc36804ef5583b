//! Where the cluster tools' releases live upstream, and their checksum files, so a user names
//! only a version (and an air-gapped user only a mirror: the engine maps these URLs to it).
//!
//! ```
//! let kubectl = graphrun_plugin_kit::artifacts::kubectl("1.34.5", "x86_64").unwrap();
//! assert_eq!(kubectl.url, "https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl");
//! let op = kubectl.to("/usr/local/bin/kubectl").with_mode("0755");
//! ```

use graphrun_plugin_api::{Checksum, Op, PluginError};

/// A release file: its upstream URL and where its sha256 comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    /// The upstream URL.
    pub url: String,
    /// The checksum file (or pinned sha256) that verifies it.
    pub checksum: Checksum,
}

impl Download {
    /// The artifact op that puts this file at `path` on the host.
    pub fn to(&self, path: &str) -> Op {
        Op::artifact(&self.url, self.checksum.clone(), path)
    }
}

/// kubectl: the binary itself, with dl.k8s.io's `.sha256` (a lone hash) beside it.
pub fn kubectl(version: &str, arch: &str) -> Result<Download, PluginError> {
    let (version, arch) = release("kubectl", version, arch, KUBERNETES_ARCHES)?;
    let url = format!("https://dl.k8s.io/release/{version}/bin/linux/{arch}/kubectl");
    Ok(beside(url, ".sha256"))
}

/// Helm 3 or 4 (one pattern for both): the release tarball, with its `.sha256sum` beside it.
/// The binary is [`helm_in_tarball`] inside.
pub fn helm(version: &str, arch: &str) -> Result<Download, PluginError> {
    let (version, arch) = release("helm", version, arch, HELM_ARCHES)?;
    let url = format!("https://get.helm.sh/helm-{version}-linux-{arch}.tar.gz");
    Ok(beside(url, ".sha256sum"))
}

/// The helm binary's path inside its release tarball (`linux-amd64/helm`).
pub fn helm_in_tarball(arch: &str) -> Result<String, PluginError> {
    let arch = go_arch("helm", arch, HELM_ARCHES)?;
    Ok(format!("linux-{arch}/helm"))
}

/// RKE (RKE1): the binary, listed in its release's `sha256sum.txt`.
pub fn rke(version: &str, arch: &str) -> Result<Download, PluginError> {
    let (version, arch) = release("rke", version, arch, RANCHER_ARCHES)?;
    let base = format!("https://github.com/rancher/rke/releases/download/{version}");
    Ok(listed(&base, &format!("rke_linux-{arch}"), "sha256sum.txt"))
}

/// RKE2: the tarball (`bin/rke2`, units, scripts), listed in `sha256sum-ARCH.txt`.
pub fn rke2(version: &str, arch: &str) -> Result<Download, PluginError> {
    rke2_file(version, arch, |arch| format!("rke2.linux-{arch}.tar.gz"))
}

/// RKE2's images archive for air-gapped sites, listed in `sha256sum-ARCH.txt`.
pub fn rke2_images(version: &str, arch: &str) -> Result<Download, PluginError> {
    rke2_file(version, arch, |arch| {
        format!("rke2-images.linux-{arch}.tar.zst")
    })
}

fn rke2_file(
    version: &str,
    arch: &str,
    name: impl Fn(&str) -> String,
) -> Result<Download, PluginError> {
    let (version, arch) = release("rke2", version, arch, RANCHER_ARCHES)?;
    // GitHub's release paths spell RKE2's `+` (`v1.31.4+rke2r1`) as `%2B`, as its installer does.
    let version = version.replace('+', "%2B");
    let base = format!("https://github.com/rancher/rke2/releases/download/{version}");
    Ok(listed(&base, &name(arch), &format!("sha256sum-{arch}.txt")))
}

/// Architectures Kubernetes publishes client binaries for.
const KUBERNETES_ARCHES: &[&str] = &["amd64", "arm64", "arm", "ppc64le", "s390x", "386"];
/// Architectures Helm publishes Linux tarballs for.
const HELM_ARCHES: &[&str] = &["amd64", "arm64", "arm", "ppc64le", "s390x", "386"];
/// Architectures RKE and RKE2 publish Linux builds for.
const RANCHER_ARCHES: &[&str] = &["amd64", "arm64"];

/// A file whose checksum file has the same URL plus `suffix`.
fn beside(url: String, suffix: &str) -> Download {
    let name = url.rsplit('/').next().unwrap_or_default().to_string();
    let checksum = Checksum::file(&format!("{url}{suffix}"), &name);
    Download { url, checksum }
}

/// The file `name` of a release at `base`, listed in the release's checksum file `sums`.
fn listed(base: &str, name: &str, sums: &str) -> Download {
    Download {
        url: format!("{base}/{name}"),
        checksum: Checksum::file(&format!("{base}/{sums}"), name),
    }
}

/// The version with its `v` (as release paths spell it) and the Go architecture name.
fn release(
    tool: &str,
    version: &str,
    arch: &str,
    arches: &[&str],
) -> Result<(String, &'static str), PluginError> {
    let bare = version.strip_prefix('v').unwrap_or(version);
    let plausible = bare.starts_with(|c: char| c.is_ascii_digit())
        && bare
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    if !plausible {
        return Err(PluginError::param(
            "version",
            format!("`{version}` is not a {tool} version (such as `1.2.3` or `v1.2.3`)"),
        ));
    }
    Ok((format!("v{bare}"), go_arch(tool, arch, arches)?))
}

/// The Go architecture name for `arch` (a `uname -m` or Go name), if `tool` is built for it.
fn go_arch(tool: &str, arch: &str, arches: &[&str]) -> Result<&'static str, PluginError> {
    match crate::arch::go(arch) {
        Some(go) if arches.contains(&go) => Ok(go),
        _ => Err(PluginError::new(format!(
            "{tool} publishes no Linux build for the architecture `{arch}` (only {})",
            arches.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(download: Result<Download, PluginError>) -> String {
        let download = download.unwrap();
        match download.checksum {
            Checksum::File { url, entry } => format!("{}\n  {url} [{entry}]\n", download.url),
            Checksum::Sha256(hex) => format!("{} {hex}\n", download.url),
        }
    }

    #[test]
    fn upstream_urls_and_checksum_files_by_version_and_architecture() {
        let text = [
            line(kubectl("1.34.5", "x86_64")),
            line(kubectl("v1.33.0", "arm64")),
            line(helm("3.16.0", "amd64")),
            line(helm("v4.0.0", "aarch64")),
            line(rke("1.8.7", "amd64")),
            line(rke2("v1.31.4+rke2r1", "x86_64")),
            line(rke2_images("1.31.4+rke2r1", "arm64")),
        ]
        .concat();
        assert_eq!(
            text,
            "\
https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl
  https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl.sha256 [kubectl]
https://dl.k8s.io/release/v1.33.0/bin/linux/arm64/kubectl
  https://dl.k8s.io/release/v1.33.0/bin/linux/arm64/kubectl.sha256 [kubectl]
https://get.helm.sh/helm-v3.16.0-linux-amd64.tar.gz
  https://get.helm.sh/helm-v3.16.0-linux-amd64.tar.gz.sha256sum [helm-v3.16.0-linux-amd64.tar.gz]
https://get.helm.sh/helm-v4.0.0-linux-arm64.tar.gz
  https://get.helm.sh/helm-v4.0.0-linux-arm64.tar.gz.sha256sum [helm-v4.0.0-linux-arm64.tar.gz]
https://github.com/rancher/rke/releases/download/v1.8.7/rke_linux-amd64
  https://github.com/rancher/rke/releases/download/v1.8.7/sha256sum.txt [rke_linux-amd64]
https://github.com/rancher/rke2/releases/download/v1.31.4%2Brke2r1/rke2.linux-amd64.tar.gz
  https://github.com/rancher/rke2/releases/download/v1.31.4%2Brke2r1/sha256sum-amd64.txt [rke2.linux-amd64.tar.gz]
https://github.com/rancher/rke2/releases/download/v1.31.4%2Brke2r1/rke2-images.linux-arm64.tar.zst
  https://github.com/rancher/rke2/releases/download/v1.31.4%2Brke2r1/sha256sum-arm64.txt [rke2-images.linux-arm64.tar.zst]
"
        );
        assert_eq!(helm_in_tarball("x86_64").unwrap(), "linux-amd64/helm");
    }

    #[test]
    fn unknown_architectures_and_odd_versions_are_refused() {
        let err = rke2("1.31.4+rke2r1", "ppc64le").unwrap_err();
        assert_eq!(
            err.message,
            "rke2 publishes no Linux build for the architecture `ppc64le` (only amd64, arm64)"
        );
        for version in ["", "latest", "1.2/../../x", "v1.2 3"] {
            let err = kubectl(version, "amd64").unwrap_err();
            assert_eq!(err.param.as_deref(), Some("version"), "{version}");
        }
    }
}
