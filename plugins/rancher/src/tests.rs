use super::*;
use graphrun_plugin_api::ProbeResult;
use graphrun_plugin_kit::testkit::{assert_snapshot, ok, render, Request, DEBIAN_12};
use serde_json::json;

fn params() -> serde_json::Value {
    json!({
        "kubeconfig": "/work/.graphrun/kube_config_cluster.yml",
        "version": "2.15.0",
        "hostname": "rancher-demo.domain.test",
        "bootstrap_password": "example-bootstrap",
        "replicas": 1,
    })
}

const CHART: &str = "apiVersion: v2\nkubeVersion: < 1.37.0-0\nname: rancher\nversion: 2.15.0\n";
const READY: &str = r#"{"subsets": [{"addresses": [{"ip": "10.42.0.7"}]}]}"#;
const NOT_READY: &str = r#"{"kind": "Endpoints", "metadata": {"name": "cert-manager-webhook"}}"#;

/// Plans against a cluster at `git_version` whose cert-manager webhook Endpoints read `webhook`.
fn plan(params: serde_json::Value, git_version: &str, webhook: &str) -> Result<Plan, PluginError> {
    Request::new(params)
        .host(&DEBIAN_12)
        .plan(&RancherPlugin, |probe| match probe.name.as_str() {
            PROBE_SERVER => Some(ok(&json!({"gitVersion": git_version}).to_string())),
            PROBE_CHART => Some(ok(CHART)),
            PROBE_WEBHOOK => Some(ok(webhook)),
            _ => None,
        })
}

fn values(params: serde_json::Value) -> Result<serde_json::Value, PluginError> {
    let params: Params = serde_json::from_value(params).unwrap();
    super::values(&Args::new(PARAMS, &params)).map(serde_json::Value::Object)
}

#[test]
fn a_first_install_with_rancher_certificates() {
    let plan = plan(params(), "v1.34.4", READY).unwrap();
    assert_snapshot(env!("CARGO_MANIFEST_DIR"), "first-install", &render(&plan));
    assert_eq!(plan.outputs["url"], "https://rancher-demo.domain.test");
}

#[test]
fn the_probes_ask_for_the_webhook_only_when_cert_manager_makes_the_certificate() {
    let probes = |params: serde_json::Value| -> Vec<String> {
        let request = Request::new(params).build();
        match RancherPlugin.plan(&request).unwrap() {
            PlanResponse::Probe { probes } => probes.into_iter().map(|p| p.name).collect(),
            PlanResponse::Plan(plan) => panic!("probes expected: {plan:?}"),
        }
    };
    assert!(probes(params()).contains(&PROBE_WEBHOOK.to_string()));
    let mut secret = params();
    secret["tls_source"] = json!("secret");
    assert!(!probes(secret).contains(&PROBE_WEBHOOK.to_string()));
}

#[test]
fn an_unready_webhook_is_reported_before_helm_runs() {
    let error = plan(params(), "v1.34.4", NOT_READY).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("tls_source"));
    assert!(
        error.message.starts_with("Rancher with tls_source = \"rancher\" needs cert-manager, whose webhook validates the certificate Issuer the chart creates, and that webhook is not ready"),
        "{error}"
    );
    let mut secret = params();
    secret["tls_source"] = json!("secret");
    assert!(plan(secret, "v1.34.4", NOT_READY).is_ok());
}

#[test]
fn a_cluster_newer_than_the_charts_range_is_refused() {
    let error = plan(params(), "v1.37.0", READY).unwrap_err();
    assert_eq!(error.param.as_deref(), Some("version"));
    assert_eq!(
        error.message,
        "rancher-stable/rancher 2.15.0 requires Kubernetes < 1.37.0-0, and the cluster runs 1.37.0: pick a chart version made for 1.37"
    );
}

#[test]
fn values_follow_the_tls_source() {
    assert_eq!(
        values(params()).unwrap(),
        json!({"hostname": "rancher-demo.domain.test", "bootstrapPassword": "example-bootstrap",
               "replicas": 1, "ingress": {"tls": {"source": "rancher"}}})
    );
    let mut letsencrypt = params();
    letsencrypt["tls_source"] = json!("letsEncrypt");
    letsencrypt["letsencrypt_email"] = json!("ops@domain.test");
    letsencrypt["ingress_class"] = json!("traefik");
    let values = values(letsencrypt).unwrap();
    assert_eq!(
        values["ingress"],
        json!({"tls": {"source": "letsEncrypt"}, "ingressClassName": "traefik"})
    );
    assert_eq!(
        values["letsEncrypt"],
        json!({"email": "ops@domain.test", "ingress": {"class": "traefik"}})
    );
}

#[test]
fn the_users_values_cannot_undo_the_steps_parameters() {
    let mut params = params();
    params["values"] = json!({"hostname": "other.test", "auditLog": {"enabled": true}});
    let params: Params = serde_json::from_value(params).unwrap();
    let release = release(&Args::new(PARAMS, &params)).unwrap();
    assert_eq!(release.values["hostname"], "rancher-demo.domain.test");
    assert_eq!(release.values["auditLog"], json!({"enabled": true}));
    assert_eq!(
        (release.name.as_str(), release.namespace.as_str()),
        ("rancher", "cattle-system")
    );
}

#[test]
fn validation_refuses_each_bad_combination() {
    let refused = |change: serde_json::Value| -> String {
        let mut params = params();
        for (key, value) in change.as_object().unwrap() {
            params[key] = value.clone();
        }
        let errors = RancherPlugin.validate(&serde_json::from_value(params).unwrap());
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(refused(json!({})), "");
    assert_eq!(
        refused(json!({"tls_source": "letsEncrypt"})),
        "parameter `tls_source`: \"letsEncrypt\" needs `letsencrypt_email` (Let's Encrypt's account contact)"
    );
    assert!(refused(json!({"tls_source": "selfsigned"}))
        .contains("is not one of \"rancher\", \"letsEncrypt\", \"secret\""));
    assert!(refused(json!({"letsencrypt_email": "a@b.test"}))
        .contains("with tls_source = \"letsEncrypt\" only"));
    assert!(refused(json!({"hostname": "192.168.86.36"})).contains("is not a DNS name"));
    assert!(refused(json!({"replicas": 0})).contains("at least 1"));
    assert_eq!(
        refused(json!({"bootstrap_password": "{{ vars.password }}"})),
        ""
    );
}

#[test]
fn a_chart_helm_cannot_show_is_reported_in_helms_words() {
    let error = Request::new(params())
        .plan(&RancherPlugin, |probe| match probe.name.as_str() {
            PROBE_SERVER => Some(ok(r#"{"gitVersion": "v1.34.4"}"#)),
            PROBE_CHART => Some(ProbeResult {
                exit_code: 1,
                stdout: String::new(),
                stderr: "Error: chart \"rancher\" version \"2.15.0\" not found in https://releases.rancher.com/server-charts/stable repository\n".into(),
            }),
            _ => None,
        })
        .unwrap_err();
    assert!(
        error
            .message
            .starts_with("cannot read rancher-stable/rancher 2.15.0's Chart.yaml"),
        "{error}"
    );
}
