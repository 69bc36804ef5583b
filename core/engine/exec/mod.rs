//! Carrying out a node's ops. Every op has a target (see [`Target`]); each target has one
//! executor here, and every executor answers with the same [`OpResult`] per op, so the node
//! runner reports, logs and stops at the first failure the same way whatever ran the op.

#[cfg(feature = "kubernetes")]
mod clients;
#[cfg(feature = "kubernetes")]
pub(super) mod cluster;
#[cfg(not(feature = "kubernetes"))]
#[path = "no_cluster.rs"]
pub(super) mod cluster;
mod host;
mod local;

use std::collections::BTreeMap;

use graphrun_plugin_api::{Op, Probe, ProbeQuery, ProbeResult, Target};

use super::events::{OpStatus, Transfer};
use super::node::{Failure, Names};
use super::run::RunContext;
use crate::transport::Lease;

/// How one op ended, whichever executor ran it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OpResult {
    /// What it did.
    pub status: OpStatus,
    /// A host op's exit code (`None` when it did not run, and for ops that are not commands).
    pub exit_code: Option<i32>,
    /// What it printed (a Kubernetes op: what it read or applied, as JSON).
    pub stdout: Vec<u8>,
    /// Its error output (a Kubernetes op: why it failed).
    pub stderr: Vec<u8>,
    /// `plan` and `apply --diff`: what it changes (would change), secrets redacted.
    pub diff: Option<String>,
    /// Uploads and artifacts: whether the file was on the host already or was sent.
    pub transfer: Option<Transfer>,
}

impl OpResult {
    /// An op that did not run: an earlier one failed.
    pub fn not_run() -> Self {
        OpResult {
            status: OpStatus::NotRun,
            exit_code: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            diff: None,
            transfer: None,
        }
    }

    /// An op that failed before or without a command: `why` is its error output.
    pub fn failed(why: &str) -> Self {
        OpResult {
            status: OpStatus::Failed,
            stderr: why.as_bytes().to_vec(),
            ..OpResult::not_run()
        }
    }
}

/// Runs the ops in order, each by its target's executor: a run of consecutive host ops goes to
/// the host in one round trip. Stops at the first failure; the ops after it are not run. A
/// lost connection ends the attempt (`Err`).
pub(super) async fn run_ops(
    cx: &RunContext,
    names: &Names<'_>,
    session: &Lease,
    ops: &[Op],
    check_mode: bool,
) -> Result<Vec<OpResult>, Failure> {
    let mut results = Vec::with_capacity(ops.len());
    let mut start = 0;
    while start < ops.len() {
        let target = ops[start].target();
        let end = ops[start..]
            .iter()
            .position(|op| op.target() != target)
            .map_or(ops.len(), |length| start + length);
        let batch = &ops[start..end];
        let batch_results = match target {
            Target::Host => host::run(cx, names, session, batch, check_mode).await?,
            Target::Cluster => cluster::run(cx, names, session, batch, check_mode).await,
        };
        let failed = batch_results.iter().any(|r| r.status == OpStatus::Failed);
        results.extend(batch_results);
        if failed {
            break;
        }
        start = end;
    }
    results.resize_with(ops.len(), OpResult::not_run);
    Ok(results)
}

/// Runs probes: host probes in one round trip, cluster probes and local files from this
/// machine. A probe's exit code is data, not a failure.
pub(super) async fn run_probes(
    cx: &RunContext,
    session: &Lease,
    probes: &[Probe],
) -> Result<BTreeMap<String, ProbeResult>, Failure> {
    let (on_host, elsewhere): (Vec<&Probe>, Vec<&Probe>) =
        probes.iter().partition(|probe| probe.as_run().is_some());
    let mut results = host::probe(session, &on_host).await?;
    for probe in elsewhere {
        let result = match &probe.query {
            ProbeQuery::LocalFile { path } => local::read_file(cx, path).await,
            query => cluster::probe(cx, session, query).await?,
        };
        results.insert(probe.name.clone(), result);
    }
    Ok(results)
}
