//! The rke and rke2 stand-ins at work on the control-plane host (h4), run by hand as graphrun
//! runs them (the rke plugin's own flow tests drive them through graphrun; rke2's units under
//! systemd run there, on s1/s2): the real control plane answers, the kubeconfigs land where the
//! real tools write them and work from this machine, and the nodes are Ready. Skipped unless the
//! lab and the control plane are up (`eval "$(tests/lab/lab.sh env)"; eval "$(tests/k8s/cluster.sh
//! env)"`); CI=true makes that an error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::standin::{mirror_dir, rke2_tarball, rke_binary};
use crate::support::{skip, ssh_as_root};

/// The control-plane host, reached as root with the lab's key.
struct LabHost {
    address: String,
    key: PathBuf,
    /// Real kubectl (GRAPHRUN_K8S_BIN).
    kubectl: PathBuf,
}

impl LabHost {
    fn from_env() -> Option<LabHost> {
        let (Ok(api), Ok(key), Ok(bin)) = (
            std::env::var("GRAPHRUN_K8S_API"),
            std::env::var("GRAPHRUN_LAB_KEY"),
            std::env::var("GRAPHRUN_K8S_BIN"),
        ) else {
            skip(
                "control plane",
                "eval \"$(tests/lab/lab.sh env)\"; eval \"$(tests/k8s/cluster.sh env)\"",
            );
            return None;
        };
        let address = api.trim_start_matches("https://").split(':').next()?;
        Some(LabHost {
            address: address.to_string(),
            key: key.into(),
            kubectl: Path::new(&bin).join("kubectl"),
        })
    }

    /// Runs `command` on the host; it must succeed. Its stdout.
    fn run(&self, command: &str) -> String {
        let output = ssh_as_root(&self.key, &self.address, command);
        assert!(output.status.success(), "{command}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// Sends the local file `from` to `to` on the host.
    fn upload(&self, from: &Path, to: &str) {
        let output = Command::new("ssh")
            .args(["-F", "/dev/null", "-i"])
            .arg(&self.key)
            .args(["-o", "StrictHostKeyChecking=no"])
            .args(["-o", "UserKnownHostsFile=/dev/null"])
            .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR"])
            .arg(format!("root@{}", self.address))
            .arg(format!("cat > {to}"))
            .stdin(std::fs::File::open(from).unwrap())
            .output()
            .unwrap();
        assert!(output.status.success(), "upload {from:?}: {output:?}");
    }

    /// `kubectl get node NAME` with `kubeconfig` (its text) from this machine: the Ready
    /// condition's status, a space, the node's labels as JSON.
    fn node(&self, kubeconfig: &str, name: &str) -> String {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), kubeconfig).unwrap();
        let output = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(file.path())
            .args(["get", "node", name, "-o"])
            .arg("jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.metadata.labels}")
            .output()
            .unwrap();
        assert!(output.status.success(), "get node {name}: {output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// Waits until `path` on the host contains `text` (a log line of a detached process).
    fn wait_for(&self, path: &str, text: &str) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(120) {
            if ssh_as_root(
                &self.key,
                &self.address,
                &format!("grep -qF '{text}' {path}"),
            )
            .status
            .success()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "no `{text}` in {path}: {}",
            self.run(&format!("cat {path}"))
        );
    }
}

/// `rke up` as graphrun runs it: the node is reached over SSH with cluster.yml's key, the real
/// control plane answers, the kubeconfig and state land beside cluster.yml (0600), the
/// kubeconfig names the host's address and works from this machine, and the node is Ready
/// under its hostname_override with RKE's role labels. A second `up` succeeds too.
#[test]
fn rke_up_on_a_lab_host_writes_a_working_kubeconfig_and_registers_the_nodes() {
    let Some(mirror) = mirror_dir() else { return };
    let Some(host) = LabHost::from_env() else {
        return;
    };
    let root = "/root/graphrun-standin-rke";
    // A key of its own, authorized on the host (what the rke plugin's steps do).
    host.run(&format!(
        "rm -rf {root} && mkdir -p {root} /root/.ssh \
         && ssh-keygen -q -t ed25519 -N '' -f {root}/id_ed25519 \
         && cat {root}/id_ed25519.pub >> /root/.ssh/authorized_keys"
    ));
    host.upload(&rke_binary(&mirror), &format!("{root}/rke"));
    let address = &host.address;
    let cluster = format!(
        "nodes:\n- address: {address}\n  user: root\n  role: [controlplane, etcd, worker]\n  \
         hostname_override: standin-master\nkubernetes_version: v1.32.5-rancher1-1\n\
         ssh_key_path: {root}/id_ed25519\n"
    );
    host.run(&format!(
        "chmod 0755 {root}/rke && cat > {root}/cluster.yml <<'EOF'\n{cluster}EOF"
    ));
    for _ in 0..2 {
        host.run(&format!("cd {root} && ./rke up --config cluster.yml"));
    }
    let modes = host.run(&format!(
        "stat -c '%a %n' {root}/kube_config_cluster.yml {root}/cluster.rkestate"
    ));
    assert_eq!(
        modes,
        format!("600 {root}/kube_config_cluster.yml\n600 {root}/cluster.rkestate\n")
    );
    let kubeconfig = host.run(&format!("cat {root}/kube_config_cluster.yml"));
    assert!(
        kubeconfig.contains(&format!("server: \"https://{address}:6443\"")),
        "{kubeconfig}"
    );
    let node = host.node(&kubeconfig, "standin-master");
    assert!(node.starts_with("True "), "{node}");
    assert!(
        node.contains("\"node-role.kubernetes.io/controlplane\":\"true\""),
        "{node}"
    );
    host.run(&format!(
        "grep -vF \"$(cat {root}/id_ed25519.pub)\" /root/.ssh/authorized_keys > {root}/keys; \
         cat {root}/keys > /root/.ssh/authorized_keys && rm -rf {root}"
    ));
}

/// `rke2 server`, then `rke2 agent` joining it, from the tarball's `bin/rke2` (detached, as
/// their units run them): the server writes /etc/rancher/rke2/rke2.yaml (0600, server
/// https://127.0.0.1:6443, which works from this machine once rewritten to the host's address,
/// as graphrun fetches it) and rke2's join token; both nodes are Ready.
#[test]
fn rke2_server_and_agent_on_a_lab_host_write_rke2_yaml_and_register_their_nodes() {
    let Some(mirror) = mirror_dir() else { return };
    let Some(host) = LabHost::from_env() else {
        return;
    };
    let root = "/root/graphrun-standin-rke2";
    let address = &host.address;
    host.run(&format!("rm -rf {root} && mkdir -p {root}"));
    host.upload(&rke2_tarball(&mirror), &format!("{root}/rke2.tar.gz"));
    let server = format!(
        "token: standin-token\nnode-name: standin-rke2-server\nnode-ip: {address}\n\
         tls-san:\n- {address}\ncni: canal\n"
    );
    let agent = format!(
        "server: https://{address}:9345\ntoken: standin-token\nnode-name: standin-rke2-agent\n"
    );
    host.run(&format!(
        "cd {root} && tar -xzf rke2.tar.gz && printf '%s' '{server}' > server.yaml \
         && printf '%s' '{agent}' > agent.yaml"
    ));
    for role in ["server", "agent"] {
        host.run(&format!(
            "cd {root} && {{ RKE2_CONFIG_FILE={root}/{role}.yaml setsid ./bin/rke2 {role} \
             > {role}.log 2>&1 < /dev/null & echo $! > {role}.pid; }}"
        ));
        host.wait_for(&format!("{root}/{role}.log"), &format!("rke2 {role} is up"));
    }
    let modes =
        host.run("stat -c '%a' /etc/rancher/rke2/rke2.yaml /var/lib/rancher/rke2/server/token");
    assert_eq!(modes, "600\n600\n");
    assert!(host
        .run("cat /var/lib/rancher/rke2/server/token")
        .ends_with("::server:standin-token\n"));
    let kubeconfig = host.run("cat /etc/rancher/rke2/rke2.yaml");
    assert!(
        kubeconfig.contains("server: \"https://127.0.0.1:6443\""),
        "{kubeconfig}"
    );
    let kubeconfig = kubeconfig.replace("127.0.0.1", address);
    let server = host.node(&kubeconfig, "standin-rke2-server");
    assert!(server.starts_with("True "), "{server}");
    assert!(
        server.contains("\"node-role.kubernetes.io/control-plane\":\"true\""),
        "{server}"
    );
    assert!(host
        .node(&kubeconfig, "standin-rke2-agent")
        .starts_with("True "));
    host.run(&format!(
        "kill $(cat {root}/server.pid {root}/agent.pid) && rm -rf {root} /etc/rancher/rke2 \
         /var/lib/rancher/rke2"
    ));
}
