//! The rke and rke2 stand-ins (`tests/k8s/standin/`), as the artifact mirror serves them: they
//! take exactly the arguments graphrun uses and refuse anything else, and they refuse a wrong
//! `cluster.yml` / `config.yaml` with the real tool's message before touching anything (what
//! they do on lab hosts: `standin_lab`). Skipped unless GRAPHRUN_MIRROR_DIR is set
//! (`eval "$(tests/k8s/cluster.sh env)"`); CI=true makes that an error.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::skip;

/// The releases the stand-ins are published as (tests/k8s/build.sh).
pub const RKE_VERSION: &str = "v1.8.5";
pub const RKE2_VERSION: &str = "v1.34.5+rke2r1";

pub fn mirror_dir() -> Option<PathBuf> {
    let Ok(dir) = std::env::var("GRAPHRUN_MIRROR_DIR") else {
        skip(
            "artifact mirror",
            "tests/k8s/cluster.sh up; eval \"$(tests/k8s/cluster.sh env)\"",
        );
        return None;
    };
    Some(dir.into())
}

pub fn rke_binary(mirror: &Path) -> PathBuf {
    mirror.join(format!(
        "github.com/rancher/rke/releases/download/{RKE_VERSION}/rke_linux-amd64"
    ))
}

pub fn rke2_tarball(mirror: &Path) -> PathBuf {
    mirror.join(format!(
        "github.com/rancher/rke2/releases/download/{RKE2_VERSION}/rke2.linux-amd64.tar.gz"
    ))
}

/// `bin/rke2` and the units, unpacked from the mirror's tarball into `dir`.
fn unpack_rke2(mirror: &Path, dir: &Path) -> PathBuf {
    let tarball = rke2_tarball(mirror);
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir)
        .status()
        .expect("run tar");
    assert!(status.success(), "unpack {tarball:?}");
    dir.join("bin/rke2")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A cluster.yml RKE accepts: one node with every role, a second worker.
const GOOD_CLUSTER: &str = "\
nodes:
- address: 10.77.9.11
  user: root
  role: [controlplane, etcd]
  hostname_override: master
- address: 10.77.9.12
  user: root
  role: [worker]
kubernetes_version: v1.32.5-rancher1-1
ssh_key_path: /nonexistent/id_ed25519
network:
  plugin: canal
ingress:
  provider: nginx
";

/// Runs `rke up --config cluster.yml` in a folder of its own on this machine; the config must
/// be refused before any host is contacted and before any output file is written.
fn rke_up_refuses(rke: &Path, cluster: &str, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yml"), cluster).unwrap();
    let output = Command::new(rke)
        .args(["up", "--config", "cluster.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = stderr(&output);
    assert!(
        stderr.contains(&format!("FATA[0000] {message}")),
        "want {message:?} in:\n{stderr}"
    );
    assert!(!stderr.contains("Building Kubernetes cluster"), "{stderr}");
    assert!(!dir.path().join("kube_config_cluster.yml").exists());
    assert!(!dir.path().join("cluster.rkestate").exists());
}

#[test]
fn rke_refuses_each_invalid_cluster_yml_with_rke_s_own_message() {
    let Some(mirror) = mirror_dir() else { return };
    let rke = rke_binary(&mirror);
    let cases: &[(&str, &str, &str)] = &[
        (
            "address: 10.77.9.12",
            "address: ''",
            "Address for host (2) is not provided",
        ),
        (
            "  user: root\n  role: [worker]",
            "  role: [worker]",
            "User for host (2) is not provided",
        ),
        (
            "role: [worker]",
            "role: []",
            "Role for host (2) is not provided",
        ),
        (
            "role: [worker]",
            "role: [boss]",
            "Role [boss] for host (2) is not recognized",
        ),
        (
            "10.77.9.12",
            "10.77.9.11",
            "Cluster can't have duplicate node: 10.77.9.11",
        ),
        (
            "[controlplane, etcd]",
            "[controlplane]",
            "Cluster must have at least one etcd plane host",
        ),
        (
            "[controlplane, etcd]",
            "[etcd]",
            "Cluster must have at least one control plane host",
        ),
        (
            "plugin: canal",
            "plugin: cilium",
            "Network plugin [cilium] is not supported",
        ),
        (
            "provider: nginx",
            "provider: traefik",
            "Ingress controller traefik is incorrect",
        ),
        ("v1.32.5-rancher1-1", "1.32", "1.32 is not valid semver"),
        (
            "v1.32.5-rancher1-1",
            "v1.33.1-rancher1-1",
            "v1.33.1-rancher1-1 is an unsupported Kubernetes version",
        ),
        (
            "  hostname_override: master",
            "  hostname_overide: master",
            "Failed to parse cluster file: unknown key(s) [nodes[0].hostname_overide]",
        ),
        (
            "ssh_key_path:",
            "ssh_keypath:",
            "Failed to parse cluster file: unknown key(s) [ssh_keypath]",
        ),
    ];
    for (from, to, message) in cases {
        assert!(GOOD_CLUSTER.contains(from), "{from}");
        rke_up_refuses(&rke, &GOOD_CLUSTER.replacen(from, to, 1), message);
    }
}

#[test]
fn rke_takes_exactly_the_arguments_graphrun_uses() {
    let Some(mirror) = mirror_dir() else { return };
    let rke = rke_binary(&mirror);
    let version = Command::new(&rke).arg("--version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("rke version {RKE_VERSION}\n")
    );
    let refused: &[(&[&str], i32, &str)] = &[
        (
            &["up", "--config", "cluster.yml", "--update-only"],
            1,
            "Incorrect Usage: flag provided but not defined: --update-only",
        ),
        (
            &["--debug", "up"],
            1,
            "flag provided but not defined: --debug",
        ),
        (&["remove"], 1, "does not implement `rke remove`"),
        (&["upp"], 3, "No help topic for 'upp'"),
    ];
    for (args, code, message) in refused {
        let output = Command::new(&rke).args(*args).output().unwrap();
        assert_eq!(output.status.code(), Some(*code), "{args:?}: {output:?}");
        assert!(stderr(&output).contains(message), "{args:?}: {output:?}");
    }
    // `up` without --config reads ./cluster.yml, as RKE does.
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(&rke)
        .arg("up")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        stderr(&output).contains("Can not find cluster configuration file: open cluster.yml"),
        "{output:?}"
    );
}

/// Runs `rke2 ROLE` with `config` as its config.yaml (RKE2_CONFIG_FILE, which rke2 honours).
fn rke2_with_config(rke2: &Path, role: &str, config: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    Command::new(rke2)
        .arg(role)
        .env("RKE2_CONFIG_FILE", &path)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap()
}

#[test]
fn rke2_refuses_a_wrong_config_yaml_or_argument_with_rke2_s_own_message() {
    let Some(mirror) = mirror_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    let rke2 = unpack_rke2(&mirror, dir.path());
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "agent",
            "token: secret\n",
            &["FATA[0000] --server is required"],
        ),
        (
            "agent",
            "server: https://10.77.9.101:9345\n",
            &["FATA[0000] --token is required"],
        ),
        (
            "server",
            "token: secret\ncni: weave\n",
            &["invalid value weave for --cni flag"],
        ),
        (
            "server",
            "token: secret\nnode-nmae: s1\n",
            &[
                "WARN[0000] Unknown flag --node-nmae found in config.yaml, skipping",
                "refuses config.yaml keys that `rke2 server` does not know: [node-nmae]",
            ],
        ),
        // A server's setting on an agent: rke2 skips it, so graphrun must not write it there.
        (
            "agent",
            "server: https://10.77.9.101:9345\ntoken: secret\ntls-san: [x]\n",
            &["Unknown flag --tls-san found in config.yaml, skipping"],
        ),
    ];
    for (role, config, messages) in cases {
        let output = rke2_with_config(&rke2, role, config);
        assert_eq!(output.status.code(), Some(1), "{config}: {output:?}");
        for message in *messages {
            assert!(stderr(&output).contains(message), "{config}: {output:?}");
        }
    }
    let flag = Command::new(&rke2)
        .args(["server", "--cni", "canal"])
        .output()
        .unwrap();
    assert_eq!(flag.status.code(), Some(1));
    assert!(stderr(&flag).contains("Incorrect Usage: flag provided but not defined: --cni"));
    let version = Command::new(&rke2).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&version.stdout)
        .starts_with(&format!("rke2 version {RKE2_VERSION} ")));
}

/// The tarball unpacks into /usr/local as rke2's does: the binary and rke2-killall.sh, and the
/// units that run `rke2 server` / `rke2 agent` as Type=notify services.
#[test]
fn rke2_tarball_has_upstream_s_install_layout_and_units() {
    let Some(mirror) = mirror_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    unpack_rke2(&mirror, dir.path());
    let killall = std::fs::metadata(dir.path().join("bin/rke2-killall.sh")).unwrap();
    assert_eq!(killall.permissions().mode() & 0o777, 0o755);
    for role in ["server", "agent"] {
        let unit = std::fs::read_to_string(
            dir.path()
                .join(format!("lib/systemd/system/rke2-{role}.service")),
        )
        .unwrap();
        assert!(
            unit.contains(&format!("ExecStart=/usr/local/bin/rke2 {role}\n")),
            "{unit}"
        );
        assert!(unit.contains("Type=notify\n"), "{unit}");
        assert!(unit.contains("WantedBy=multi-user.target\n"), "{unit}");
    }
}
