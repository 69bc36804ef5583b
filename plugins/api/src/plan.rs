//! The conversation between the engine and a plugin: requests in, ops (or probes) out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{KubeRef, Op, Params, Run};

/// The host a node runs on, as the plugin sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// Inventory name.
    pub name: String,
    /// Address used to reach it.
    pub address: String,
    /// Login user of its connection, when the inventory sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Groups it belongs to.
    pub groups: Vec<String>,
    /// Its `vars` table.
    pub vars: serde_json::Map<String, serde_json::Value>,
}

/// Everything a plugin may look at when it plans one (step, host) node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanRequest {
    /// Step id from the playbook.
    pub step: String,
    /// The target host.
    pub host: HostInfo,
    /// Parameters, templates rendered and defaults applied.
    pub params: Params,
    /// Gathered facts of the host (only when the plugin's info sets `needs_facts`).
    pub facts: BTreeMap<String, String>,
    /// Results of the probes the plugin asked for, by probe name (empty on the first call).
    pub probes: BTreeMap<String, ProbeResult>,
    /// Local folder for this host's fetched files (relative [`Op::Fetch`] targets land here).
    pub fetch_dir: String,
    /// Folder of the playbook (relative [`Op::Upload`] sources are resolved from here).
    pub playbook_dir: String,
    /// Every host of the inventory, in inventory order (only when the plugin's info sets
    /// `needs_inventory`: a cluster installer describes all nodes from the one it runs on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inventory: Vec<HostInfo>,
}

/// A read-only question whose answer the plugin needs before it can plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    /// Key of the result in [`PlanRequest::probes`].
    pub name: String,
    /// What to ask, and where.
    #[serde(flatten)]
    pub query: ProbeQuery,
}

impl Probe {
    /// A read-only command on the host; it must not change anything.
    pub fn run(name: &str, run: Run) -> Self {
        Probe {
            name: name.to_string(),
            query: ProbeQuery::Run(run),
        }
    }

    /// Reads a file on the control machine (relative to the playbook's folder): exit code 0 and
    /// its content in stdout, or 1 and why it cannot be read in stderr. Plugins never read
    /// files themselves; this is how one gets a local file's content (a manifest's YAML).
    pub fn local_file(name: &str, path: &str) -> Self {
        Probe {
            name: name.to_string(),
            query: ProbeQuery::LocalFile {
                path: path.to_string(),
            },
        }
    }

    /// The command of a shell probe (`None` for a cluster probe).
    pub fn as_run(&self) -> Option<&Run> {
        match &self.query {
            ProbeQuery::Run(run) => Some(run),
            _ => None,
        }
    }
}

/// What a [`Probe`] asks. Each variant is one key beside `name` on the wire, so a shell probe
/// reads `{"name": …, "run": …}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProbeQuery {
    /// Runs a read-only command on the host: its stdout, stderr and exit code.
    Run(Run),
    /// Reads an object from the cluster (see [`Probe::kube_get`]).
    KubeGet {
        /// Kubeconfig on the control machine.
        kubeconfig: String,
        /// The object.
        target: KubeRef,
    },
    /// Asks the cluster's version (see [`Probe::kube_version`]).
    KubeVersion {
        /// Kubeconfig on the control machine.
        kubeconfig: String,
    },
    /// Reads a file on the control machine (see [`Probe::local_file`]).
    LocalFile {
        /// Path; a relative one is relative to the playbook's folder.
        path: String,
    },
}

/// What a probe printed and how it exited.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// Exit code (non-zero is data, not an error).
    pub exit_code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// A plugin's answer to a [`PlanRequest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "kebab-case")]
pub enum PlanResponse {
    /// Run these probes and ask again with their results in [`PlanRequest::probes`].
    Probe {
        /// Probes to run (all in one round trip).
        probes: Vec<Probe>,
    },
    /// The plan itself.
    Plan(Plan),
}

/// The ops of one node, in order, and the values later steps can read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Ops run in order; the first failure stops the node.
    pub ops: Vec<Op>,
    /// Outputs readable by later steps as `steps.ID.outputs.NAME`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, serde_json::Value>,
}

impl Plan {
    /// A plan of these ops and no outputs.
    pub fn ops(ops: Vec<Op>) -> Self {
        Plan {
            ops,
            outputs: BTreeMap::new(),
        }
    }
}

impl From<Plan> for PlanResponse {
    fn from(plan: Plan) -> Self {
        PlanResponse::Plan(plan)
    }
}
