//! The rke and rke2 stand-ins (`tests/k8s/standin/`), as the artifact mirror serves them: they
//! take exactly the arguments graphrun uses and refuse anything else, and they refuse a wrong
//! `cluster.yml` / `config.yaml` with the real tool's message before touching anything. On the
//! lab, `rke up` brings up the real control plane on its host, writes the kubeconfig and state
//! where RKE does, and registers cluster.yml's nodes Ready. Skipped unless GRAPHRUN_MIRROR_DIR
//! is set (`eval "$(tests/k8s/cluster.sh env)"`); CI=true makes that an error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{skip, ssh_as_root};

/// The releases the stand-ins are published as (tests/k8s/build.sh).
const RKE_VERSION: &str = "v1.8.5";
const RKE2_VERSION: &str = "v1.34.5+rke2r1";

fn mirror_dir() -> Option<PathBuf> {
    let Ok(dir) = std::env::var("GRAPHRUN_MIRROR_DIR") else {
        skip(
            "artifact mirror",
            "tests/k8s/cluster.sh up; eval \"$(tests/k8s/cluster.sh env)\"",
        );
        return None;
    };
    Some(dir.into())
}

fn rke_binary(mirror: &Path) -> PathBuf {
    mirror.join(format!(
        "github.com/rancher/rke/releases/download/{RKE_VERSION}/rke_linux-amd64"
    ))
}

/// `bin/rke2` and the units, unpacked from the mirror's tarball into `dir`.
fn unpack_rke2(mirror: &Path, dir: &Path) -> PathBuf {
    let tarball = mirror.join(format!(
        "github.com/rancher/rke2/releases/download/{RKE2_VERSION}/rke2.linux-amd64.tar.gz"
    ));
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

/// The tarball unpacks into /usr/local as rke2's does: the binary, and the units that run
/// `rke2 server` / `rke2 agent` as Type=notify services.
#[test]
fn rke2_tarball_has_upstream_s_install_layout_and_units() {
    let Some(mirror) = mirror_dir() else { return };
    let dir = tempfile::tempdir().unwrap();
    unpack_rke2(&mirror, dir.path());
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

/// `rke up` on the control-plane host (h4), as graphrun runs it there: the node is reached over
/// SSH with cluster.yml's key, the real control plane answers, the kubeconfig and state land
/// beside cluster.yml (0600), the kubeconfig names the host's address and works from this
/// machine, and the node is Ready under its hostname_override. A second `up` succeeds too.
#[test]
fn rke_up_on_a_lab_host_writes_a_working_kubeconfig_and_registers_the_nodes() {
    let Some(mirror) = mirror_dir() else { return };
    let (Ok(api), Ok(key), Ok(bin)) = (
        std::env::var("GRAPHRUN_K8S_API"),
        std::env::var("GRAPHRUN_LAB_KEY"),
        std::env::var("GRAPHRUN_K8S_BIN"),
    ) else {
        skip(
            "control plane",
            "eval \"$(tests/lab/lab.sh env)\"; eval \"$(tests/k8s/cluster.sh env)\"",
        );
        return;
    };
    let host = api
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let key = Path::new(&key);
    let root = "/root/graphrun-standin-test";
    let on_host = |command: &str| {
        let output = ssh_as_root(key, &host, command);
        assert!(output.status.success(), "{command}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    // The stand-in and a key of its own, authorized on the host (what the rke plugin's steps do).
    on_host(&format!(
        "rm -rf {root} && mkdir -p {root} /root/.ssh \
         && ssh-keygen -q -t ed25519 -N '' -f {root}/id_ed25519 \
         && cat {root}/id_ed25519.pub >> /root/.ssh/authorized_keys"
    ));
    let upload = Command::new("ssh")
        .args(["-F", "/dev/null", "-i"])
        .arg(key)
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
        .arg(format!("root@{host}"))
        .arg(format!("cat > {root}/rke"))
        .stdin(std::fs::File::open(rke_binary(&mirror)).unwrap())
        .output()
        .unwrap();
    assert!(upload.status.success(), "{upload:?}");
    on_host(&format!("chmod 0755 {root}/rke"));
    let cluster = format!(
        "nodes:\n- address: {host}\n  user: root\n  role: [controlplane, etcd, worker]\n  \
         hostname_override: standin-master\nkubernetes_version: v1.32.5-rancher1-1\n\
         ssh_key_path: {root}/id_ed25519\n"
    );
    on_host(&format!("cat > {root}/cluster.yml <<'EOF'\n{cluster}EOF"));
    for _ in 0..2 {
        on_host(&format!("cd {root} && ./rke up --config cluster.yml"));
    }
    let modes = on_host(&format!(
        "stat -c '%a %n' {root}/kube_config_cluster.yml {root}/cluster.rkestate"
    ));
    assert_eq!(
        modes,
        format!("600 {root}/kube_config_cluster.yml\n600 {root}/cluster.rkestate\n")
    );
    let kubeconfig = on_host(&format!("cat {root}/kube_config_cluster.yml"));
    assert!(
        kubeconfig.contains(&format!("server: \"https://{host}:6443\"")),
        "{kubeconfig}"
    );
    let local = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(local.path(), &kubeconfig).unwrap();
    let node = Command::new(Path::new(&bin).join("kubectl"))
        .arg("--kubeconfig")
        .arg(local.path())
        .args(["get", "node", "standin-master", "-o"])
        .arg("jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.metadata.labels}")
        .output()
        .unwrap();
    let node = String::from_utf8_lossy(&node.stdout);
    assert!(node.starts_with("True "), "{node}");
    assert!(
        node.contains("\"node-role.kubernetes.io/controlplane\":\"true\""),
        "{node}"
    );
    on_host(&format!(
        "grep -vF \"$(cat {root}/id_ed25519.pub)\" /root/.ssh/authorized_keys > {root}/keys; \
         cat {root}/keys > /root/.ssh/authorized_keys && rm -rf {root}"
    ));
}
