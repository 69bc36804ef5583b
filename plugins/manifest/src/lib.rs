//! The built-in `manifest` step: Kubernetes objects, given inline as TOML tables or in YAML
//! files (several documents each), applied server-side (field manager `graphrun`) from the
//! control machine with a cluster step's
//! kubeconfig; with `ready = true`, then waited for until ready. The objects belong to the
//! cluster, not to a host, so the step runs once (on the first host of `on`, the way to the API
//! server when this machine has none).

use std::time::Duration;

use graphrun_plugin_api::{
    KubeRef, Op, ParamKind, ParamSpec, Params, Plan, PlanRequest, PlanResponse, Plugin,
    PluginError, PluginInfo, Probe, ProbeResult, Wait,
};
use graphrun_plugin_kit::helm::duration_seconds;
use serde::Deserialize;

/// How long `ready = true` waits for each object unless `ready_timeout` says otherwise.
const DEFAULT_READY_TIMEOUT: &str = "5m";

/// Applies Kubernetes objects and waits for them.
#[derive(Debug, Default)]
pub struct ManifestPlugin;

impl Plugin for ManifestPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "manifest".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Applies Kubernetes objects server-side (field manager graphrun), once per cluster, and waits for them".into(),
            params: vec![
                ParamSpec::required(
                    "kubeconfig",
                    ParamKind::String,
                    "Kubeconfig on the control machine, e.g. \"{{ steps.cluster.outputs.kubeconfig }}\"",
                ),
                ParamSpec::optional(
                    "objects",
                    ParamKind::Any,
                    "The objects, as [[steps.ID.objects]] tables (apiVersion, kind, metadata, …), applied in order",
                ),
                ParamSpec::optional(
                    "files",
                    ParamKind::StringList,
                    "YAML files on this machine (relative to the playbook), each of one or more documents, applied after `objects`",
                ),
                ParamSpec::optional(
                    "ready",
                    ParamKind::Bool,
                    "true: after applying, wait for each Deployment's rollout and each CustomResourceDefinition to be Established",
                ),
                ParamSpec::optional(
                    "ready_timeout",
                    ParamKind::String,
                    "Longest wait for one object, e.g. \"90s\", \"5m\"",
                )
                .with_default(DEFAULT_READY_TIMEOUT.into()),
            ],
            once: true,
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        let mut errors = Vec::new();
        if !params.has("objects") && !params.has("files") {
            errors.push(PluginError::param(
                "objects",
                "give the objects: [[steps.ID.objects]] tables, or files = [\"….yaml\"]",
            ));
        } else if params.has("objects") && !params.is_unrendered("objects") {
            errors.extend(objects(params).err());
        }
        if !params.is_unrendered("ready_timeout") {
            errors.extend(ready_timeout(params).err());
        }
        errors
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let params = &request.params;
        let kubeconfig = params.required_str("kubeconfig")?;
        let files = params.string_list("files")?;
        if !files.is_empty() && request.probes.is_empty() {
            let probes = files.iter().map(|file| Probe::local_file(file, file));
            return Ok(PlanResponse::Probe {
                probes: probes.collect(),
            });
        }
        let mut objects = if params.has("objects") {
            objects(params)?
        } else {
            Vec::new()
        };
        for file in &files {
            objects.extend(documents(file, &request.probes[file])?);
        }
        let mut ops: Vec<Op> = (objects.iter())
            .map(|(_, object)| Op::kube_apply(kubeconfig, object.clone()))
            .collect();
        if params.flag_or("ready", false)? {
            let timeout = ready_timeout(params)?;
            ops.extend(objects.into_iter().filter_map(|(target, _)| {
                let wait = readiness(&target)?;
                Some(Op::kube_wait(kubeconfig, target, wait, timeout))
            }));
        }
        Ok(Plan::ops(ops).into())
    }
}

/// The objects and what each names; each needs `apiVersion`, `kind` and `metadata.name`.
fn objects(params: &Params) -> Result<Vec<(KubeRef, serde_json::Value)>, PluginError> {
    let bad = |message: String| PluginError::param("objects", message);
    let Some(serde_json::Value::Array(items)) = params.get("objects") else {
        return Err(bad(
            "must be a list of tables: write each object as [[steps.ID.objects]]".into(),
        ));
    };
    if items.is_empty() {
        return Err(bad("is empty: give at least one object".into()));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, object)| match KubeRef::of(object) {
            Some(target) => Ok((target, object.clone())),
            None => Err(bad(format!(
                "object {} needs apiVersion, kind and metadata.name",
                index + 1
            ))),
        })
        .collect()
}

/// The objects of a YAML file (as the engine read it), in order; empty documents are skipped.
fn documents(
    file: &str,
    read: &ProbeResult,
) -> Result<Vec<(KubeRef, serde_json::Value)>, PluginError> {
    let bad = |message: String| PluginError::param("files", message);
    if read.exit_code != 0 {
        return Err(bad(read.stderr.trim().to_string()));
    }
    let mut found = Vec::new();
    for (index, document) in serde_yaml_ng::Deserializer::from_str(&read.stdout).enumerate() {
        let object = serde_json::Value::deserialize(document)
            .map_err(|err| bad(format!("{file}: document {}: {err}", index + 1)))?;
        if object.is_null() {
            continue;
        }
        let target = KubeRef::of(&object).ok_or_else(|| {
            bad(format!(
                "{file}: document {} needs apiVersion, kind and metadata.name",
                index + 1
            ))
        })?;
        found.push((target, object));
    }
    Ok(found)
}

fn ready_timeout(params: &Params) -> Result<Duration, PluginError> {
    let text = params
        .str("ready_timeout")?
        .unwrap_or(DEFAULT_READY_TIMEOUT);
    duration_seconds(text)
        .map(Duration::from_secs)
        .ok_or_else(|| {
            PluginError::param(
                "ready_timeout",
                format!("`{text}` is not a duration such as \"90s\", \"5m\" or \"1h30m\""),
            )
        })
}

/// What "ready" means for an object of this kind, for the kinds that have a meaning of it.
fn readiness(target: &KubeRef) -> Option<Wait> {
    match (target.api_version.as_str(), target.kind.as_str()) {
        ("apps/v1", "Deployment") => Some(Wait::Rollout),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => {
            Some(Wait::condition("Established"))
        }
        _ => None,
    }
}

#[cfg(feature = "export")]
graphrun_plugin_api::export_plugin!(ManifestPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(params: serde_json::Value) -> Result<Plan, PluginError> {
        let request = PlanRequest {
            params: serde_json::from_value(params).unwrap(),
            ..Default::default()
        };
        match ManifestPlugin.plan(&request)? {
            PlanResponse::Plan(plan) => Ok(plan),
            other => panic!("expected a plan, got {other:?}"),
        }
    }

    #[test]
    fn objects_are_applied_in_order_then_waited_for_when_they_have_a_readiness() {
        let namespace =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}});
        let web = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo"}, "spec": {}});
        let plan = plan(
            json!({"kubeconfig": "/k", "objects": [namespace, web], "ready": true,
            "ready_timeout": "90s"}),
        )
        .unwrap();
        let summaries: Vec<String> = plan.ops.iter().map(Op::summary).collect();
        assert_eq!(
            summaries,
            [
                "apply Namespace demo",
                "apply Deployment demo/web",
                "wait for Deployment demo/web: rollout complete (at most 90s)"
            ]
        );
    }

    #[test]
    fn an_object_without_a_name_is_refused_saying_which() {
        let params = serde_json::from_value(json!({"kubeconfig": "/k", "objects": [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {}}
        ]}))
        .unwrap();
        let errors = ManifestPlugin.validate(&params);
        assert_eq!(
            errors[0].message,
            "object 2 needs apiVersion, kind and metadata.name"
        );
        let params =
            serde_json::from_value(json!({"kubeconfig": "/k", "objects": {"a": 1}})).unwrap();
        assert!(ManifestPlugin.validate(&params)[0]
            .message
            .contains("[[steps.ID.objects]]"));
    }

    #[test]
    fn yaml_files_are_read_by_the_engine_and_their_documents_applied_after_the_objects() {
        let mut request = PlanRequest {
            params: serde_json::from_value(json!({"kubeconfig": "/k", "files": ["app.yaml"],
                "objects": [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}]}))
            .unwrap(),
            ..Default::default()
        };
        let PlanResponse::Probe { probes } = ManifestPlugin.plan(&request).unwrap() else {
            panic!("the files are asked for first")
        };
        assert_eq!(probes, [Probe::local_file("app.yaml", "app.yaml")]);
        let yaml = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: a}\n---\n\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: a}\n";
        let read = ProbeResult {
            stdout: yaml.into(),
            ..Default::default()
        };
        request.probes.insert("app.yaml".into(), read);
        let PlanResponse::Plan(plan) = ManifestPlugin.plan(&request).unwrap() else {
            panic!("a plan")
        };
        let summaries: Vec<String> = plan.ops.iter().map(Op::summary).collect();
        assert_eq!(
            summaries,
            [
                "apply Namespace a",
                "apply ConfigMap a/c",
                "apply Secret a/s"
            ]
        );
        let broken = ProbeResult {
            stdout: "apiVersion: v1\nkind: ConfigMap\n".into(),
            ..Default::default()
        };
        request.probes.insert("app.yaml".into(), broken);
        let error = ManifestPlugin.plan(&request).unwrap_err();
        assert_eq!(
            error.message,
            "app.yaml: document 1 needs apiVersion, kind and metadata.name"
        );
    }

    #[test]
    fn it_runs_once_per_cluster() {
        assert!(ManifestPlugin.info().once);
    }
}
