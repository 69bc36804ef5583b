//! graphrun-kube against the real API server of the test harness (tests/k8s/cluster.sh: a
//! kube-apiserver with a kwok node on a lab host, reached over the lab network). Skipped unless
//! GRAPHRUN_K8S_KUBECONFIG is set; CI=true makes a missing control plane an error.

use std::path::PathBuf;
use std::time::Duration;

use graphrun_kube::{Cluster, Condition, Error, ObjectRef, FIELD_MANAGER};
use serde_json::json;

fn kubeconfig() -> Option<PathBuf> {
    let Ok(path) = std::env::var("GRAPHRUN_K8S_KUBECONFIG") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must start the control plane (tests/k8s/cluster.sh up)"
        );
        eprintln!("skipped: no control plane (tests/k8s/cluster.sh up, then eval \"$(tests/k8s/cluster.sh env)\")");
        return None;
    };
    Some(path.into())
}

async fn cluster() -> Option<Cluster> {
    Some(Cluster::connect(&kubeconfig()?).await.expect("connect"))
}

fn namespace(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn config_map(namespace: &str, data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "settings", "namespace": namespace}, "data": data})
}

fn deployment(namespace: &str, name: &str, node_selector: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": name, "namespace": namespace},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"nodeSelector": node_selector,
                                          "containers": [{"name": "web", "image": "registry.invalid/web:1"}]}}}})
}

#[tokio::test]
async fn apply_creates_then_changes_nothing_then_updates_and_reads_back() {
    let Some(cluster) = cluster().await else {
        return;
    };
    cluster.apply(&namespace("kube-apply")).await.unwrap();

    let first = config_map("kube-apply", json!({"mode": "a"}));
    let created = cluster.apply(&first).await.unwrap();
    let again = cluster.apply(&first).await.unwrap();
    let updated = cluster
        .apply(&config_map("kube-apply", json!({"mode": "b"})))
        .await
        .unwrap();
    let settings = ObjectRef::new("v1", "ConfigMap", Some("kube-apply"), "settings");
    assert_eq!(created.object, settings);
    // Changed whether it was new or left with other data by an earlier run.
    assert!(created.changed);
    assert!(!again.changed, "the same object twice changes nothing");
    assert!(updated.changed, "new data is a change");

    let read = cluster.get(&settings).await.unwrap().expect("exists");
    assert_eq!(read["data"]["mode"], "b");
    let managers: Vec<_> = read["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["manager"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(managers, [FIELD_MANAGER], "applied server-side by graphrun");

    let missing = ObjectRef::new("v1", "ConfigMap", Some("kube-apply"), "absent");
    assert!(cluster.get(&missing).await.unwrap().is_none());
}

#[tokio::test]
async fn bad_objects_are_refused_with_what_is_wrong() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let unknown = json!({"apiVersion": "example.graphrun.test/v1", "kind": "Gadget",
                         "metadata": {"name": "g", "namespace": "default"}});
    let error = cluster.apply(&unknown).await.unwrap_err();
    assert!(matches!(error, Error::UnknownKind { .. }), "{error}");
    assert!(
        error.to_string().contains("does not serve Gadget"),
        "{error}"
    );

    // Strict field validation: a typo is an error from the server, not silently dropped.
    let typo = json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "typo", "namespace": "default"}, "dta": {"a": "b"}});
    let error = cluster.apply(&typo).await.unwrap_err();
    assert!(error.to_string().contains("dta"), "{error}");
    assert!(
        error
            .to_string()
            .starts_with("apply configmap/typo in namespace default"),
        "{error}"
    );
}

#[tokio::test]
async fn waits_for_node_ready_deployment_available_and_crd_established() {
    let Some(cluster) = cluster().await else {
        return;
    };
    let node = ObjectRef::new("v1", "Node", None, "kwok-node-0");
    cluster
        .wait(
            &Condition::new(node, "Ready"),
            Duration::from_secs(60),
            &|_| {},
        )
        .await
        .unwrap();

    cluster.apply(&namespace("kube-wait")).await.unwrap();
    let web = deployment("kube-wait", "web", json!({}));
    let applied = cluster.apply(&web).await.unwrap();
    cluster
        .wait(
            &Condition::new(applied.object, "Available"),
            Duration::from_secs(120),
            &|_| {},
        )
        .await
        .unwrap();

    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.kube.graphrun.test"},
        "spec": {"group": "kube.graphrun.test", "scope": "Namespaced",
                 "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object",
                                   "properties": {"spec": {"type": "object",
                                       "properties": {"size": {"type": "integer"}}}}}}}]}});
    let applied = cluster.apply(&crd).await.unwrap();
    cluster
        .wait(
            &Condition::new(applied.object, "Established"),
            Duration::from_secs(60),
            &|_| {},
        )
        .await
        .unwrap();
    // A custom resource of the new kind applies like any built-in one.
    let gizmo = json!({"apiVersion": "kube.graphrun.test/v1", "kind": "Gizmo",
                       "metadata": {"name": "g1", "namespace": "kube-wait"}, "spec": {"size": 3}});
    cluster.apply(&gizmo).await.unwrap();
    let read = cluster.get(&ObjectRef::of(&gizmo).unwrap()).await.unwrap();
    assert_eq!(read.unwrap()["spec"]["size"], 3);
}

#[tokio::test]
async fn a_condition_that_never_comes_times_out_saying_what_was_seen() {
    let Some(cluster) = cluster().await else {
        return;
    };
    cluster.apply(&namespace("kube-stuck")).await.unwrap();
    // No node has this label: the pods stay Pending and the Deployment never becomes Available.
    // A new one per run: after its progress deadline (10 min) an old one reports a failure.
    let name = format!("stuck-{}", std::process::id());
    let stuck = deployment("kube-stuck", &name, json!({"graphrun.test/none": "true"}));
    let applied = cluster.apply(&stuck).await.unwrap();
    let heard = std::sync::Mutex::new(Vec::new());
    let progress = |seen: &str| heard.lock().unwrap().push(seen.to_string());
    let error = cluster
        .wait(
            &Condition::new(applied.object, "Available"),
            Duration::from_secs(3),
            &progress,
        )
        .await
        .unwrap_err();
    let Error::Timeout { last, .. } = &error else {
        panic!("expected a timeout, got {error}")
    };
    // Progress heard what the timeout reports last.
    assert_eq!(heard.lock().unwrap().last(), Some(last));
    assert!(
        last.contains("status False") || last.contains("no Available condition"),
        "{last}"
    );
    assert!(
        error
            .to_string()
            .contains("for Available to be True; last seen: "),
        "{error}"
    );

    let error = cluster
        .wait_rollout(
            &ObjectRef::of(&stuck).unwrap(),
            Duration::from_secs(2),
            &|_| {},
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("for the rollout to complete; last seen: 0 of 2 updated replicas available"),
        "{error}"
    );
}

#[tokio::test]
async fn a_rollout_past_its_progress_deadline_fails_without_waiting_out_the_timeout() {
    let Some(cluster) = cluster().await else {
        return;
    };
    cluster.apply(&namespace("kube-deadline")).await.unwrap();
    let name = format!("late-{}", std::process::id());
    let mut late = deployment(
        "kube-deadline",
        &name,
        json!({"graphrun.test/none": "true"}),
    );
    late["spec"]["progressDeadlineSeconds"] = json!(2);
    let applied = cluster.apply(&late).await.unwrap();
    let error = cluster
        .wait_rollout(&applied.object, Duration::from_secs(120), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Failed { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("reason ProgressDeadlineExceeded"),
        "{error}"
    );
}

#[tokio::test]
async fn waits_for_a_rollout_of_a_new_spec() {
    let Some(cluster) = cluster().await else {
        return;
    };
    cluster.apply(&namespace("kube-rollout")).await.unwrap();
    let mut web = deployment("kube-rollout", "web", json!({}));
    let applied = cluster.apply(&web).await.unwrap();
    cluster
        .wait_rollout(&applied.object, Duration::from_secs(120), &|_| {})
        .await
        .unwrap();
    // A new image: a new generation, new pods; the wait covers the whole replacement.
    web["spec"]["template"]["spec"]["containers"][0]["image"] = json!("registry.invalid/web:2");
    assert!(cluster.apply(&web).await.unwrap().changed);
    cluster
        .wait_rollout(&applied.object, Duration::from_secs(120), &|_| {})
        .await
        .unwrap();
    let read = cluster.get(&applied.object).await.unwrap().unwrap();
    assert_eq!(read["status"]["updatedReplicas"], 2);
    assert_eq!(read["status"]["availableReplicas"], 2);
    assert_eq!(read["status"]["replicas"], 2);

    let node = ObjectRef::new("v1", "Node", None, "kwok-node-0");
    let error = cluster
        .wait_rollout(&node, Duration::from_secs(1), &|_| {})
        .await
        .unwrap_err();
    assert!(matches!(error, Error::NoRollout { .. }), "{error}");
}

#[tokio::test]
async fn a_missing_kubeconfig_is_an_error_naming_the_file() {
    let path = PathBuf::from("/nonexistent/graphrun/kubeconfig");
    let Err(error) = Cluster::connect(&path).await else {
        panic!("connected without a kubeconfig")
    };
    assert!(
        error
            .to_string()
            .contains("/nonexistent/graphrun/kubeconfig"),
        "{error}"
    );
}
