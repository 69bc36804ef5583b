//! The Ingress object from the step's parameters, each part checked as the API server would.

use graphrun_plugin_api::{Params, PluginError};
use graphrun_plugin_kit::names::{check_object_name, is_host_name};
use graphrun_plugin_kit::params::Args;
use serde_json::{json, Value};

/// `pathType` values of `networking.k8s.io/v1`.
const PATH_TYPES: &[&str] = &["Prefix", "Exact", "ImplementationSpecific"];
/// Keys of one entry of `paths`.
const PATH_KEYS: &[&str] = &["path", "path_type", "service", "port"];

/// The Ingress the step's parameters describe.
pub fn ingress(args: &Args) -> Result<Value, PluginError> {
    let name = args.required_str("name")?;
    check_object_name("name", name, 253)?;
    let namespace = args.required_str("namespace")?;
    check_object_name("namespace", namespace, 63)?;
    let host = args.required_str("host")?;
    if !is_host_name(host, true) {
        return Err(PluginError::param(
            "host",
            format!("`{host}` is not a host name such as \"minio.example.com\" or \"*.example.com\" (an Ingress rule matches names, not addresses)"),
        ));
    }
    let paths = args
        .value("paths")
        .and_then(|v| v.as_array().cloned())
        .filter(|paths| !paths.is_empty())
        .ok_or_else(|| {
            PluginError::param(
                "paths",
                "expected a non-empty list of tables such as [{ path = \"/\", service = \"web\", port = 80 }]",
            )
        })?;
    let paths = paths
        .iter()
        .enumerate()
        .map(|(index, entry)| path(index, entry))
        .collect::<Result<Vec<_>, _>>()?;

    let mut object = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"rules": [{"host": host, "http": {"paths": paths}}]},
    });
    let annotations = args.string_map("annotations")?;
    if !annotations.is_empty() {
        object["metadata"]["annotations"] = json!(annotations);
    }
    if let Some(class) = args.str("ingress_class")? {
        check_object_name("ingress_class", class, 253)?;
        object["spec"]["ingressClassName"] = class.into();
    }
    if let Some(secret) = args.str("tls_secret")? {
        check_object_name("tls_secret", secret, 253)?;
        object["spec"]["tls"] = json!([{"hosts": [host], "secretName": secret}]);
    }
    Ok(object)
}

/// One HTTP path of the rule, from one entry of `paths`.
fn path(index: usize, entry: &Value) -> Result<Value, PluginError> {
    let wrong = |why: String| PluginError::param("paths", format!("entry {}: {why}", index + 1));
    let table: Params = match entry {
        Value::Object(map) => Params(map.clone()),
        _ => {
            return Err(wrong(
                "expected a table { path, path_type, service, port }".into(),
            ))
        }
    };
    if let Some(key) = table
        .0
        .keys()
        .find(|key| !PATH_KEYS.contains(&key.as_str()))
    {
        return Err(wrong(format!(
            "unknown key `{key}` (known: {})",
            PATH_KEYS.join(", ")
        )));
    }
    let text = |key: &str| table.str(key).map_err(|e| wrong(e.to_string()));
    let path = text("path")?.unwrap_or("/");
    if !path.starts_with('/') {
        return Err(wrong(format!("path `{path}` must start with `/`")));
    }
    let path_type = text("path_type")?.unwrap_or("Prefix");
    if !PATH_TYPES.contains(&path_type) {
        return Err(wrong(format!(
            "path_type `{path_type}` is not one of {}",
            PATH_TYPES.join(", ")
        )));
    }
    let service = text("service")?.ok_or_else(|| wrong("`service` is required".into()))?;
    check_object_name("paths", service, 63).map_err(|e| wrong(e.message))?;
    let port = match table.get("port") {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|p| (1..=65535).contains(&p)) => {
            json!({"number": n})
        }
        Some(Value::String(name)) if !name.is_empty() && name.len() <= 15 => json!({"name": name}),
        Some(other) => {
            return Err(wrong(format!(
                "port `{other}` is neither a port number (1-65535) nor a port name"
            )))
        }
        None => return Err(wrong("`port` is required".into())),
    };
    Ok(json!({
        "path": path,
        "pathType": path_type,
        "backend": {"service": {"name": service, "port": port}},
    }))
}
