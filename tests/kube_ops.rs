//! Tests: kube_ops. Kubernetes ops through the engine against the real API server of the lab
//! (`tests/k8s/cluster.sh up`): the `manifest` step applies objects server-side (field manager
//! graphrun, a second apply changes nothing), `plan` shows them as a dry run with Secret values
//! hidden, waits for a Deployment's rollout and times out saying what it saw, and reaches an
//! API server that only its host can reach through an SSH tunnel. Skipped unless
//! GRAPHRUN_K8S_KUBECONFIG is set (and, for the tunnel, GRAPHRUN_LAB_INVENTORY); CI=true makes
//! that an error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use graphrun_kube::{Cluster, ObjectRef};
use serde_json::Value;

use crate::support::{assert_exit, events, skip, statuses, write_file, TempPlaybook};

fn kubeconfig() -> Option<PathBuf> {
    let found = std::env::var("GRAPHRUN_K8S_KUBECONFIG")
        .ok()
        .map(PathBuf::from);
    if found.is_none() {
        skip(
            "control plane",
            "tests/k8s/cluster.sh up; eval \"$(tests/k8s/cluster.sh env)\"",
        );
    }
    found
}

/// A name no earlier run used, so the first apply creates.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A playbook whose one host is this machine, with a `manifest` step `objects` (TOML).
fn manifest_playbook(kubeconfig: &Path, extra: &str, objects: &str) -> TempPlaybook {
    TempPlaybook::new(&format!(
        "[hosts.control]\nconnection = \"local\"\n\n[steps.objects]\nplugin = \"manifest\"\n\
         kubeconfig = \"{}\"\n{extra}\n{objects}",
        kubeconfig.display()
    ))
}

fn namespace_toml(name: &str) -> String {
    format!(
        "[[steps.objects.objects]]\napiVersion = \"v1\"\nkind = \"Namespace\"\n\
         metadata = {{ name = \"{name}\" }}\n"
    )
}

fn deployment_toml(namespace: &str, name: &str, node_selector: &str) -> String {
    format!(
        r#"
[[steps.objects.objects]]
apiVersion = "apps/v1"
kind = "Deployment"
metadata = {{ name = "{name}", namespace = "{namespace}" }}
spec.replicas = 1
spec.selector.matchLabels = {{ app = "{name}" }}
spec.template.metadata.labels = {{ app = "{name}" }}
spec.template.spec.nodeSelector = {{ {node_selector} }}
spec.template.spec.containers = [{{ name = "web", image = "registry.invalid/web:1" }}]
"#
    )
}

fn graphrun(command: &str, file: &TempPlaybook, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .arg(command)
        .arg(&file.path)
        .args(["--output", "json"])
        .args(args)
        .output()
        .expect("graphrun runs")
}

async fn read(kubeconfig: &Path, object: ObjectRef) -> Option<Value> {
    let cluster = Cluster::connect(kubeconfig).await.unwrap();
    cluster.get(&object).await.unwrap()
}

/// The ops of a run as `(summary, status)`, and their diffs.
fn ops(output: &Output) -> Vec<(String, String, Option<String>)> {
    events(output, "op_finished")
        .map(|e| {
            let text = |v: &Value| v.as_str().map(str::to_string);
            (
                text(&e["op"]).unwrap(),
                text(&e["status"]).unwrap(),
                text(&e["diff"]),
            )
        })
        .collect()
}

#[tokio::test]
async fn apply_creates_objects_managed_by_graphrun_and_a_second_apply_changes_nothing() {
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let ns = unique("kops-apply");
    let config_map = format!(
        "[[steps.objects.objects]]\napiVersion = \"v1\"\nkind = \"ConfigMap\"\n\
         metadata = {{ name = \"settings\", namespace = \"{ns}\" }}\ndata = {{ mode = \"fast\" }}\n"
    );
    let file = manifest_playbook(
        &kubeconfig,
        "",
        &format!("{}{config_map}", namespace_toml(&ns)),
    );
    let first = graphrun("apply", &file, &[]);
    assert_exit(&first, 0);
    assert_eq!(statuses(&first)["objects@control"], "changed");

    let settings = ObjectRef::new("v1", "ConfigMap", Some(&ns), "settings");
    let live = read(&kubeconfig, settings)
        .await
        .expect("the ConfigMap exists");
    assert_eq!(live["data"]["mode"], "fast");
    let managers: Vec<&str> = (live["metadata"]["managedFields"].as_array().unwrap().iter())
        .filter_map(|entry| entry["manager"].as_str())
        .collect();
    assert_eq!(managers, ["graphrun"]);

    let second = graphrun("apply", &file, &["--fresh"]);
    assert_exit(&second, 0);
    assert_eq!(statuses(&second)["objects@control"], "ok");
    assert!(ops(&second).iter().all(|(_, status, _)| status == "ok"));
}

#[tokio::test]
async fn yaml_files_of_several_documents_are_applied_after_the_inline_objects() {
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let ns = unique("kops-files");
    let file = manifest_playbook(&kubeconfig, "files = [\"app.yaml\"]", &namespace_toml(&ns));
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: one, namespace: {ns}}}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: two, namespace: {ns}}}\n"
    );
    write_file(file.dir.path(), "app.yaml", &yaml);
    let output = graphrun("apply", &file, &[]);
    assert_exit(&output, 0);
    let applied: Vec<String> = ops(&output).into_iter().map(|(op, _, _)| op).collect();
    assert_eq!(
        applied,
        [
            format!("apply Namespace {ns}"),
            format!("apply ConfigMap {ns}/one"),
            format!("apply ConfigMap {ns}/two")
        ]
    );
    let two = ObjectRef::new("v1", "ConfigMap", Some(&ns), "two");
    assert!(read(&kubeconfig, two).await.is_some());
}

#[tokio::test]
async fn plan_is_a_dry_run_showing_the_object_with_secret_values_hidden() {
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let ns = unique("kops-plan");
    let secret = format!(
        "[[steps.objects.objects]]\napiVersion = \"v1\"\nkind = \"Secret\"\n\
         metadata = {{ name = \"token\", namespace = \"{ns}\" }}\n\
         stringData = {{ password = \"hunter2-graphrun\" }}\n"
    );
    // The namespace exists, so the server can dry-run the Secret in it.
    let namespace = manifest_playbook(&kubeconfig, "", &namespace_toml(&ns));
    assert_exit(&graphrun("apply", &namespace, &[]), 0);
    let file = manifest_playbook(&kubeconfig, "", &secret);

    let plan = graphrun("plan", &file, &[]);
    assert_exit(&plan, 0);
    assert_eq!(statuses(&plan)["objects@control"], "would_change");
    let (summary, status, diff) = &ops(&plan)[0];
    assert_eq!(summary, &format!("apply Secret {ns}/token"));
    assert_eq!(status, "would_change");
    let diff = diff.as_deref().expect("a plan shows the object");
    assert!(diff.contains("+kind: Secret"), "{diff}");
    assert!(diff.contains("+  password: '***'"), "{diff}");
    let all = String::from_utf8_lossy(&plan.stdout);
    assert!(!all.contains("hunter2"), "{all}");
    let token = ObjectRef::new("v1", "Secret", Some(&ns), "token");
    assert!(
        read(&kubeconfig, token.clone()).await.is_none(),
        "plan applied"
    );

    // Applied, then changed: the plan is a diff against the live object.
    assert_exit(&graphrun("apply", &file, &[]), 0);
    let text = std::fs::read_to_string(&file.path).unwrap();
    let changed = text.replace(
        "name = \"token\",",
        "name = \"token\", labels = { tier = \"gold\" },",
    );
    write_file(file.dir.path(), "playbook.toml", &changed);
    let plan = graphrun("plan", &file, &[]);
    assert_exit(&plan, 0);
    let diff = ops(&plan)[0].2.clone().unwrap();
    assert!(diff.contains("+    tier: gold"), "{diff}");
    assert!(!diff.contains("+kind: Secret"), "only what changes: {diff}");
}

#[tokio::test]
async fn waits_for_a_deployment_rollout() {
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let ns = unique("kops-wait");
    let objects = format!("{}{}", namespace_toml(&ns), deployment_toml(&ns, "web", ""));
    let file = manifest_playbook(
        &kubeconfig,
        "ready = true\nready_timeout = \"2m\"",
        &objects,
    );
    let output = graphrun("apply", &file, &[]);
    assert_exit(&output, 0);
    let waits: Vec<_> = (ops(&output).into_iter())
        .filter(|(summary, _, _)| summary.starts_with("wait for"))
        .collect();
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!(
        (waits[0].0.as_str(), waits[0].1.as_str()),
        (
            format!("wait for Deployment {ns}/web: rollout complete (at most 120s)").as_str(),
            "ok"
        )
    );
    let web = ObjectRef::new("apps/v1", "Deployment", Some(&ns), "web");
    let live = read(&kubeconfig, web).await.unwrap();
    assert_eq!(live["status"]["updatedReplicas"], 1);
}

#[tokio::test]
async fn a_wait_that_never_ends_times_out_saying_what_it_saw() {
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let ns = unique("kops-stuck");
    // No node has this label: the pod stays Pending and the rollout never completes.
    let stuck = deployment_toml(&ns, "stuck", "\"graphrun.test/none\" = \"true\"");
    let objects = format!("{}{stuck}", namespace_toml(&ns));
    let file = manifest_playbook(
        &kubeconfig,
        "ready = true\nready_timeout = \"3s\"",
        &objects,
    );
    let output = graphrun("apply", &file, &[]);
    assert_exit(&output, 1);
    let error = events(&output, "node_finished")
        .find_map(|e| e["error"].as_str().map(str::to_string))
        .unwrap();
    assert!(
        error.contains(&format!(
            "`wait for Deployment {ns}/stuck: rollout complete (at most 3s)` failed"
        )),
        "{error}"
    );
    assert!(
        error.contains("for the rollout to complete; last seen:"),
        "{error}"
    );
    // The wait said what it saw while it went on.
    assert!(events(&output, "wait_progress").next().is_some());
}

/// The lab inventory and the kubeconfig rewritten as a control-plane host has it
/// (`https://127.0.0.1:6443`): this machine cannot reach that, the host can.
fn tunnel_setup(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let kubeconfig = kubeconfig()?;
    let Ok(inventory) = std::env::var("GRAPHRUN_LAB_INVENTORY") else {
        skip(
            "lab",
            "tests/lab/lab.sh up 4; eval \"$(tests/lab/lab.sh env)\"",
        );
        return None;
    };
    let api = std::env::var("GRAPHRUN_K8S_API").expect("GRAPHRUN_K8S_API (cluster.sh env)");
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(text.contains(&api), "{api} in {}", kubeconfig.display());
    let local = write_file(
        dir,
        "local.kubeconfig",
        &text.replace(&api, "https://127.0.0.1:6443"),
    );
    Some((inventory.into(), local))
}

#[tokio::test]
async fn an_api_server_only_its_host_reaches_is_reached_through_an_ssh_tunnel() {
    let dir = tempfile::tempdir().unwrap();
    let Some((inventory, local_kubeconfig)) = tunnel_setup(dir.path()) else {
        return;
    };
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", 6443)).is_err(),
        "something listens on this machine's port 6443: the tunnel would not be needed"
    );
    let ns = unique("kops-tunnel");
    let file = TempPlaybook::new(&format!(
        "[steps.objects]\nplugin = \"manifest\"\non = \"h4\"\nkubeconfig = \"{}\"\n{}",
        local_kubeconfig.display(),
        namespace_toml(&ns)
    ));
    let output = graphrun(
        "apply",
        &file,
        &["--inventory", inventory.to_str().unwrap()],
    );
    assert_exit(&output, 0);
    assert_eq!(statuses(&output)["objects@h4"], "changed");
    let kubeconfig = kubeconfig().unwrap();
    assert!(
        read(&kubeconfig, ObjectRef::new("v1", "Namespace", None, &ns))
            .await
            .is_some()
    );
}
