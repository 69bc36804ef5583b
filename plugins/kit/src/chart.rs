//! What every chart step (cert-manager, Rancher, …) shares: its parameters, read into a
//! [`Release`], and its Kubernetes waits' timeout.
//!
//! A chart step names two kubeconfigs: `kubeconfig`, on the control machine (the cluster step's
//! output), for probes and waits through the API; and, optionally, `host_kubeconfig` for helm on
//! the step's host (Helm's default, `~/.kube/config`, as the `kubectl` step writes it).

use std::time::Duration;

use graphrun_plugin_api::{ParamKind, PlanRequest, PluginError};
use serde_json::{Map, Value};

use crate::helm::Release;
use crate::kube_version::Version;
use crate::params::{Args, Param};

/// `kubeconfig`: the cluster, for probes and waits from the control machine.
pub const KUBECONFIG: Param = Param::required(
    "kubeconfig",
    ParamKind::String,
    "Kubeconfig on the control machine (the cluster step's `kubeconfig` output), for the checks and waits",
);
/// `version`: the exact chart version.
pub const VERSION: Param = Param::required("version", ParamKind::String, "Exact chart version");
/// `values`: extra chart values.
pub const VALUES: Param = Param::optional(
    "values",
    ParamKind::Table,
    "Extra chart values (the step's own parameters take precedence)",
);
/// `host_kubeconfig`: the kubeconfig helm uses on the host.
pub const HOST_KUBECONFIG: Param = Param::optional(
    "host_kubeconfig",
    ParamKind::String,
    "Kubeconfig helm uses on the host (default: Helm's, ~/.kube/config)",
);
/// `helm`: the helm binary on the host.
pub const HELM: Param =
    Param::optional("helm", ParamKind::String, "The helm binary on the host").default_str("helm");
/// `wait_timeout`: how long helm and the step's own checks wait (`wait` and `timeout` are step
/// keys of the engine).
pub const WAIT_TIMEOUT: Param = Param::optional(
    "wait_timeout",
    ParamKind::String,
    "How long the install and each readiness check may take (\"90s\", \"5m\", \"1h30m\")",
)
.default_str("5m");

/// `chart`, with the step's default (`REPO/CHART`, `oci://…`, or a path on the host).
pub const fn chart(default: &'static str) -> Param {
    Param::optional(
        "chart",
        ParamKind::String,
        "The chart: REPOSITORY/CHART, oci://REGISTRY/PATH, or an archive's path on the host",
    )
    .default_str(default)
}

/// `repository`: the URL of the repository a `REPO/CHART` chart comes from.
pub const fn repository(default: &'static str) -> Param {
    Param::optional(
        "repository",
        ParamKind::String,
        "URL of the chart repository (a mirror, for air-gapped sites); used when `chart` is REPOSITORY/CHART",
    )
    .default_str(default)
}

/// The release `name` in `namespace` as the step's parameters describe it, with `values` (the
/// step's own) over the user's `values`.
pub fn release(
    args: &Args,
    name: &str,
    namespace: &str,
    values: Map<String, Value>,
) -> Result<Release, PluginError> {
    let chart = args.required_str("chart")?;
    let mut release = Release::new(name, chart, namespace);
    release.version = Some(args.required_str("version")?.to_string());
    let mut merged = args.table("values")?.map(|t| t.0).unwrap_or_default();
    merge(&mut merged, values);
    release.values = merged;
    let from_repository = !(chart.starts_with("oci://") || chart.starts_with('/'));
    if let (true, Some(url), Some((repository, _))) = (
        from_repository,
        args.str("repository")?,
        chart.split_once('/'),
    ) {
        release.repository = Some((repository, url).into());
    }
    release.kubeconfig = args.str("host_kubeconfig")?.map(str::to_string);
    release.helm = args.required_str("helm")?.to_string();
    // Checked here first, so an error names this step's parameter.
    wait_timeout(args)?;
    release.wait = Some(args.required_str("wait_timeout")?.to_string());
    release.validate()?;
    Ok(release)
}

/// The `wait_timeout` parameter as a duration, for the step's Kubernetes waits.
pub fn wait_timeout(args: &Args) -> Result<Duration, PluginError> {
    let text = args.required_str("wait_timeout")?;
    crate::helm::duration_seconds(text)
        .map(Duration::from_secs)
        .ok_or_else(|| {
            PluginError::param(
                "wait_timeout",
                format!("`{text}` is not a duration such as \"90s\", \"5m\" or \"1h30m\""),
            )
        })
}

/// The cluster's version from the answer of the Kubernetes version probe named `probe`, or why
/// it could not be read (the error points at `kubeconfig`).
pub fn server_version(
    request: &PlanRequest,
    probe: &str,
    kubeconfig: &str,
) -> Result<Version, PluginError> {
    let answer = request.probes.get(probe).cloned().unwrap_or_default();
    match Version::from_server(&answer.stdout) {
        Some(version) if answer.exit_code == 0 => Ok(version),
        _ => Err(PluginError::param(
            "kubeconfig",
            format!(
                "cannot read the cluster's Kubernetes version through {kubeconfig}: {}",
                match answer.stderr.trim() {
                    "" => "no answer",
                    why => why,
                }
            ),
        )),
    }
}

/// Merges `over` into `base`: tables key by key, anything else replaced.
pub fn merge(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(inner)), Value::Object(value)) => merge(inner, value),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn step_values_win_key_by_key_over_user_values() {
        let mut user = json!({"crds": {"enabled": false, "keep": true}, "replicaCount": 2});
        let step = json!({"crds": {"enabled": true}});
        merge(
            user.as_object_mut().unwrap(),
            step.as_object().unwrap().clone(),
        );
        assert_eq!(
            user,
            json!({"crds": {"enabled": true, "keep": true}, "replicaCount": 2})
        );
    }
}
