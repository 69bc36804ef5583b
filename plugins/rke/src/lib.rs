//! The built-in `rke` step: a Kubernetes cluster with RKE1 or RKE2, behind one plugin.
//!
//! - `distribution = "rke1"` (the walkthrough's; end of life since 2025-07-31): on the step's
//!   host, `cluster.yml` from typed structs that mirror RKE's schema, nodes from the inventory's
//!   `controlplane`, `etcd` and `worker` groups (or the `nodes` parameter), checked with RKE's
//!   own rules at `validate`; `rke up` only when the config or the rke binary changed or its
//!   outputs are missing; `cluster.rkestate` and the kubeconfig fetched back (0600).
//! - `distribution = "rke2"` (the maintained successor, no Docker): `/etc/rancher/rke2/config.yaml`
//!   (the `token` a secret), `rke2-server` on hosts of the `controlplane` group and `rke2-agent`
//!   elsewhere; a node with `server` set joins the cluster of that first server.
//!
//! Outputs: `kubeconfig` (a path on the control machine) and `api_server`.

mod cluster_yml;
mod nodes;
mod rke1;
mod rke2;
mod version;

use graphrun_plugin_api::{
    ParamKind, Params, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo,
};
use graphrun_plugin_kit::params::{specs, Args, Param};

pub use cluster_yml::ClusterConfig;
pub use rke2::Rke2Config;

const PARAMS: &[Param] = &[
    Param::optional("distribution", ParamKind::String, "\"rke1\" (RKE, end of life since 2025-07-31; needs Docker) or \"rke2\"")
        .default_str("rke1"),
    Param::required("version", ParamKind::String, "Release of the installer: rke (e.g. \"v1.8.5\") or RKE2 (e.g. \"v1.34.5+rke2r1\")"),
    Param::optional("kubernetes_version", ParamKind::String, "rke1: cluster.yml's kubernetes_version, e.g. \"v1.32.5-rancher1-1\" (RKE1 stops at 1.32)"),
    Param::optional("nodes", ParamKind::Any, "rke1: the nodes as cluster.yml lists them, [{ address, user, role = [...], hostname_override, internal_address, port }]; default: every inventory host of the controlplane, etcd and worker groups"),
    Param::optional("cni", ParamKind::String, "Network plugin: rke1 network.plugin (canal, flannel, calico, weave, none), rke2 cni (canal, calico, cilium, flannel, none)")
        .default_str("canal"),
    Param::optional("ingress", ParamKind::String, "Ingress controller: rke1 ingress.provider (\"nginx\" default, or \"none\"); rke2 ingress-controller (\"traefik\" or \"ingress-nginx\"; default RKE2's)"),
    Param::optional("ssh_key_path", ParamKind::String, "rke1: the private key `rke up` logs in to the nodes with, on the step's host (authorized on every node beforehand, e.g. by the ssh_key step)")
        .default_str("~/.ssh/id_ed25519"),
    Param::optional("dir", ParamKind::String, "rke1: folder on the step's host for cluster.yml, cluster.rkestate and kube_config_cluster.yml")
        .default_str("/opt/graphrun/rke"),
    Param::optional("token", ParamKind::String, "rke2: the cluster's shared secret (write it as { env = \"…\" } or { file = \"…\" }; never shown)"),
    Param::optional("server", ParamKind::String, "rke2: address of the first server, for the nodes that join it (https://SERVER:9345); unset (or this host's address) on the first server"),
    Param::optional("tls_san", ParamKind::StringList, "rke2 servers: extra names and addresses for the API server's certificate")
        .default_strings(&[]),
    Param::optional("kubeconfig", ParamKind::String, "rke2 agents: a kubeconfig of the cluster on the control machine, to wait for the node Ready (e.g. \"{{ steps.ID.outputs.kubeconfig }}\" of the first server's step); servers use their own"),
    Param::optional("airgap", ParamKind::Bool, "rke2: also install the images archive, for hosts that cannot pull images")
        .default_bool(false),
];

/// Parameters only one distribution reads; setting one for the other is a mistake.
const RKE1_ONLY: &[&str] = &["kubernetes_version", "nodes", "ssh_key_path", "dir"];
const RKE2_ONLY: &[&str] = &["token", "server", "tls_san", "kubeconfig", "airgap"];

/// The `rke` step.
#[derive(Debug, Default)]
pub struct RkePlugin;

/// Which installer, with its checked settings.
#[derive(Debug)]
enum Distribution {
    Rke1(rke1::Settings),
    Rke2(rke2::Settings),
}

impl Distribution {
    fn from_params(params: &Params) -> Result<Self, PluginError> {
        let args = Args::new(PARAMS, params);
        let distribution = args
            .choice("distribution", &["rke1", "rke2"])?
            .unwrap_or("rke1");
        let foreign = if distribution == "rke1" {
            RKE2_ONLY
        } else {
            RKE1_ONLY
        };
        if let Some(name) = foreign.iter().find(|name| args.is_set(name)) {
            let other = if distribution == "rke1" {
                "rke2"
            } else {
                "rke1"
            };
            return Err(PluginError::param(
                name,
                format!(
                    "is read only with distribution = \"{other}\" (this step is {distribution})"
                ),
            ));
        }
        Ok(if distribution == "rke1" {
            Distribution::Rke1(rke1::Settings::from_args(&args)?)
        } else {
            Distribution::Rke2(rke2::Settings::from_args(&args)?)
        })
    }
}

impl Plugin for RkePlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "rke".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "A Kubernetes cluster with RKE1 (cluster.yml, rke up) or RKE2 (config.yaml, rke2-server/rke2-agent); outputs its kubeconfig".into(),
            params: specs(PARAMS),
            outputs: vec!["kubeconfig".into(), "api_server".into()],
            needs_facts: true,
            needs_inventory: true,
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        match Distribution::from_params(params) {
            Err(error) => vec![error],
            Ok(Distribution::Rke1(settings)) => settings.validate(),
            Ok(Distribution::Rke2(_)) => Vec::new(),
        }
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        match Distribution::from_params(&request.params)? {
            Distribution::Rke1(settings) => rke1::plan(&settings, request),
            Distribution::Rke2(settings) => rke2::plan(&settings, request),
        }
    }
}

/// The step's host's architecture (`uname -m`), from its facts.
fn host_arch(request: &PlanRequest) -> Result<&str, PluginError> {
    request
        .facts
        .get("arch")
        .map(String::as_str)
        .ok_or_else(|| PluginError::new("the host's architecture is unknown (no `arch` fact)"))
}

#[cfg(test)]
mod tests;
