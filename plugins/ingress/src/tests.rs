use super::*;
use graphrun_plugin_kit::testkit::{assert_snapshot, Request};
use serde_json::json;

fn params() -> serde_json::Value {
    json!({
        "kubeconfig": "/work/.graphrun/kube_config_cluster.yml",
        "name": "minio-console",
        "namespace": "minio",
        "host": "minio.domain.test",
        "paths": [{"service": "minio-console", "port": 9001}],
    })
}

fn object(params: serde_json::Value) -> Result<serde_json::Value, PluginError> {
    let params: Params = serde_json::from_value(params).unwrap();
    ingress(&Args::new(PARAMS, &params))
}

#[test]
fn the_plan_applies_one_ingress_server_side() {
    let mut params = params();
    params["ingress_class"] = json!("traefik");
    params["tls_secret"] = json!("minio-tls");
    params["annotations"] =
        json!({"traefik.ingress.kubernetes.io/router.entrypoints": "websecure"});
    params["paths"] = json!([
        {"service": "minio-console", "port": 9001},
        {"path": "/api", "path_type": "Exact", "service": "minio", "port": "http"},
    ]);
    let plan = Request::new(params).plan(&IngressPlugin, |_| None).unwrap();
    let [Op::KubeApply {
        kubeconfig,
        object,
        dry_run: false,
    }] = plan.ops.as_slice()
    else {
        panic!("one apply expected: {:?}", plan.ops);
    };
    assert_eq!(kubeconfig, "/work/.graphrun/kube_config_cluster.yml");
    let text = serde_json::to_string_pretty(object).unwrap() + "\n";
    assert_snapshot(env!("CARGO_MANIFEST_DIR"), "ingress-traefik-tls", &text);
}

#[test]
fn defaults_are_prefix_at_the_root_without_class_or_tls() {
    let object = object(params()).unwrap();
    assert_eq!(
        object["spec"],
        json!({"rules": [{"host": "minio.domain.test", "http": {"paths": [{
            "path": "/", "pathType": "Prefix",
            "backend": {"service": {"name": "minio-console", "port": {"number": 9001}}}
        }]}}]})
    );
    assert_eq!(object["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(
        object["metadata"],
        json!({"name": "minio-console", "namespace": "minio"})
    );
}

#[test]
fn each_bad_part_is_refused_with_its_parameter() {
    let refused = |key: &str, value: serde_json::Value| {
        let mut params = params();
        params[key] = value;
        let errors = IngressPlugin.validate(&serde_json::from_value(params).unwrap());
        assert_eq!(errors.len(), 1, "{key}: {errors:?}");
        errors[0].to_string()
    };
    assert!(refused("host", json!("192.168.86.36")).contains("is not a host name"));
    assert!(refused("name", json!("MinIO")).contains("is not a Kubernetes name"));
    assert!(refused("paths", json!([])).contains("non-empty list"));
    assert_eq!(
        refused(
            "paths",
            json!([{"path": "api", "service": "web", "port": 80}])
        ),
        "parameter `paths`: entry 1: path `api` must start with `/`"
    );
    assert!(refused(
        "paths",
        json!([{"service": "web", "port": 80, "pathType": "Exact"}])
    )
    .contains("unknown key `pathType` (known: path, path_type, service, port)"));
    assert!(refused("paths", json!([{"service": "web", "port": 0}])).contains("port `0`"));
    assert!(refused("paths", json!([{"service": "web"}])).contains("`port` is required"));
    assert!(refused(
        "paths",
        json!([{"service": "web", "port": 80, "path_type": "prefix"}])
    )
    .contains("path_type `prefix` is not one of Prefix, Exact, ImplementationSpecific"));
    assert!(refused("ingress_class", json!("Traefik")).contains("parameter `ingress_class`"));
}

#[test]
fn templates_are_checked_once_rendered() {
    let mut params = params();
    params["host"] = json!("{{ vars.minio_host }}");
    assert!(IngressPlugin
        .validate(&serde_json::from_value(params).unwrap())
        .is_empty());
}
