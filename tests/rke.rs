//! The `rke` step's two flows on lab hosts, with the rke and rke2 stand-ins served by the
//! artifact mirror (the real binaries are not served by any registry reachable here; the
//! stand-ins check their arguments and config as the real ones do, then start the real control
//! plane; see tests/k8s/standin/). Everything around them is real: artifact download through the
//! mirror and checksum, upload, the SSH key made on the master and authorized on every node,
//! cluster.yml and config.yaml, systemd units, the kubeconfig fetched (0600) and used with the
//! real kubectl, and a second apply that changes nothing.
//!
//! - RKE1 on h4 (the control-plane host, where `cluster.sh up` left the binaries) and h3.
//! - RKE2 on the systemd hosts: s1 the first server, s2 an agent (`cluster.sh stage s1` and
//!   `stage s2 s1` left the control-plane binaries and PKI there).
//!
//! Skipped unless the lab, the control plane and the mirror are up (`eval "$(tests/lab/lab.sh
//! env)"; eval "$(tests/k8s/cluster.sh env)"`); CI=true makes that an error.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{assert_exit, files_under, lab_env, ssh_as_root, statuses};

/// The releases the stand-ins are published as (tests/k8s/build.sh).
const RKE_VERSION: &str = "v1.8.5";
const RKE2_VERSION: &str = "v1.34.5+rke2r1";
/// The RKE2 token the test hands graphrun as a secret (never to be seen in its output).
const TOKEN: &str = "graphrun-test-rke2-token-5e1f";

struct Lab {
    dir: tempfile::TempDir,
    key: PathBuf,
    net: String,
    mirror: String,
    kubectl: PathBuf,
    /// The control-plane host's address (h4), where RKE1's master runs.
    api_host: String,
}

fn lab() -> Option<Lab> {
    let [key, net, mirror, bin, api, _systemd_inventory] = lab_env(
        [
            "GRAPHRUN_LAB_KEY",
            "GRAPHRUN_LAB_NET",
            "GRAPHRUN_MIRROR",
            "GRAPHRUN_K8S_BIN",
            "GRAPHRUN_K8S_API",
            "GRAPHRUN_LAB_SYSTEMD_INVENTORY",
        ],
        "lab with systemd hosts, control plane and artifact mirror",
        "tests/lab/lab.sh up 4; tests/lab/lab.sh systemd-up; tests/k8s/cluster.sh up; \
         tests/k8s/cluster.sh stage s1; tests/k8s/cluster.sh stage s2 s1; \
         eval \"$(tests/lab/lab.sh env)\"; eval \"$(tests/k8s/cluster.sh env)\"",
    )?;
    let api_host = api
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    Some(Lab {
        dir: tempfile::tempdir().unwrap(),
        key: key.into(),
        net,
        mirror,
        kubectl: Path::new(&bin).join("kubectl"),
        api_host,
    })
}

impl Lab {
    /// An inventory of `(name, address, groups)` with the lab's key and a private known_hosts.
    fn inventory(&self, hosts: &[(&str, &str, &[&str])]) -> PathBuf {
        let mut text = format!(
            "[defaults]\nuser = \"root\"\nidentity_file = \"{}\"\nknown_hosts_file = \"{}\"\nhost_key_checking = \"accept-new\"\n",
            self.key.display(),
            self.dir.path().join("known_hosts").display()
        );
        for (name, address, groups) in hosts {
            text.push_str(&format!(
                "\n[hosts.{name}]\naddress = \"{address}\"\ngroups = {groups:?}\n"
            ));
        }
        let path = self.dir.path().join("inventory.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn playbook(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("cluster.toml");
        std::fs::write(
            &path,
            format!("[artifacts]\nmirror = \"{}\"\n{text}", self.mirror),
        )
        .unwrap();
        path
    }

    fn apply(&self, playbook: &Path, inventory: &Path) -> Output {
        Command::new(env!("CARGO_BIN_EXE_graphrun"))
            .arg("apply")
            .arg(playbook)
            .arg("--inventory")
            .arg(inventory)
            .args(["--output", "json"])
            .env("GRAPHRUN_TEST_RKE2_TOKEN", TOKEN)
            .output()
            .unwrap()
    }

    fn ssh(&self, address: &str, command: &str) -> String {
        let output = ssh_as_root(&self.key, address, command);
        assert!(
            output.status.success(),
            "{address}: `{command}`: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `kubectl get node NAME` through a fetched kubeconfig: the Ready condition's status.
    fn node_ready(&self, kubeconfig: &Path, node: &str) -> String {
        let output = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["get", "node", node, "-o"])
            .arg("jsonpath={.status.conditions[?(@.type==\"Ready\")].status}")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "kubectl get node {node}: {output:?}"
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The state folder graphrun keeps beside the playbook.
    fn state_dir(&self) -> PathBuf {
        self.dir.path().join(".graphrun/cluster")
    }
}

fn assert_private(path: &Path) {
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", path.display());
}

/// Every node `ok` (nothing changed): a second apply redoes nothing.
fn assert_unchanged(output: &Output) {
    assert_exit(output, 0);
    for (node, status) in statuses(output) {
        assert_eq!(status, "ok", "{node} changed on the second apply");
    }
}

#[test]
fn rke1_on_lab_hosts_makes_a_cluster_kubectl_reaches_and_a_second_apply_changes_nothing() {
    let Some(lab) = lab() else { return };
    let worker = format!("{}.13", lab.net);
    let inventory = lab.inventory(&[
        ("rke-master", &lab.api_host, &["controlplane", "etcd"]),
        ("rke-worker", &worker, &["worker"]),
    ]);
    let root = "/root/graphrun-rke-test";
    let key = "/root/.ssh/graphrun_rke_test";
    for address in [&lab.api_host, &worker] {
        lab.ssh(address, &format!("rm -rf {root} {key} {key}.pub"));
    }
    let playbook = lab.playbook(&format!(
        r#"
[steps.key]
plugin = "ssh_key"
on = "rke-master"
path = "{key}"

[steps.authorize]
plugin = "ssh_key"
on = "all"
needs = ["key"]
wait = "all"
authorize = "{{{{ steps.key.outputs.public_key }}}}"

[steps.cluster]
plugin = "rke"
on = "rke-master"
needs = ["authorize"]
wait = "all"
version = "{RKE_VERSION}"
kubernetes_version = "v1.32.5-rancher1-1"
ssh_key_path = "{key}"
dir = "{root}"
"#
    ));
    let first = lab.apply(&playbook, &inventory);
    assert_exit(&first, 0);
    let fetched = lab.state_dir().join("fetched/rke-master");
    let kubeconfig = fetched.join("kube_config_cluster.yml");
    assert_private(&kubeconfig);
    assert_private(&fetched.join("cluster.rkestate"));
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(
        text.contains(&format!("https://{}:6443", lab.api_host)),
        "{text}"
    );
    for node in ["rke-master", "rke-worker"] {
        assert_eq!(lab.node_ready(&kubeconfig, node), "True", "{node}");
    }
    // The key the master made is authorized on the worker; cluster.yml is the one graphrun wrote.
    let public = lab.ssh(&lab.api_host, &format!("cat {key}.pub"));
    assert!(lab
        .ssh(&worker, "cat /root/.ssh/authorized_keys")
        .contains(public.trim()));
    let cluster = lab.ssh(&lab.api_host, &format!("cat {root}/cluster.yml"));
    assert!(
        cluster.contains("hostname_override: rke-worker"),
        "{cluster}"
    );
    assert!(cluster.contains("enable_cri_dockerd: true"), "{cluster}");

    assert_unchanged(&lab.apply(&playbook, &inventory));
    // rke up runs again when one of its outputs is gone.
    lab.ssh(&lab.api_host, &format!("rm {root}/kube_config_cluster.yml"));
    let third = lab.apply(&playbook, &inventory);
    assert_exit(&third, 0);
    assert_eq!(statuses(&third)["cluster@rke-master"], "changed");
    assert_eq!(lab.node_ready(&kubeconfig, "rke-worker"), "True");
    for address in [&lab.api_host, &worker] {
        lab.ssh(
            address,
            &format!(
                "rm -rf {root} {key} {key}.pub; grep -vF '{}' /root/.ssh/authorized_keys > /tmp/keys; cat /tmp/keys > /root/.ssh/authorized_keys",
                public.trim()
            ),
        );
    }
}

#[test]
fn rke2_first_server_and_agent_join_their_nodes_are_ready_and_the_token_stays_secret() {
    let Some(lab) = lab() else { return };
    let _hosts = crate::support::lock_systemd_hosts();
    let (s1, s2) = (format!("{}.101", lab.net), format!("{}.102", lab.net));
    // rke2 keeps running after the test unless stopped: its port 6443 would be another test's
    // finding and its control plane would hold memory for the rest of the suite.
    let _stop = StopRke2 {
        lab: &lab,
        hosts: [s1.clone(), s2.clone()],
    };
    let inventory = lab.inventory(&[
        ("s1", &s1, &["controlplane", "etcd"]),
        ("s2", &s2, &["worker"]),
    ]);
    let playbook = lab.playbook(&format!(
        r#"
[steps.rke2_first]
plugin = "rke"
on = "s1"
distribution = "rke2"
version = "{RKE2_VERSION}"
token = {{ env = "GRAPHRUN_TEST_RKE2_TOKEN" }}

[steps.rke2_join]
plugin = "rke"
on = "all"
needs = ["rke2_first"]
wait = "all"
distribution = "rke2"
version = "{RKE2_VERSION}"
token = {{ env = "GRAPHRUN_TEST_RKE2_TOKEN" }}
server = "{{{{ hosts.s1.address }}}}"
kubeconfig = "{{{{ steps.rke2_first.outputs.kubeconfig }}}}"
"#
    ));
    let first = lab.apply(&playbook, &inventory);
    assert_exit(&first, 0);
    let kubeconfig = lab.state_dir().join("fetched/s1/rke2.yaml");
    assert_private(&kubeconfig);
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(text.contains(&format!("https://{s1}:6443")), "{text}");
    assert!(!text.contains("127.0.0.1"), "{text}");
    for node in ["s1", "s2"] {
        assert_eq!(lab.node_ready(&kubeconfig, node), "True", "{node}");
    }
    assert_eq!(
        lab.ssh(&s1, "systemctl is-active rke2-server").trim(),
        "active"
    );
    assert_eq!(
        lab.ssh(&s2, "systemctl is-active rke2-agent").trim(),
        "active"
    );
    assert_eq!(
        lab.ssh(&s2, "stat -c %a /etc/rancher/rke2/config.yaml")
            .trim(),
        "600"
    );
    assert!(lab
        .ssh(&s2, "cat /etc/rancher/rke2/config.yaml")
        .contains(&format!("server: https://{s1}:9345")));

    let second = lab.apply(&playbook, &inventory);
    assert_unchanged(&second);
    // The token reached the hosts' config files, and nothing graphrun printed or kept.
    for output in [&first, &second] {
        assert!(!String::from_utf8_lossy(&output.stdout).contains(TOKEN));
        assert!(!String::from_utf8_lossy(&output.stderr).contains(TOKEN));
    }
    for entry in files_under(&lab.state_dir()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "the token is in {}",
            entry.display()
        );
    }
}

/// Stops rke2's services and the control plane the stand-in started, however the test ends.
struct StopRke2<'a> {
    lab: &'a Lab,
    hosts: [String; 2],
}

impl Drop for StopRke2<'_> {
    fn drop(&mut self) {
        for address in &self.hosts {
            ssh_as_root(
                &self.lab.key,
                address,
                "[ ! -x /usr/local/bin/rke2-killall.sh ] || /usr/local/bin/rke2-killall.sh",
            );
        }
    }
}
