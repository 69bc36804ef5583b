//! The cluster executor: Kubernetes ops and probes, carried out from this machine.

use graphrun_plugin_api::{Op, ProbeQuery, ProbeResult};

use super::OpResult;
use crate::engine::events::NodeStatus;
use crate::engine::node::{Failure, Names};
use crate::engine::run::RunContext;

const UNAVAILABLE: &str =
    "Kubernetes ops need the cluster executor, which this graphrun does not have yet";

/// Runs Kubernetes ops in order (stopping at the first failure).
pub(super) async fn run(
    _cx: &RunContext,
    _names: &Names<'_>,
    _ops: &[Op],
    _check_mode: bool,
) -> Vec<OpResult> {
    vec![OpResult::failed(UNAVAILABLE)]
}

/// Answers a Kubernetes probe.
pub(super) async fn probe(
    _cx: &RunContext,
    _names: &Names<'_>,
    _query: &ProbeQuery,
) -> Result<ProbeResult, Failure> {
    Err((NodeStatus::Failed, UNAVAILABLE.to_string()))
}
