//! The Kubernetes test harness, exercised from this machine over the lab network: a real
//! kube-apiserver (with etcd, controller manager, scheduler and a kwok node) on a lab host
//! (`tests/k8s/cluster.sh up`), real kubectl, real Helm 3 and Helm 4. Skipped unless
//! GRAPHRUN_K8S_KUBECONFIG is set (`eval "$(tests/k8s/cluster.sh env)"`); CI=true makes a missing
//! control plane an error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::skip;

/// The version the harness builds (tests/k8s/build.sh), with its version ldflags.
const KUBERNETES_VERSION: &str = "v1.34.4";

struct Cluster {
    kubeconfig: PathBuf,
    bin: PathBuf,
}

fn cluster() -> Option<Cluster> {
    let Ok(kubeconfig) = std::env::var("GRAPHRUN_K8S_KUBECONFIG") else {
        skip(
            "control plane",
            "tests/k8s/build.sh; tests/k8s/cluster.sh up; eval \"$(tests/k8s/cluster.sh env)\"",
        );
        return None;
    };
    Some(Cluster {
        kubeconfig: kubeconfig.into(),
        bin: std::env::var("GRAPHRUN_K8S_BIN")
            .expect("GRAPHRUN_K8S_BIN (from tests/k8s/cluster.sh env)")
            .into(),
    })
}

#[derive(Clone, Copy, Debug)]
enum Helm {
    V3,
    V4,
}

impl Helm {
    fn binary(self) -> &'static str {
        match self {
            Helm::V3 => "helm3",
            Helm::V4 => "helm4",
        }
    }
}

/// Output that must have succeeded; its stdout.
fn success(what: &str, output: Output) -> String {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

impl Cluster {
    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Helm with its config, cache and data in `home` (nothing from the user's own setup).
    fn helm(&self, helm: Helm, home: &Path, args: &[&str]) -> Output {
        Command::new(self.bin.join(helm.binary()))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .output()
            .expect("run helm")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.extend(["-o", "json"]);
        let text = success(&format!("kubectl {args:?}"), self.kubectl(&args));
        serde_json::from_str(&text).expect("kubectl printed JSON")
    }
}

fn fixture_chart(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/charts")
        .join(name)
        .display()
        .to_string()
}

/// The status of condition `kind` in an object's `.status.conditions`.
fn condition(object: &serde_json::Value, kind: &str) -> Option<String> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|condition| condition["type"] == kind)
        .and_then(|condition| condition["status"].as_str())
        .map(str::to_string)
}

#[test]
fn kubectl_reaches_the_api_server_over_the_lab_network_and_sees_the_kwok_node_ready() {
    let Some(cluster) = cluster() else { return };
    let lab_net = std::env::var("GRAPHRUN_LAB_NET").unwrap_or_else(|_| "10.77.0".into());
    let config = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    assert!(
        config.contains(&format!("server: https://{lab_net}.")),
        "the kubeconfig points at a lab host, not loopback:\n{}",
        config.lines().find(|l| l.contains("server:")).unwrap_or("")
    );

    let version = cluster.json(&["version"]);
    assert_eq!(version["serverVersion"]["gitVersion"], KUBERNETES_VERSION);

    let node = cluster.json(&["get", "node", "kwok-node-0"]);
    assert_eq!(condition(&node, "Ready").as_deref(), Some("True"));
    let nodes = success("kubectl get nodes", cluster.kubectl(&["get", "nodes"]));
    assert!(
        nodes.contains("kwok-node-0") && nodes.contains(" Ready "),
        "{nodes}"
    );
}

/// `helm upgrade --install --wait` of a local chart with a CRD, a Deployment and a Service:
/// deployed, the Deployment really Available on the kwok node, and a second run succeeds too.
fn local_chart_installs_and_upgrades(helm: Helm, namespace: &str) {
    let Some(cluster) = cluster() else { return };
    let home = tempfile::tempdir().unwrap();
    let chart = fixture_chart("demo-app");
    let install = [
        "upgrade",
        "--install",
        "demo",
        &chart,
        "--namespace",
        namespace,
        "--create-namespace",
        "--wait",
        "--timeout",
        "2m",
    ];
    success(
        "helm upgrade --install",
        cluster.helm(helm, home.path(), &install),
    );

    let status = success(
        "helm status",
        cluster.helm(
            helm,
            home.path(),
            &["status", "demo", "-n", namespace, "-o", "json"],
        ),
    );
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["info"]["status"], "deployed", "{helm:?}");

    let deployment = cluster.json(&["get", "deployment", "demo-web", "-n", namespace]);
    assert_eq!(condition(&deployment, "Available").as_deref(), Some("True"));
    assert_eq!(deployment["status"]["availableReplicas"], 2);
    let crd = cluster.json(&["get", "crd", "widgets.demo.graphrun.test"]);
    assert_eq!(condition(&crd, "Established").as_deref(), Some("True"));
    // Network safety: kwok's pods have loopback addresses, so their Service gets no endpoint
    // anything could ever be sent to.
    let pods = cluster.json(&["get", "pods", "-n", namespace, "-l", "app=demo-web"]);
    let pods = pods["items"].as_array().unwrap();
    assert_eq!(pods.len(), 2);
    for pod in pods {
        let ip = pod["status"]["podIP"].as_str().unwrap_or("");
        assert!(ip.starts_with("127.100."), "pod IP {ip} is not loopback");
    }
    let slices = cluster.json(&["get", "endpointslices", "-n", namespace]);
    for slice in slices["items"].as_array().unwrap() {
        assert!(
            slice["endpoints"].as_array().is_none_or(Vec::is_empty),
            "{slice}"
        );
    }

    success(
        "second helm upgrade --install",
        cluster.helm(helm, home.path(), &install),
    );
    success(
        "helm uninstall",
        cluster.helm(
            helm,
            home.path(),
            &["uninstall", "demo", "-n", namespace, "--wait"],
        ),
    );
}

#[test]
fn helm3_installs_a_local_chart_against_the_real_api_server() {
    local_chart_installs_and_upgrades(Helm::V3, "demo-helm3");
}

#[test]
fn helm4_installs_a_local_chart_against_the_real_api_server() {
    local_chart_installs_and_upgrades(Helm::V4, "demo-helm4");
}

/// The lab lets a host reach the package mirror (DNS included) and nothing else outside the
/// lab: here, the control-plane host cannot reach the cluster's Service range.
#[test]
fn the_control_plane_host_reaches_the_package_mirror_and_nothing_else() {
    let Some(_cluster) = cluster() else { return };
    let api = std::env::var("GRAPHRUN_K8S_API").expect("GRAPHRUN_K8S_API");
    let host = api
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let key = std::env::var("GRAPHRUN_LAB_KEY").expect("GRAPHRUN_LAB_KEY (lab.sh env)");
    let on_host = |command: &str| {
        Command::new("ssh")
            .args(["-F", "/dev/null", "-i", &key, "-o", "BatchMode=yes"])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "LogLevel=ERROR", &format!("root@{host}"), command])
            .output()
            .expect("run ssh")
    };
    let mirror = "name=$(sed -n 's#^URIs: *[a-z]*://\\([^/:]*\\).*#\\1#p' \
                  /etc/apt/sources.list.d/debian.sources | head -n1) && \
                  ip=$(getent ahostsv4 \"$name\" | awk '{print $1; exit}') && \
                  timeout 10 bash -c \"</dev/tcp/$ip/80\" && echo \"$name $ip\"";
    success(
        "connect to the package mirror from the lab",
        on_host(mirror),
    );
    let service_ip = on_host("timeout 3 bash -c '</dev/tcp/10.96.0.1/443'");
    assert!(
        !service_ip.status.success(),
        "10.96.0.1 is reachable from the lab"
    );
}
