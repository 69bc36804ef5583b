//! The add-on steps (cert-manager, rancher, ingress) through graphrun, with the real charts
//! (../shared/charts, served as a chart repository from h4) and real Helm 3 on a lab host,
//! against the real API server on h4 (`tests/k8s/cluster.sh up`). Skipped unless the lab and the
//! control plane are up; CI=true makes that an error.
//!
//! kwok runs the charts' pods, but its pods have loopback addresses, so no Service gets an
//! endpoint: cert-manager's webhook can never answer here. That is a real failure mode (a real
//! cluster shows it while the webhook starts, or when it is broken): the cert-manager step fails
//! on its webhook check, and the rancher step with `tls_source = "rancher"` refuses, before
//! installing anything, with a sentence instead of helm's raw webhook error. With
//! `tls_source = "secret"` Rancher needs no webhook and installs.
//!
//! One test, in order: the steps share the cluster's cert-manager (its CRDs and webhook
//! configurations are cluster-wide), so they cannot run side by side.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{assert_exit, events, files_under, lab_env, private_inventory, statuses};

/// Helm and its kubeconfig on h4, apart from what other tests install there.
const HOST_DIR: &str = "/opt/graphrun-addons";
const CERT_MANAGER: &str = "v1.21.1";
const RANCHER: &str = "2.15.0";
/// The bootstrap password, from the environment as a user would pass it: found nowhere.
const PASSWORD: &str = "addons-bootstrap-7f3a9c";

struct Lab {
    dir: tempfile::TempDir,
    inventory: PathBuf,
    kubeconfig: String,
    chart_repo: String,
    bin: PathBuf,
}

fn lab() -> Option<Lab> {
    let [_inventory, kubeconfig, chart_repo, bin] = lab_env(
        [
            "GRAPHRUN_LAB_INVENTORY",
            "GRAPHRUN_K8S_KUBECONFIG",
            "GRAPHRUN_K8S_CHART_REPO",
            "GRAPHRUN_K8S_BIN",
        ],
        "lab, control plane and chart repository",
        "tests/lab/lab.sh up 4; tests/k8s/cluster.sh up; eval both `env`s",
    )?;
    let dir = tempfile::tempdir().unwrap();
    Some(Lab {
        inventory: private_inventory(dir.path()),
        dir,
        kubeconfig,
        chart_repo,
        bin: bin.into(),
    })
}

impl Lab {
    /// Writes `NAME.toml`: helm and a kubeconfig put on h4, then `steps`.
    fn playbook(&self, name: &str, steps: &str) -> PathBuf {
        let text = format!(
            r#"
[vars]
kubeconfig = "{kubeconfig}"
charts = "{charts}"

[steps.helm-binary]
plugin = "file"
on = ["h4"]
source = "{helm}"
path = "{HOST_DIR}/helm"
mode = "0755"

[steps.host-kubeconfig]
plugin = "file"
on = ["h4"]
source = "{kubeconfig}"
path = "{HOST_DIR}/kubeconfig"
mode = "0600"
{steps}"#,
            kubeconfig = self.kubeconfig,
            charts = self.chart_repo,
            helm = self.bin.join("helm3").display(),
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn graphrun(&self, command: &str, playbook: &Path) -> Output {
        Command::new(env!("CARGO_BIN_EXE_graphrun"))
            .arg(command)
            .arg(playbook)
            .arg("--inventory")
            .arg(&self.inventory)
            .args(["--output", "json"])
            .env("ADDONS_BOOTSTRAP_PASSWORD", PASSWORD)
            .output()
            .unwrap()
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(self.bin.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let output = self.kubectl(&[args, &["-o", "json"]].concat());
        assert!(output.status.success(), "kubectl {args:?}: {output:?}");
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Removes what this test makes (an earlier run may have left it): the releases, with
    /// helm on the control machine, and the Ingress.
    fn clean_up(&self) {
        let home = self.dir.path().join("helm-home");
        for (release, namespace) in [
            ("rancher", "cattle-system"),
            ("cert-manager", "cert-manager"),
        ] {
            let _ = Command::new(self.bin.join("helm3"))
                .args([
                    "uninstall",
                    release,
                    "-n",
                    namespace,
                    "--no-hooks",
                    "--wait",
                ])
                .env("KUBECONFIG", &self.kubeconfig)
                .env("HELM_CONFIG_HOME", home.join("config"))
                .env("HELM_CACHE_HOME", home.join("cache"))
                .env("HELM_DATA_HOME", home.join("data"))
                .output();
        }
        let _ = self.kubectl(&["delete", "ingress", "minio-console", "--ignore-not-found"]);
    }
}

/// Why `node` failed, from its `node_finished` event.
fn failure(output: &Output, node: &str) -> String {
    events(output, "node_finished")
        .find(|event| event["node"] == node)
        .and_then(|event| event["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no error for {node}: {}", text(output)))
}

/// Everything graphrun printed.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn condition(object: &Value, kind: &str) -> Option<String> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
        .map(str::to_string)
}

fn cert_manager_step() -> String {
    format!(
        r#"
[steps.cert-manager]
on = ["h4"]
needs = ["helm-binary", "host-kubeconfig"]
kubeconfig = "{{{{ vars.kubeconfig }}}}"
chart = "lab/cert-manager"
repository = "{{{{ vars.charts }}}}"
version = "{CERT_MANAGER}"
helm = "{HOST_DIR}/helm"
host_kubeconfig = "{HOST_DIR}/kubeconfig"
wait_timeout = "3m"
"#
    )
}

fn rancher_step(tls_source: &str) -> String {
    format!(
        r#"
[steps.rancher]
on = ["h4"]
needs = ["helm-binary", "host-kubeconfig"]
kubeconfig = "{{{{ vars.kubeconfig }}}}"
chart = "lab/rancher"
repository = "{{{{ vars.charts }}}}"
version = "{RANCHER}"
hostname = "rancher-demo.domain.test"
bootstrap_password = {{ env = "ADDONS_BOOTSTRAP_PASSWORD" }}
tls_source = "{tls_source}"
replicas = 1
ingress_class = "nginx"
helm = "{HOST_DIR}/helm"
host_kubeconfig = "{HOST_DIR}/kubeconfig"
wait_timeout = "3m"
"#
    )
}

const INGRESS_STEP: &str = r#"
[steps.minio-ingress]
plugin = "ingress"
on = ["h4"]
kubeconfig = "{{ vars.kubeconfig }}"
name = "minio-console"
host = "minio.domain.test"
ingress_class = "traefik"
tls_secret = "minio-tls"
paths = [{ service = "minio-console", port = 9001 }, { path = "/api", path_type = "Exact", service = "minio", port = "http" }]
"#;

/// Every file graphrun wrote for a playbook: state, journal, run logs.
fn written_files(playbook: &Path) -> Vec<PathBuf> {
    let stem = playbook.file_stem().unwrap();
    files_under(&playbook.parent().unwrap().join(".graphrun").join(stem))
}

#[test]
fn cert_manager_rancher_and_an_ingress_with_the_real_charts_on_the_real_api_server() {
    let Some(lab) = lab() else { return };
    lab.clean_up();

    // cert-manager installs: CRDs Established, Deployments Available. Its webhook cannot answer
    // on kwok, so the step fails on its last check, with the API server's reason.
    let playbook = lab.playbook("cert-manager", &cert_manager_step());
    let output = lab.graphrun("apply", &playbook);
    assert_exit(&output, 1);
    assert_eq!(statuses(&output)["cert-manager@h4"], "failed");
    let error = failure(&output, "cert-manager@h4");
    assert!(
        error.contains("no endpoints available for service \"cert-manager-webhook\""),
        "{error}"
    );
    for crd in ["certificates.cert-manager.io", "issuers.cert-manager.io"] {
        let crd = lab.json(&["get", "crd", crd]);
        assert_eq!(condition(&crd, "Established").as_deref(), Some("True"));
    }
    for name in [
        "cert-manager",
        "cert-manager-cainjector",
        "cert-manager-webhook",
    ] {
        let deployment = lab.json(&["get", "deployment", name, "-n", "cert-manager"]);
        assert_eq!(
            condition(&deployment, "Available").as_deref(),
            Some("True"),
            "{name}"
        );
    }
    // The dry run stored nothing.
    let issuers = lab.json(&["get", "issuers", "-n", "cert-manager"]);
    assert_eq!(issuers["items"], serde_json::json!([]));

    // Rancher with its own CA needs that webhook: refused before helm runs, in a sentence.
    let playbook = lab.playbook("rancher-ca", &rancher_step("rancher"));
    let output = lab.graphrun("apply", &playbook);
    assert_exit(&output, 1);
    let error = failure(&output, "rancher@h4");
    assert!(
        error.contains("Rancher with tls_source = \"rancher\" needs cert-manager")
            && error.contains("Service cert-manager/cert-manager-webhook has no ready endpoint"),
        "{error}"
    );
    assert!(!error.contains("failed calling webhook"), "{error}");
    let deployment = lab.kubectl(&["get", "deployment", "rancher", "-n", "cattle-system"]);
    assert!(!deployment.status.success(), "nothing was installed");

    // With its own certificate Secret, Rancher installs and rolls out; the Ingress is applied.
    let steps = rancher_step("secret") + INGRESS_STEP;
    let playbook = lab.playbook("rancher", &steps);
    let first = lab.graphrun("apply", &playbook);
    assert_exit(&first, 0);
    let status = statuses(&first);
    assert_eq!(status["rancher@h4"], "changed");
    assert_eq!(status["minio-ingress@h4"], "changed");
    let deployment = lab.json(&["get", "deployment", "rancher", "-n", "cattle-system"]);
    assert_eq!(condition(&deployment, "Available").as_deref(), Some("True"));
    let ingress = lab.json(&["get", "ingress", "minio-console"]);
    assert_eq!(ingress["spec"]["ingressClassName"], "traefik");
    assert_eq!(ingress["spec"]["rules"][0]["host"], "minio.domain.test");
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][1]["backend"]["service"]["port"]["name"],
        "http"
    );
    let managers = lab.json(&["get", "ingress", "minio-console", "--show-managed-fields"]);
    assert_eq!(
        managers["metadata"]["managedFields"][0]["manager"],
        "graphrun"
    );
    // The chart's own Ingress for the hostname.
    let rancher_ingress = lab.json(&["get", "ingress", "rancher", "-n", "cattle-system"]);
    assert_eq!(
        rancher_ingress["spec"]["rules"][0]["host"],
        "rancher-demo.domain.test"
    );
    assert_eq!(rancher_ingress["spec"]["ingressClassName"], "nginx");

    // A second apply changes nothing: no new helm revision, the Ingress unchanged.
    let second = lab.graphrun("apply", &playbook);
    assert_exit(&second, 0);
    let status = statuses(&second);
    for node in ["rancher@h4", "minio-ingress@h4", "helm-binary@h4"] {
        assert_eq!(status[node], "ok", "{node}: {}", text(&second));
    }

    // The bootstrap password: in the 0600 values file on the host, nowhere graphrun writes.
    for output in [&first, &second] {
        assert!(!text(output).contains(PASSWORD), "{}", text(output));
    }
    let report = lab.dir.path().join("report.html");
    let state = playbook
        .parent()
        .unwrap()
        .join(".graphrun/rancher/state.json");
    let made = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .arg("report")
        .arg(&state)
        .arg("--to")
        .arg(&report)
        .output()
        .unwrap();
    assert_exit(&made, 0);
    let mut files = written_files(&playbook);
    files.push(report.with_extension("events.jsonl"));
    files.push(report);
    assert!(files.iter().any(|f| f.ends_with("state.json")));
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(PASSWORD),
            "{} holds the password",
            file.display()
        );
    }
    let key = std::env::var("GRAPHRUN_LAB_KEY").unwrap();
    let address = std::env::var("GRAPHRUN_K8S_API").unwrap();
    let address = address
        .trim_start_matches("https://")
        .split(':')
        .next()
        .unwrap();
    let stat = crate::support::ssh_as_root(
        Path::new(&key),
        address,
        "stat -c %a /var/lib/graphrun/helm/cattle-system.rancher.json",
    );
    assert_eq!(String::from_utf8_lossy(&stat.stdout).trim(), "600");

    lab.clean_up();
}
