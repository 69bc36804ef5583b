//! `distribution = "rke1"`: cluster.yml on the step's host, `rke up` when something changed,
//! the cluster's state and kubeconfig fetched back.

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Op, Plan, PlanRequest, PlanResponse, PluginError, Run};
use graphrun_plugin_kit::params::Args;
use graphrun_plugin_kit::{artifacts, report};
use serde_json::Value;

use crate::cluster_yml::{ClusterConfig, Ingress, Network};
use crate::nodes::{self, Labelled};
use crate::{host_arch, version};

/// Where the rke binary is installed on the step's host.
const RKE_BINARY: &str = "/usr/local/bin/rke";
/// RKE's output files, next to cluster.yml.
const KUBECONFIG: &str = "kube_config_cluster.yml";
const STATE: &str = "cluster.rkestate";
/// sha256 of cluster.yml and the rke binary of the last successful `rke up`.
const UP_STAMP: &str = ".graphrun-rke-up.sha256";
/// RKE1's CNI plugins (`validateNetworkOptions`).
const CNIS: [&str; 5] = ["canal", "flannel", "calico", "weave", "none"];

/// The step's RKE1 settings, checked.
#[derive(Debug)]
pub struct Settings {
    /// rke release, e.g. `v1.8.5`.
    version: String,
    kubernetes_version: String,
    /// Kubernetes minor, `None` while the version is an unrendered template.
    kubernetes_minor: Option<u32>,
    nodes: Option<Vec<Labelled>>,
    cni: String,
    ingress: String,
    ssh_key_path: String,
    dir: String,
}

impl Settings {
    /// Reads and checks the parameters (nodes from the inventory are checked at plan).
    pub fn from_args(args: &Args) -> Result<Self, PluginError> {
        let version = args.required_str("version")?.to_string();
        if !args.is_unrendered("version") {
            version::check_release(&version, "v1.8.5")?;
        }
        let kubernetes_version = args
            .str("kubernetes_version")?
            .ok_or_else(|| {
                PluginError::param(
                    "kubernetes_version",
                    "is required with distribution = \"rke1\", e.g. \"v1.32.5-rancher1-1\"",
                )
            })?
            .to_string();
        let kubernetes_minor = if args.is_unrendered("kubernetes_version") {
            None
        } else {
            Some(version::rke1_kubernetes_minor(&kubernetes_version)?)
        };
        let cni = args.choice("cni", &CNIS)?.unwrap_or("canal").to_string();
        let ingress = args
            .choice("ingress", &["nginx", "none"])?
            .unwrap_or("nginx")
            .to_string();
        let dir = args.required_str("dir")?.to_string();
        if !dir.starts_with('/') && !args.is_unrendered("dir") {
            return Err(PluginError::param(
                "dir",
                format!("`{dir}` is not an absolute path"),
            ));
        }
        Ok(Settings {
            version,
            kubernetes_version,
            kubernetes_minor,
            nodes: args
                .value("nodes")
                .as_ref()
                .map(nodes::from_param)
                .transpose()?,
            cni,
            ingress,
            ssh_key_path: args.required_str("ssh_key_path")?.to_string(),
            dir,
        })
    }

    /// RKE's node rules on the `nodes` parameter (inventory nodes are known only at plan).
    pub fn validate(&self) -> Vec<PluginError> {
        self.nodes
            .as_deref()
            .map(nodes::check)
            .unwrap_or_default()
            .into_iter()
            .map(|problem| PluginError::param("nodes", problem))
            .collect()
    }

    /// cluster.yml for these nodes.
    pub fn cluster_config(&self, nodes: &[Labelled]) -> ClusterConfig {
        ClusterConfig {
            nodes: nodes.iter().map(|n| n.node.clone()).collect(),
            kubernetes_version: self.kubernetes_version.clone(),
            ssh_key_path: self.ssh_key_path.clone(),
            enable_cri_dockerd: self.kubernetes_minor.and_then(version::enable_cri_dockerd),
            network: Network {
                plugin: self.cni.clone(),
            },
            ingress: Ingress {
                provider: self.ingress.clone(),
            },
        }
    }

    /// The nodes: the `nodes` parameter, else the inventory's role groups; checked.
    fn nodes(&self, request: &PlanRequest) -> Result<Vec<Labelled>, PluginError> {
        let nodes = match &self.nodes {
            Some(nodes) => nodes.clone(),
            None => nodes::from_inventory(&request.inventory),
        };
        let problems = nodes::check(&nodes);
        if problems.is_empty() {
            Ok(nodes)
        } else {
            Err(PluginError::param("nodes", problems.join("; ")))
        }
    }
}

/// The ops on the step's host and the cluster's outputs.
pub fn plan(settings: &Settings, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
    let nodes = settings.nodes(request)?;
    let first_controlplane = nodes
        .iter()
        .find(|n| n.node.role.iter().any(|r| r == "controlplane"))
        .expect("checked: a controlplane node");
    refuse_a_second_runner(request, &nodes, first_controlplane)?;
    let config = settings.cluster_config(&nodes).to_yaml();
    let dir = settings.dir.trim_end_matches('/');
    let in_dir = |name: &str| format!("{dir}/{name}");
    let rke = artifacts::rke(&settings.version, host_arch(request)?)?;
    let ops = vec![
        report::warning(version::RKE1_END_OF_LIFE),
        rke.to(RKE_BINARY).with_mode("0755"),
        Op::directory(dir).with_mode("0700"),
        Op::file(&in_dir("cluster.yml"), &config).with_mode("0600"),
        rke_up(dir),
        Op::Fetch {
            path: in_dir(KUBECONFIG),
            to: KUBECONFIG.into(),
        },
        Op::Fetch {
            path: in_dir(STATE),
            to: STATE.into(),
        },
    ];
    let api_server = format!("https://{}:6443", first_controlplane.node.address);
    let mut plan = Plan::ops(ops);
    plan.outputs.insert(
        "kubeconfig".into(),
        Value::from(format!("{}/{KUBECONFIG}", request.fetch_dir)),
    );
    plan.outputs
        .insert("api_server".into(), Value::from(api_server));
    Ok(plan.into())
}

/// `rke up` drives the whole cluster from one machine: the first controlplane node (as the
/// walkthrough does) or a host outside the cluster. The step on any other node would run a
/// second `rke up` against the same nodes at the same time.
fn refuse_a_second_runner(
    request: &PlanRequest,
    nodes: &[Labelled],
    first_controlplane: &Labelled,
) -> Result<(), PluginError> {
    let address = &request.host.address;
    let is_node = nodes.iter().any(|n| &n.node.address == address);
    if !is_node || &first_controlplane.node.address == address {
        return Ok(());
    }
    Err(PluginError::param(
        "distribution",
        format!(
            "rke1 runs `rke up` from one host, and {} is another node of the cluster: set the \
             step's `on` to the first controlplane node ({}), or `once = true`",
            request.host.name, first_controlplane.label
        ),
    ))
}

/// `rke up` unless the last successful one used this cluster.yml and this rke binary and its
/// outputs are still there; its state files kept private.
fn rke_up(dir: &str) -> Op {
    let dir = quote(dir);
    Op::command_unless(
        Run::Shell(format!(
            "cd {dir} && {RKE_BINARY} up --config cluster.yml && chmod 0600 {STATE} {KUBECONFIG} \
             && sha256sum cluster.yml {RKE_BINARY} > {UP_STAMP}"
        )),
        Run::Shell(format!(
            "cd {dir} && test -s {STATE} && test -s {KUBECONFIG} && sha256sum --quiet -c {UP_STAMP}"
        )),
    )
}
