//! The test harness's artifact mirror (`tests/k8s/mirror.sh`, served by `tests/k8s/cluster.sh up`
//! from the control-plane host over the lab network): every artifact is where its upstream
//! release server publishes it, its bytes match its checksum file in the upstream format, and the
//! binaries inside are the real ones. Skipped unless GRAPHRUN_MIRROR is set
//! (`eval "$(tests/k8s/cluster.sh env)"`); CI=true makes a missing mirror an error.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::support::skip;

/// The versions of the harness's binaries (tests/k8s/build.sh).
const KUBECTL_VERSION: &str = "v1.34.5";
const HELM3_VERSION: &str = "v3.19.0";
const HELM4_VERSION: &str = "v4.3.1";

fn mirror() -> Option<String> {
    let Ok(mirror) = std::env::var("GRAPHRUN_MIRROR") else {
        skip(
            "artifact mirror",
            "tests/k8s/cluster.sh up; eval \"$(tests/k8s/cluster.sh env)\"",
        );
        return None;
    };
    Some(mirror)
}

/// GET `url` (curl, failing on HTTP errors); its body.
fn fetch(url: &str) -> Vec<u8> {
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--fail",
            "--max-time",
            "60",
            url,
        ])
        .output()
        .expect("run curl");
    assert!(
        output.status.success(),
        "GET {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The hash a `sha256sum`-format file (`HASH  NAME` lines) gives for `name`.
fn sha256sum_entry(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|line| {
            let (hash, file) = line.split_once(char::is_whitespace)?;
            (file.trim_start().trim_start_matches('*') == name).then(|| hash.to_string())
        })
        .unwrap_or_else(|| panic!("no entry for {name} in:\n{text}"))
}

/// Runs `binary ARGS` and returns its stdout.
fn run(binary: &Path, args: &[&str]) -> String {
    let output = Command::new(binary)
        .args(args)
        .output()
        .expect("run binary");
    assert!(output.status.success(), "{binary:?} {args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("utf-8 output")
}

#[test]
fn kubectl_is_served_at_its_dl_k8s_io_path_with_its_lone_hash_checksum() {
    let Some(mirror) = mirror() else { return };
    let url = format!("{mirror}/dl.k8s.io/release/{KUBECTL_VERSION}/bin/linux/amd64/kubectl");
    let binary = fetch(&url);
    let checksum = String::from_utf8(fetch(&format!("{url}.sha256"))).unwrap();
    assert_eq!(
        checksum.trim(),
        sha256_hex(&binary),
        "dl.k8s.io's .sha256 is the hash alone"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubectl");
    std::fs::write(&path, &binary).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let version = run(&path, &["version", "--client", "-o", "json"]);
    let version: serde_json::Value = serde_json::from_str(&version).unwrap();
    assert_eq!(version["clientVersion"]["gitVersion"], KUBECTL_VERSION);
}

/// Helm's release tarball as get.helm.sh publishes it: `linux-amd64/helm` inside, a
/// `.sha256sum` beside it naming the tarball, the real Helm of that version.
fn helm_tarball_is_served_as_upstream(version: &str) {
    let Some(mirror) = mirror() else { return };
    let name = format!("helm-{version}-linux-amd64.tar.gz");
    let url = format!("{mirror}/get.helm.sh/{name}");
    let tarball = fetch(&url);
    let checksum = String::from_utf8(fetch(&format!("{url}.sha256sum"))).unwrap();
    assert_eq!(sha256sum_entry(&checksum, &name), sha256_hex(&tarball));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(&name), &tarball).unwrap();
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(dir.path().join(&name))
        .arg("-C")
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let helm = dir.path().join("linux-amd64/helm");
    assert_eq!(
        run(&helm, &["version", "--template", "{{.Version}}"]),
        version
    );
}

#[test]
fn helm3_tarball_is_served_as_get_helm_sh_publishes_it() {
    helm_tarball_is_served_as_upstream(HELM3_VERSION);
}

#[test]
fn helm4_tarball_is_served_as_get_helm_sh_publishes_it() {
    helm_tarball_is_served_as_upstream(HELM4_VERSION);
}

/// The local folder (GRAPHRUN_MIRROR_DIR, for air-gapped `dir` tests) has the same layout and
/// bytes as the mirror served over HTTP; a path the mirror lacks is an HTTP error, not a page.
#[test]
fn the_local_mirror_folder_has_the_served_layout_and_a_missing_path_fails() {
    let Some(mirror) = mirror() else { return };
    let dir = std::env::var("GRAPHRUN_MIRROR_DIR").expect("GRAPHRUN_MIRROR_DIR (cluster.sh env)");
    let path = format!("get.helm.sh/helm-{HELM3_VERSION}-linux-amd64.tar.gz.sha256sum");
    assert_eq!(
        std::fs::read(Path::new(&dir).join(&path)).unwrap(),
        fetch(&format!("{mirror}/{path}"))
    );
    let missing = Command::new("curl")
        .args(["--silent", "--fail", "--max-time", "10"])
        .arg(format!(
            "{mirror}/get.helm.sh/helm-v0.0.0-linux-amd64.tar.gz"
        ))
        .output()
        .unwrap();
    assert!(!missing.status.success(), "a missing artifact is a 404");
}

/// The rke and rke2 stand-ins at their GitHub release paths (rke2's `+` spelt `%2B`, as in its
/// upstream URLs), each listed in its release's checksum file.
#[test]
fn rke_and_rke2_are_served_at_their_release_paths_with_their_checksum_lists() {
    let Some(mirror) = mirror() else { return };
    let releases = [
        (
            "github.com/rancher/rke/releases/download/v1.8.5",
            "rke_linux-amd64",
            "sha256sum.txt",
        ),
        (
            "github.com/rancher/rke2/releases/download/v1.34.5%2Brke2r1",
            "rke2.linux-amd64.tar.gz",
            "sha256sum-amd64.txt",
        ),
    ];
    for (release, name, sums) in releases {
        let file = fetch(&format!("{mirror}/{release}/{name}"));
        let sums = String::from_utf8(fetch(&format!("{mirror}/{release}/{sums}"))).unwrap();
        assert_eq!(sha256sum_entry(&sums, name), sha256_hex(&file), "{name}");
    }
}
