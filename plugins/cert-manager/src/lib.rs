//! The built-in `cert-manager` step: cert-manager's chart with its CRDs, checked against the
//! cluster's Kubernetes version first, then waited for until it really works.
//!
//! Probes (one round trip): the cluster's version (from the control machine) and the release
//! (helm on the step's host). A cert-manager release that does not support the cluster's
//! Kubernetes is refused at plan time (its support table: [`support`]). Then `helm upgrade
//! --install` with `crds.enabled=true` (the old `installCRDs` is deprecated), only when the
//! release differs; then waits: the six CRDs Established, the three Deployments (`cert-manager`,
//! `-cainjector`, `-webhook`) Available, and the webhook answering: a server-side dry run of an
//! Issuer, which the API server sends through cert-manager's validating webhook.

pub mod support;

use graphrun_plugin_api::{
    KubeRef, Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError,
    PluginInfo, Probe, Wait,
};
use graphrun_plugin_kit::chart;
use graphrun_plugin_kit::kube_version::Version;
use graphrun_plugin_kit::params::{specs, Args, Param};
use serde_json::json;

/// The release name; the Deployments' names derive from it.
const RELEASE: &str = "cert-manager";
const PROBE_SERVER: &str = "kubernetes-version";

const PARAMS: &[Param] = &[
    chart::KUBECONFIG,
    chart::VERSION,
    chart::chart("oci://quay.io/jetstack/charts/cert-manager"),
    chart::repository("https://charts.jetstack.io"),
    Param::optional("namespace", ParamKind::String, "Namespace of the release")
        .default_str("cert-manager"),
    chart::VALUES,
    chart::HOST_KUBECONFIG,
    chart::HELM,
    chart::WAIT_TIMEOUT,
    Param::optional(
        "allow_unsupported_kubernetes",
        ParamKind::Bool,
        "Install even when cert-manager's support table does not list the cluster's Kubernetes version",
    )
    .default_bool(false),
];

/// The CRDs the chart installs with `crds.enabled=true`.
const CRDS: &[&str] = &[
    "certificates.cert-manager.io",
    "certificaterequests.cert-manager.io",
    "issuers.cert-manager.io",
    "clusterissuers.cert-manager.io",
    "orders.acme.cert-manager.io",
    "challenges.acme.cert-manager.io",
];

/// The chart's Deployments for release [`RELEASE`].
const DEPLOYMENTS: &[&str] = &[
    "cert-manager",
    "cert-manager-cainjector",
    "cert-manager-webhook",
];

/// The `cert-manager` step.
#[derive(Debug, Default)]
pub struct CertManagerPlugin;

impl Plugin for CertManagerPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "cert-manager".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Installs cert-manager's chart with its CRDs (refusing a Kubernetes version it does not support) and waits until its webhook answers".into(),
            params: specs(PARAMS),
            once: true,
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        let args = Args::new(PARAMS, params);
        if args.any_unrendered() {
            return Vec::new();
        }
        release(&args)
            .and_then(|_| chart_version(&args))
            .err()
            .into_iter()
            .collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let args = Args::new(PARAMS, &request.params);
        let kubeconfig = args.required_str("kubeconfig")?;
        let release = release(&args)?;
        if request.probes.is_empty() {
            return Ok(PlanResponse::Probe {
                probes: vec![
                    Probe::kube_version(PROBE_SERVER, kubeconfig),
                    release.probe(),
                ],
            });
        }
        if !args.flag("allow_unsupported_kubernetes")? {
            let cluster = chart::server_version(request, PROBE_SERVER, kubeconfig)?;
            support::check(chart_version(&args)?, cluster)
                .map_err(|why| PluginError::param("version", why))?;
        }
        let mut ops = release.plan(request, None)?;
        ops.extend(waits(
            kubeconfig,
            &release.namespace,
            chart::wait_timeout(&args)?,
        ));
        Ok(Plan::ops(ops).into())
    }
}

fn release(args: &Args) -> Result<graphrun_plugin_kit::helm::Release, PluginError> {
    let values = json!({"crds": {"enabled": true}});
    let namespace = args.required_str("namespace")?;
    chart::release(
        args,
        RELEASE,
        namespace,
        values.as_object().cloned().unwrap_or_default(),
    )
}

fn chart_version(args: &Args) -> Result<Version, PluginError> {
    let text = args.required_str("version")?;
    Version::parse(text).ok_or_else(|| {
        PluginError::param(
            "version",
            format!("`{text}` is not a cert-manager version such as \"v1.21.1\""),
        )
    })
}

/// The checks that cert-manager works: CRDs Established, Deployments Available, and the webhook
/// validating an Issuer (a dry run: nothing is stored).
fn waits(kubeconfig: &str, namespace: &str, timeout: std::time::Duration) -> Vec<Op> {
    let crds = CRDS.iter().map(|crd| {
        let target = KubeRef::new("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd);
        Op::kube_wait(kubeconfig, target, Wait::condition("Established"), timeout)
    });
    let deployments = DEPLOYMENTS.iter().map(|name| {
        let target = KubeRef::new("apps/v1", "Deployment", name).in_namespace(namespace);
        Op::kube_wait(kubeconfig, target, Wait::condition("Available"), timeout)
    });
    let issuer = json!({
        "apiVersion": "cert-manager.io/v1",
        "kind": "Issuer",
        "metadata": {"name": "graphrun-webhook-check", "namespace": namespace},
        "spec": {"selfSigned": {}},
    });
    let webhook = Op::KubeApply {
        kubeconfig: kubeconfig.to_string(),
        object: issuer,
        dry_run: true,
    };
    crds.chain(deployments).chain([webhook]).collect()
}

#[cfg(test)]
mod tests;
