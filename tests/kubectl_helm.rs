//! The `kubectl` and `helm` steps on lab hosts, with the real binaries from the harness's artifact
//! mirror and the real API server (`tests/k8s/cluster.sh up` on h4): kubectl installed with the
//! kubeconfig and `kubectl get nodes` answering, a checksum mismatch refused, an unchanged binary
//! not sent again, a local chart installed with Helm 3 and with Helm 4 and left alone by a second
//! apply (no new revision), its secret value in no output, state, log or process list. Skipped
//! unless GRAPHRUN_LAB_INVENTORY, GRAPHRUN_K8S_KUBECONFIG and GRAPHRUN_MIRROR are set; CI=true
//! makes them an error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{assert_exit, events, lab_env, private_inventory, ssh_as_root, statuses};

/// The harness's kubectl (tests/k8s/build.sh), served by the mirror.
const KUBECTL_VERSION: &str = "1.34.5";

struct Lab {
    dir: tempfile::TempDir,
    inventory: PathBuf,
    key: PathBuf,
    net: String,
    kubeconfig: String,
    mirror: String,
    bin: PathBuf,
}

fn lab() -> Option<Lab> {
    let [_inventory, lab_dir, net, kubeconfig, mirror, bin] = lab_env(
        [
            "GRAPHRUN_LAB_INVENTORY",
            "GRAPHRUN_LAB_DIR",
            "GRAPHRUN_LAB_NET",
            "GRAPHRUN_K8S_KUBECONFIG",
            "GRAPHRUN_MIRROR",
            "GRAPHRUN_K8S_BIN",
        ],
        "lab, control plane or artifact mirror",
        "tests/lab/lab.sh up 4; tests/k8s/cluster.sh up; eval \"$(tests/lab/lab.sh env)\" \"$(tests/k8s/cluster.sh env)\"",
    )?;
    let dir = tempfile::tempdir().unwrap();
    Some(Lab {
        inventory: private_inventory(dir.path()),
        key: Path::new(&lab_dir).join("id_ed25519"),
        net,
        kubeconfig,
        mirror,
        bin: bin.into(),
        dir,
    })
}

impl Lab {
    fn address(&self, host: &str) -> String {
        let n: u32 = host[1..].parse().expect("lab hosts are named hN");
        format!("{}.{}", self.net, 10 + n)
    }

    /// Writes `playbook.toml` (with the mirror and a cache of this test's own) in the folder.
    fn playbook(&self, steps: &str) -> PathBuf {
        let text = format!(
            "[artifacts]\nmirror = \"{}\"\ncache = \"{}\"\n\n{steps}",
            self.mirror,
            self.dir.path().join("cache").display()
        );
        let path = self.dir.path().join("playbook.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// `graphrun apply PLAYBOOK --inventory … --output json`, with extra environment.
    fn apply(&self, playbook: &Path, env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_graphrun"))
            .args(["apply", &playbook.display().to_string()])
            .arg("--inventory")
            .arg(&self.inventory)
            .args(["--output", "json"])
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// Runs `command` on a host as root, outside graphrun; its stdout (it must succeed).
    fn ssh(&self, host: &str, command: &str) -> String {
        let output = ssh_as_root(&self.key, &self.address(host), command);
        assert!(
            output.status.success(),
            "{host}: `{command}`: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The harness's own helm, on this machine, with a home of its own.
    fn helm(&self, args: &[&str]) -> String {
        let home = self.dir.path().join("helm-home");
        let output = Command::new(self.bin.join("helm3"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// A node's final status, or a failure showing the run's output.
fn node_status(output: &Output, node: &str) -> String {
    statuses(output)
        .remove(node)
        .unwrap_or_else(|| panic!("no node {node}:\n{}", all_output(output)))
}

fn all_output(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn kubectl_is_installed_from_the_mirror_with_the_kubeconfig_and_sees_the_nodes() {
    let Some(lab) = lab() else { return };
    lab.ssh("h1", "rm -rf /usr/local/bin/kubectl ~ops/.kube");
    let playbook = lab.playbook(&format!(
        "[steps.kubectl]\non = \"h1\"\nversion = \"{KUBECTL_VERSION}\"\nkubeconfig = \"{}\"\nuser = \"ops\"\n",
        lab.kubeconfig
    ));
    let first = lab.apply(&playbook, &[]);
    assert_exit(&first, 0);
    assert_eq!(node_status(&first, "kubectl@h1"), "changed");
    // No "no API server answered" or skew warning: `kubectl get nodes` ran and succeeded.
    let warnings: Vec<Value> = events(&first, "op_finished")
        .filter(|e| e["stderr"].is_string())
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");

    assert_eq!(
        lab.ssh(
            "h1",
            "stat -c '%a %U' /usr/local/bin/kubectl ~ops/.kube ~ops/.kube/config"
        ),
        "755 root\n700 ops\n600 ops\n"
    );
    // What graphrun's `kubectl get nodes` printed is the step's output `nodes`.
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(lab.dir.path().join(".graphrun/playbook/state.json")).unwrap(),
    )
    .unwrap();
    let listed = state["nodes"]["kubectl@h1"]["outputs"]["nodes"]
        .as_str()
        .unwrap_or_default();
    assert!(
        listed.starts_with("NAME ") && listed.contains("\nkwok-node-0 "),
        "{listed:?}"
    );
    let nodes = lab.ssh("h1", "su ops -c 'kubectl get nodes --no-headers'");
    assert!(
        nodes.starts_with("kwok-node-0 ") && nodes.contains(" Ready "),
        "{nodes}"
    );

    // The second apply sends nothing: the binary on the host is the same file (same inode).
    let inode = lab.ssh("h1", "stat -c %i /usr/local/bin/kubectl ~ops/.kube/config");
    let second = lab.apply(&playbook, &[]);
    assert_exit(&second, 0);
    assert_eq!(node_status(&second, "kubectl@h1"), "ok");
    assert_eq!(
        lab.ssh("h1", "stat -c %i /usr/local/bin/kubectl ~ops/.kube/config"),
        inode
    );
}

/// A playbook `NAME.toml` whose artifacts come from a local folder in the upstream layout,
/// holding the harness's kubectl as release `version` with `checksum` as its `.sha256`.
fn local_folder_playbook(
    lab: &Lab,
    name: &str,
    version: &str,
    checksum: &str,
    step: &str,
) -> PathBuf {
    let folder = lab.dir.path().join(format!("{name}-artifacts"));
    let release = folder.join(format!("dl.k8s.io/release/v{version}/bin/linux/amd64"));
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(lab.bin.join("kubectl"), release.join("kubectl")).unwrap();
    std::fs::write(release.join("kubectl.sha256"), format!("{checksum}\n")).unwrap();
    let playbook = lab.dir.path().join(format!("{name}.toml"));
    let text = format!(
        "[artifacts]\ndir = \"{}\"\ncache = \"{}\"\n\n[steps.kubectl]\non = \"h1\"\nversion = \"{version}\"\n{step}",
        folder.display(),
        lab.dir.path().join(format!("{name}-cache")).display()
    );
    std::fs::write(&playbook, text).unwrap();
    playbook
}

#[test]
fn a_kubectl_whose_checksum_does_not_match_is_refused_before_anything_is_sent() {
    let Some(lab) = lab() else { return };
    lab.ssh("h1", "rm -rf /opt/mismatch");
    let wrong = "0".repeat(64);
    let playbook = local_folder_playbook(
        &lab,
        "mismatch",
        KUBECTL_VERSION,
        &wrong,
        "path = \"/opt/mismatch/kubectl\"\n",
    );
    let output = lab.apply(&playbook, &[]);
    assert_ne!(output.status.code(), Some(0), "{}", all_output(&output));
    let text = all_output(&output);
    assert!(text.contains(&wrong), "names the expected hash:\n{text}");
    assert_eq!(node_status(&output, "kubectl@h1"), "failed");
    assert_eq!(
        lab.ssh("h1", "ls /opt/mismatch 2>/dev/null | wc -l").trim(),
        "0"
    );
}

/// The harness's kubectl (1.34) published as 1.32: the step believes it is two minor versions
/// behind the API server (1.34) and says so, without failing.
#[test]
fn a_kubectl_two_minor_versions_from_the_server_is_a_warning() {
    use sha2::{Digest, Sha256};
    let Some(lab) = lab() else { return };
    let binary = std::fs::read(lab.bin.join("kubectl")).unwrap();
    let checksum: String = Sha256::digest(&binary)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let playbook = local_folder_playbook(
        &lab,
        "skew",
        "1.32.0",
        &checksum,
        &format!(
            "path = \"/opt/skew/kubectl\"\nkubeconfig = \"{}\"\n",
            lab.kubeconfig
        ),
    );
    let output = lab.apply(&playbook, &[]);
    assert_exit(&output, 0);
    let warnings: Vec<String> = events(&output, "op_finished")
        .filter_map(|e| e["stderr"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        warnings,
        ["warning: kubectl 1.32 is more than one minor version away from the API server (1.34): kubectl supports one either way; set version to 1.34.x"]
    );
}

/// Helm `version` on `host` installs the fixture chart (packaged, uploaded by a file step) with
/// a secret value; a second apply changes nothing and makes no new revision.
fn a_local_chart_installs_once(host: &str, version: &str, namespace: &str) {
    let Some(lab) = lab() else { return };
    let secret = format!("s3cr3t-\"{namespace}\"-<&>-{}", std::process::id());
    lab.helm(&[
        "package",
        &format!(
            "{}/tests/fixtures/charts/demo-app",
            env!("CARGO_MANIFEST_DIR")
        ),
        "-d",
        &lab.dir.path().display().to_string(),
    ]);
    let _ = Command::new(lab.bin.join("helm3"))
        .args([
            "uninstall",
            "demo",
            "-n",
            namespace,
            "--kubeconfig",
            &lab.kubeconfig,
        ])
        .output();
    lab.ssh(
        host,
        "rm -f /usr/local/bin/helm; rm -rf /var/lib/graphrun/helm ~/.config/helm",
    );
    let playbook = lab.playbook(&format!(
        r#"
[steps.kubectl]
on = "{host}"
version = "{KUBECTL_VERSION}"
kubeconfig = "{kubeconfig}"

[steps.chart]
plugin = "file"
on = "{host}"
path = "/root/demo-app-0.1.0.tgz"
source = "demo-app-0.1.0.tgz"

[steps.helm]
on = "{host}"
needs = ["kubectl", "chart"]
version = "{version}"
repositories = {{ lab = "http://{chart_host}:8879" }}

[steps.helm.charts.demo]
chart = "/root/demo-app-0.1.0.tgz"
namespace = "{namespace}"
wait = "2m"
values = {{ replicas = 2, password = {{ env = "GRAPHRUN_TEST_HELM_SECRET" }} }}
"#,
        kubeconfig = lab.kubeconfig,
        chart_host = lab.address("h4"),
    ));
    let env = [("GRAPHRUN_TEST_HELM_SECRET", secret.as_str())];

    // Every command line on the host while the first apply runs, five times a second.
    let mut watcher = Command::new("ssh")
        .args(["-i", &lab.key.display().to_string(), "-F", "/dev/null"])
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
        .arg(format!("root@{}", lab.address(host)))
        .arg("end=$(($(date +%s) + 240)); while [ $(date +%s) -lt $end ]; do ps -eo args; sleep 0.2; done")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let first = lab.apply(&playbook, &env);
    let _ = watcher.kill();
    let processes =
        String::from_utf8_lossy(&watcher.wait_with_output().unwrap().stdout).into_owned();
    assert_exit(&first, 0);
    assert_eq!(node_status(&first, &format!("helm@{host}")), "changed");
    assert!(
        processes.contains("upgrade --install demo /root/demo-app-0.1.0.tgz"),
        "the watcher saw helm run"
    );
    assert!(
        !processes.contains(&secret),
        "the secret was on a command line"
    );

    let status: Value =
        serde_json::from_str(&lab.helm(&["status", "demo", "-n", namespace, "-o", "json"]))
            .unwrap();
    assert_eq!(status["info"]["status"], "deployed");
    let values: Value =
        serde_json::from_str(&lab.helm(&["get", "values", "demo", "-n", namespace, "-o", "json"]))
            .unwrap();
    assert_eq!(
        values["password"],
        secret.as_str(),
        "the secret reached the release"
    );
    assert_eq!(
        lab.ssh(host, &format!("stat -c '%a %U' /var/lib/graphrun/helm /var/lib/graphrun/helm/{namespace}.demo.json")),
        "700 root\n600 root\n"
    );
    assert_eq!(
        lab.ssh(host, "helm version --template '{{.Version}}'"),
        format!("v{version}")
    );
    assert!(lab
        .ssh(host, "helm repo list -o json")
        .contains(&format!("\"url\":\"http://{}:8879\"", lab.address("h4"))));

    let second = lab.apply(&playbook, &env);
    assert_exit(&second, 0);
    for node in ["kubectl", "chart", "helm"] {
        assert_eq!(
            node_status(&second, &format!("{node}@{host}")),
            "ok",
            "{node}"
        );
    }
    let history: Value =
        serde_json::from_str(&lab.helm(&["history", "demo", "-n", namespace, "-o", "json"]))
            .unwrap();
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "no new revision: {history}"
    );

    // The secret is in no output, and nowhere in graphrun's state or logs.
    for output in [&first, &second] {
        assert!(!all_output(output).contains(&secret));
    }
    let state = lab.dir.path().join(".graphrun");
    let mut files = vec![state];
    let mut seen = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            seen += 1;
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(&secret),
                "{} holds the secret",
                path.display()
            );
        }
    }
    assert!(seen > 0, "graphrun keeps state beside the playbook");
    lab.helm(&["uninstall", "demo", "-n", namespace, "--wait"]);
}

#[test]
fn helm3_installs_a_local_chart_once_without_showing_its_secret() {
    a_local_chart_installs_once("h2", "3.19.0", "kh-helm3");
}

#[test]
fn helm4_installs_a_local_chart_once_without_showing_its_secret() {
    a_local_chart_installs_once("h3", "4.3.1", "kh-helm4");
}
