//! Where Docker comes from: Docker's repository, the distribution, or local `.deb` files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Op, PlanRequest, PluginError, Probe, Run};
use graphrun_plugin_kit::os::Os;
use graphrun_plugin_kit::params::Args;
use graphrun_plugin_kit::{apt, arch, probe};

/// What Docker's documentation installs from its repository.
pub const DOCKER_CE_PACKAGES: [&str; 5] = [
    "docker-ce",
    "docker-ce-cli",
    "containerd.io",
    "docker-buildx-plugin",
    "docker-compose-plugin",
];
/// Unofficial packages Docker's documentation removes first (they conflict with docker-ce).
const CONFLICTING: [&str; 7] = [
    "docker.io",
    "docker-doc",
    "docker-compose",
    "docker-compose-v2",
    "podman-docker",
    "containerd",
    "runc",
];
/// The distribution's engine, and its client where a release ships it apart (Debian 13).
const DISTRO_PACKAGES: [&str; 2] = ["docker.io", "docker-cli"];
/// Probe: whether the host's apt knows a `docker-cli` package.
pub const PROBE_CLI_PACKAGE: &str = "docker_cli_package";

/// What fetching the repository's key needs.
const KEY_TOOLS: [&str; 2] = ["ca-certificates", "curl"];
const KEYRING: &str = "/etc/apt/keyrings/docker.asc";
const SOURCES: &str = "/etc/apt/sources.list.d/docker.sources";
/// Where offline packages are uploaded on the host.
const UPLOAD_DIR: &str = "/var/cache/graphrun/docker-debs";

/// The `source` parameter and what goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Docker's apt repository (deb822 source, keyring), optionally pinned and mirrored.
    DockerCe {
        /// `version`, as given.
        version: Option<String>,
        /// `mirror`, without a trailing slash.
        mirror: String,
    },
    /// The distribution's `docker.io`.
    Distro,
    /// `.deb` files from a local folder (relative to the playbook).
    Packages {
        /// `packages_dir`.
        dir: String,
    },
}

impl Source {
    /// Reads `source` and the parameters that belong to it.
    pub fn from_args(args: &Args) -> Result<Self, PluginError> {
        let source = args
            .choice("source", &["docker-ce", "distro", "packages"])?
            .unwrap_or("docker-ce");
        let only = |name: &str, with: &str| -> Result<(), PluginError> {
            if args.is_set(name) && source != with {
                return Err(PluginError::param(
                    name,
                    format!("goes with source = \"{with}\""),
                ));
            }
            Ok(())
        };
        only("version", "docker-ce")?;
        only("mirror", "docker-ce")?;
        only("packages_dir", "packages")?;
        Ok(match source {
            "distro" => Source::Distro,
            "packages" => Source::Packages {
                dir: args
                    .str("packages_dir")?
                    .ok_or_else(|| {
                        PluginError::param(
                            "source",
                            "\"packages\" needs `packages_dir`, a local folder of .deb files",
                        )
                    })?
                    .to_string(),
            },
            _ => {
                let version = args.str("version")?.map(str::to_string);
                if let Some(v) = &version {
                    if v.is_empty()
                        || !v
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b".:~+-".contains(&b))
                    {
                        return Err(PluginError::param(
                            "version",
                            format!("`{v}` is not a version such as \"28.0.4\""),
                        ));
                    }
                }
                let mirror = args
                    .required_str("mirror")?
                    .trim_end_matches('/')
                    .to_string();
                let url_ok = (mirror.starts_with("https://") || mirror.starts_with("http://"))
                    && !mirror.contains(char::is_whitespace);
                if !url_ok && !args.is_unrendered("mirror") {
                    return Err(PluginError::param(
                        "mirror",
                        format!("`{mirror}` is not an http(s) URL"),
                    ));
                }
                Source::DockerCe { version, mirror }
            }
        })
    }

    /// Probes this source needs besides the installed packages.
    pub fn probes(&self) -> Vec<Probe> {
        match self {
            Source::Distro => vec![Probe::run(PROBE_CLI_PACKAGE, Run::Shell("apt-cache show --no-all-versions docker-cli 2>/dev/null | grep -qx 'Package: docker-cli'".into()))],
            _ => Vec::new(),
        }
    }

    /// Every package whose state the plan depends on (probed first).
    pub fn package_names(&self, request: &PlanRequest) -> Result<Vec<String>, PluginError> {
        let mut names: Vec<String> = match self {
            Source::DockerCe { .. } => DOCKER_CE_PACKAGES
                .iter()
                .chain(&CONFLICTING)
                .chain(&KEY_TOOLS)
                .map(|s| s.to_string())
                .collect(),
            Source::Distro => DISTRO_PACKAGES
                .iter()
                .chain(&DOCKER_CE_PACKAGES)
                .map(|s| s.to_string())
                .collect(),
            Source::Packages { dir } => local_debs(request, dir)?
                .into_iter()
                .map(|(name, _)| name)
                .collect(),
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The ops that put the packages on the host, given what is installed.
    pub fn install_ops(
        &self,
        request: &PlanRequest,
        os: &Os,
        installed: &BTreeMap<String, String>,
    ) -> Result<Vec<Op>, PluginError> {
        let present = |names: &[&str]| -> Vec<String> {
            names
                .iter()
                .filter(|n| installed.contains_key(**n))
                .map(|n| n.to_string())
                .collect()
        };
        let mut ops = Vec::new();
        match self {
            Source::DockerCe { version, mirror } => {
                let conflicting = present(&CONFLICTING);
                if !conflicting.is_empty() {
                    ops.push(apt::remove(&conflicting));
                }
                let tools: Vec<String> = KEY_TOOLS
                    .iter()
                    .filter(|t| !installed.contains_key(**t))
                    .map(|t| t.to_string())
                    .collect();
                if !tools.is_empty() {
                    ops.push(apt::install(&tools));
                }
                let distro = match os.id.as_str() {
                    "debian" | "ubuntu" => os.id.as_str(),
                    _ => return Err(PluginError::new(format!(
                        "host `{}` runs {}: Docker's repository has Debian and Ubuntu packages (use source = \"distro\")",
                        request.host.name, os.describe()
                    ))),
                };
                let url = format!("{mirror}/linux/{distro}");
                ops.push(Op::command_creating(
                    Run::Shell(format!(
                        "install -m 0755 -d /etc/apt/keyrings && curl -fsSL {} -o {KEYRING} && chmod a+r {KEYRING}",
                        quote(&format!("{url}/gpg"))
                    )),
                    KEYRING,
                ));
                ops.push(Op::file(SOURCES, &sources_file(&url, os)?).with_mode("0644"));
                let pin = version.as_deref().map(|v| full_version(v, os));
                let wanted: Vec<String> = DOCKER_CE_PACKAGES
                    .iter()
                    .map(|p| match (*p, &pin) {
                        ("docker-ce" | "docker-ce-cli", Some(v)) => apt::pinned(p, Some(v)),
                        _ => p.to_string(),
                    })
                    .collect();
                let missing = wanted.iter().any(|w| {
                    let (name, version) = w.split_once('=').unwrap_or((w, ""));
                    !installed
                        .get(name)
                        .is_some_and(|have| version.is_empty() || have == version)
                });
                if missing {
                    ops.push(apt::install(&wanted));
                }
            }
            Source::Distro => {
                let docker_ce = present(&DOCKER_CE_PACKAGES);
                if !docker_ce.is_empty() {
                    ops.push(apt::remove(&docker_ce));
                }
                let separate_cli = probe::succeeded(request, PROBE_CLI_PACKAGE);
                let wanted: Vec<String> = DISTRO_PACKAGES
                    .iter()
                    .filter(|p| **p != "docker-cli" || separate_cli)
                    .map(|p| p.to_string())
                    .collect();
                if wanted.iter().any(|p| !installed.contains_key(p)) {
                    ops.push(apt::install(&wanted));
                }
            }
            Source::Packages { dir } => {
                let debs = local_debs(request, dir)?;
                if debs.iter().any(|(name, _)| !installed.contains_key(name)) {
                    ops.push(Op::directory(UPLOAD_DIR).with_mode("0700"));
                    let mut remote = Vec::new();
                    for (_, file) in &debs {
                        let name = file
                            .file_name()
                            .and_then(|n| n.to_str())
                            .unwrap_or_default();
                        let target = format!("{UPLOAD_DIR}/{name}");
                        ops.push(Op::Upload {
                            source: file.display().to_string(),
                            path: target.clone(),
                            sha256: None,
                            attrs: Default::default(),
                        });
                        remote.push(target);
                    }
                    let names: Vec<String> = debs.into_iter().map(|(name, _)| name).collect();
                    ops.push(apt::install_files(&remote, &names));
                }
            }
        }
        Ok(ops)
    }
}

/// `5:28.0.4-1~debian.12~bookworm` from `28.0.4`, as Docker names its builds; a full apt
/// version (with `:` or `~`) is kept.
fn full_version(version: &str, os: &Os) -> String {
    if version.contains([':', '~']) {
        version.to_string()
    } else {
        format!("5:{version}-1~{}.{}~{}", os.id, os.version, os.codename)
    }
}

/// The deb822 source Docker documents.
fn sources_file(url: &str, os: &Os) -> Result<String, PluginError> {
    let arch = arch::debian(&os.arch).ok_or_else(|| {
        PluginError::new(format!(
            "Docker publishes no packages for the architecture `{}`",
            os.arch
        ))
    })?;
    Ok(format!(
        "# Managed by graphrun; changes are overwritten.\n\
         Types: deb\n\
         URIs: {url}\n\
         Suites: {codename}\n\
         Components: stable\n\
         Architectures: {arch}\n\
         Signed-By: {KEYRING}\n",
        codename = os.codename
    ))
}

/// The `.deb` files of the local folder, with their package names (`NAME_VERSION_ARCH.deb`).
///
/// The one place a plugin reads the control machine: the engine has no "upload a folder" op,
/// so the plan must name each file. Reading a folder's listing is local and read-only.
fn local_debs(request: &PlanRequest, dir: &str) -> Result<Vec<(String, PathBuf)>, PluginError> {
    let folder = Path::new(&request.playbook_dir).join(dir);
    let entries = std::fs::read_dir(&folder).map_err(|err| {
        PluginError::param(
            "packages_dir",
            format!("cannot read {}: {err}", folder.display()),
        )
    })?;
    let mut debs: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "deb"))
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.split('_').next()?.to_string();
            Some((name, path))
        })
        .collect();
    debs.sort();
    if debs.is_empty() {
        return Err(PluginError::param(
            "packages_dir",
            format!("{} holds no .deb files", folder.display()),
        ));
    }
    Ok(debs)
}
