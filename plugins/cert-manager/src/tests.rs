use super::*;
use graphrun_plugin_api::ProbeResult;
use graphrun_plugin_kit::testkit::{assert_snapshot, ok, render, Request, DEBIAN_12};
use serde_json::json;

fn params() -> serde_json::Value {
    json!({"kubeconfig": "/work/.graphrun/kube_config_cluster.yml", "version": "v1.21.1"})
}

fn server(git_version: &str) -> ProbeResult {
    ok(&json!({"major": "1", "gitVersion": git_version}).to_string())
}

/// Plans with the cluster at `git_version` and helm's probe answering `release`.
fn plan(params: serde_json::Value, git_version: &str, release: &str) -> Result<Plan, PluginError> {
    Request::new(params)
        .host(&DEBIAN_12)
        .plan(&CertManagerPlugin, |probe| match probe.name.as_str() {
            PROBE_SERVER => Some(server(git_version)),
            name if name.starts_with("helm-release:") => Some(ok(release)),
            _ => None,
        })
}

const HELM_WITHOUT_RELEASE: &str = "#graphrun:version\nv3.19.0\n#graphrun:repositories\n\n#graphrun:release\n[]\n#graphrun:values\nnull\n";

#[test]
fn a_first_install_on_a_supported_cluster() {
    let plan = plan(params(), "v1.34.4", HELM_WITHOUT_RELEASE).unwrap();
    assert_snapshot(env!("CARGO_MANIFEST_DIR"), "first-install", &render(&plan));
}

#[test]
fn an_installed_release_with_the_same_version_and_values_is_only_checked() {
    let installed = "#graphrun:version\nv3.19.0\n#graphrun:repositories\n\n#graphrun:release\n\
        [{\"name\":\"cert-manager\",\"chart\":\"cert-manager-v1.21.1\",\"status\":\"deployed\"}]\n\
        #graphrun:values\n{\"crds\":{\"enabled\":true}}\n";
    let plan = plan(params(), "v1.34.4", installed).unwrap();
    assert!(
        !plan.ops.iter().any(|op| op.summary().contains("upgrade")),
        "{}",
        render(&plan)
    );
    let waits = plan
        .ops
        .iter()
        .filter(|op| matches!(op, Op::KubeWait { .. }))
        .count();
    assert_eq!(waits, CRDS.len() + DEPLOYMENTS.len());
    assert!(matches!(
        plan.ops.last(),
        Some(Op::KubeApply { dry_run: true, .. })
    ));
}

#[test]
fn the_chart_values_enable_the_crds_over_the_users_values() {
    let mut params = params();
    params["values"] = json!({"crds": {"enabled": false, "keep": true}, "replicaCount": 2});
    let args_params: Params = serde_json::from_value(params).unwrap();
    let release = release(&Args::new(PARAMS, &args_params)).unwrap();
    assert_eq!(
        serde_json::Value::Object(release.values),
        json!({"crds": {"enabled": true, "keep": true}, "replicaCount": 2})
    );
    assert_eq!(release.namespace, "cert-manager");
    assert_eq!(release.chart, "oci://quay.io/jetstack/charts/cert-manager");
    assert!(
        release.repository.is_none(),
        "an OCI chart needs no repository"
    );
}

#[test]
fn the_classic_repository_is_added_under_the_charts_prefix() {
    let mut params = params();
    params["chart"] = json!("jetstack/cert-manager");
    let params: Params = serde_json::from_value(params).unwrap();
    let release = release(&Args::new(PARAMS, &params)).unwrap();
    let repository = release.repository.unwrap();
    assert_eq!(
        (repository.name.as_str(), repository.url.as_str()),
        ("jetstack", "https://charts.jetstack.io")
    );
}

#[test]
fn an_rke1_cluster_at_1_32_is_refused_at_plan_time_with_the_release_to_use() {
    let error = plan(params(), "v1.32.6", HELM_WITHOUT_RELEASE).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("version"));
    assert!(
        error
            .message
            .contains("cert-manager 1.21 supports Kubernetes 1.33 to 1.36, and the cluster runs 1.32.6: for Kubernetes 1.32 use cert-manager 1.20"),
        "{error}"
    );

    let mut params = params();
    params["allow_unsupported_kubernetes"] = json!(true);
    assert!(plan(params, "v1.32.6", HELM_WITHOUT_RELEASE).is_ok());
}

#[test]
fn a_cluster_that_does_not_answer_is_named_with_its_kubeconfig() {
    let error = Request::new(params())
        .plan(&CertManagerPlugin, |probe| {
            (probe.name == PROBE_SERVER).then(|| ProbeResult {
                exit_code: 1,
                stdout: String::new(),
                stderr: "connect 10.77.6.14:6443: connection refused\n".into(),
            })
        })
        .unwrap_err();
    assert_eq!(error.param.as_deref(), Some("kubeconfig"));
    assert_eq!(
        error.message,
        "cannot read the cluster's Kubernetes version through /work/.graphrun/kube_config_cluster.yml: connect 10.77.6.14:6443: connection refused"
    );
}

#[test]
fn validation_refuses_what_cannot_work() {
    let refused = |change: serde_json::Value| {
        let mut params = params();
        for (key, value) in change.as_object().unwrap() {
            params[key] = value.clone();
        }
        let errors = CertManagerPlugin.validate(&serde_json::from_value(params).unwrap());
        errors
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(refused(json!({"version": "latest"})).contains("not a cert-manager version"));
    assert!(refused(json!({"version": ">=1.20"})).contains("not an exact chart version"));
    assert!(refused(json!({"wait_timeout": "five minutes"})) == "parameter `wait_timeout`: `five minutes` is not a duration such as \"90s\", \"5m\" or \"1h30m\"");
    assert!(refused(json!({"namespace": "Cert_Manager"})).contains("parameter `namespace`"));
    assert_eq!(refused(json!({})), "");
    assert_eq!(refused(json!({"version": "{{ vars.cert_manager }}"})), "");
}
