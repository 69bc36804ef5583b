//! The `charts` table: one release per key, checked as the kit's [`Release`] checks it.

use graphrun_plugin_api::params::is_template;
use graphrun_plugin_api::{Params, PluginError};
use graphrun_plugin_kit::helm::{Release, Repository};
use serde_json::Value;

/// The keys a release's table may have.
const KEYS: &[&str] = &[
    "chart",
    "namespace",
    "version",
    "values",
    "wait",
    "rollback_on_failure",
];

/// The releases of `charts = { NAME = { chart = …, … } }`; a chart named `REPO/CHART` takes the
/// repository of that name from `repositories`.
pub fn releases(
    charts: &Params,
    repositories: &[Repository],
    helm: &str,
    kubeconfig: Option<&str>,
) -> Result<Vec<Release>, PluginError> {
    charts
        .0
        .iter()
        .map(|(name, fields)| {
            let error =
                |message: String| PluginError::param("charts", format!("`{name}`: {message}"));
            let Value::Object(fields) = fields else {
                return Err(error(
                    "expected a table such as { chart = \"repo/chart\", namespace = \"apps\" }"
                        .into(),
                ));
            };
            if let Some(unknown) = fields.keys().find(|key| !KEYS.contains(&key.as_str())) {
                return Err(error(format!(
                    "unknown key `{unknown}` (known: {})",
                    KEYS.join(", ")
                )));
            }
            let string = |key: &str| match fields.get(key) {
                None => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.as_str())),
                Some(_) => Err(error(format!("`{key}` must be a string"))),
            };
            let chart = string("chart")?.ok_or_else(|| error("`chart` is required".into()))?;
            let mut release = Release::new(name, chart, string("namespace")?.unwrap_or("default"));
            release.version = string("version")?.map(str::to_string);
            release.wait = string("wait")?.map(str::to_string);
            release.values = match fields.get("values") {
                None => Default::default(),
                Some(Value::Object(values)) => values.clone(),
                Some(_) => return Err(error("`values` must be a table".into())),
            };
            release.rollback_on_failure = match fields.get("rollback_on_failure") {
                None => false,
                Some(Value::Bool(flag)) => *flag,
                Some(_) => return Err(error("`rollback_on_failure` must be true or false".into())),
            };
            release.helm = helm.to_string();
            release.kubeconfig = kubeconfig.map(str::to_string);
            release.repository = repository(chart, repositories).map_err(error)?;
            let unrendered = [
                Some(name.as_str()),
                Some(chart),
                release.version.as_deref(),
                release.wait.as_deref(),
                Some(release.namespace.as_str()),
            ]
            .into_iter()
            .flatten()
            .any(is_template);
            if !unrendered {
                release.validate().map_err(|e| match e.param {
                    Some(key) => error(format!("`{key}`: {}", e.message)),
                    None => error(e.message),
                })?;
            }
            Ok(release)
        })
        .collect()
}

/// The repository a `REPO/CHART` chart comes from (none for `oci://…`, a path, or a template).
fn repository(chart: &str, repositories: &[Repository]) -> Result<Option<Repository>, String> {
    if chart.starts_with("oci://") || chart.starts_with('/') || is_template(chart) {
        return Ok(None);
    }
    let Some((prefix, _)) = chart.split_once('/') else {
        return Err(format!(
            "`{chart}` is neither REPOSITORY/CHART, oci://… nor an absolute path on the host"
        ));
    };
    match repositories.iter().find(|r| r.name == prefix) {
        Some(repository) => Ok(Some(repository.clone())),
        None => Err(format!("`{chart}` comes from the repository `{prefix}`, which `repositories` does not list: add {prefix} = \"https://…\" to it")),
    }
}
