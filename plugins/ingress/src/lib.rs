//! The built-in `ingress` step: one `networking.k8s.io/v1` Ingress, applied server-side from the
//! control machine (field manager `graphrun`), so a second apply changes nothing.
//!
//! The walkthrough's `extensions/v1beta1` Ingress is gone since Kubernetes 1.22: this one has
//! `pathType` on every path, `service.name` / `service.port`, and the IngressClass as a
//! parameter (ingress-nginx was retired in 2026; RKE2 >= 1.36 ships Traefik), so the same step
//! works on every distribution. Rancher's chart makes its own Ingress; this step exposes other
//! services, say a MinIO console.

mod object;

use graphrun_plugin_api::{
    Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo,
};
use graphrun_plugin_kit::params::{specs, Args, Param};

pub use object::ingress;

const PARAMS: &[Param] = &[
    Param::required(
        "kubeconfig",
        ParamKind::String,
        "Kubeconfig on the control machine (the cluster step's `kubeconfig` output)",
    ),
    Param::required("name", ParamKind::String, "The Ingress's name"),
    Param::optional("namespace", ParamKind::String, "Its namespace (that of the services)")
        .default_str("default"),
    Param::required("host", ParamKind::String, "The host name the rules match"),
    Param::required(
        "paths",
        ParamKind::Any,
        "Routes: a list of tables { path = \"/\", path_type = \"Prefix\" (or \"Exact\", \"ImplementationSpecific\"), service = NAME, port = NUMBER or PORT NAME }",
    ),
    Param::optional(
        "ingress_class",
        ParamKind::String,
        "IngressClass (ingressClassName): e.g. \"nginx\" on RKE1, \"traefik\" on RKE2 >= 1.36; the cluster's default class when unset",
    ),
    Param::optional(
        "tls_secret",
        ParamKind::String,
        "Secret (in the namespace) holding the certificate for `host`; plain HTTP when unset",
    ),
    Param::optional(
        "annotations",
        ParamKind::StringMap,
        "Annotations of the Ingress (controller settings)",
    ),
];

/// The `ingress` step.
#[derive(Debug, Default)]
pub struct IngressPlugin;

impl Plugin for IngressPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "ingress".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Applies a networking.k8s.io/v1 Ingress (host, paths with pathType, service and port, IngressClass, TLS Secret) server-side".into(),
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
        ingress(&args).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let args = Args::new(PARAMS, &request.params);
        let kubeconfig = args.required_str("kubeconfig")?;
        Ok(Plan::ops(vec![Op::kube_apply(kubeconfig, ingress(&args)?)]).into())
    }
}

#[cfg(test)]
mod tests;
