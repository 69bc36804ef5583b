//! The cluster executor of a graphrun built without the `kubernetes` feature: it has no
//! Kubernetes client, so it refuses Kubernetes ops and probes, saying how to get one.

use graphrun_plugin_api::{Op, ProbeQuery, ProbeResult};

use super::OpResult;
use crate::engine::events::NodeStatus;
use crate::engine::node::{Failure, Names};
use crate::engine::run::RunContext;
use crate::transport::Lease;

const UNAVAILABLE: &str = "Kubernetes ops need graphrun built with the `kubernetes` feature \
     (on by default: build without --no-default-features)";

/// Fails the first Kubernetes op (the ones after it do not run).
pub(super) async fn run(
    _cx: &RunContext,
    _names: &Names<'_>,
    _session: &Lease,
    _ops: &[Op],
    _check_mode: bool,
) -> Vec<OpResult> {
    vec![OpResult::failed(UNAVAILABLE)]
}

/// Fails a Kubernetes probe.
pub(super) async fn probe(
    _cx: &RunContext,
    _session: &Lease,
    _query: &ProbeQuery,
) -> Result<ProbeResult, Failure> {
    Err((NodeStatus::Failed, UNAVAILABLE.to_string()))
}
