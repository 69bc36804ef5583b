//! The host executor: ops compiled to shell and run in the node's session, one round trip per
//! batch; uploads staged before it, fetched files kept on this machine after it.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use graphrun_plugin_api::{Op, Probe, ProbeResult, Run};

use super::OpResult;
use crate::engine::events::{Event, NodeStatus, OpStatus, Transfer};
use crate::engine::node::{Failure, Names};
use crate::engine::run::RunContext;
use crate::engine::state::{private_dir, write_private};
use crate::transport::script::Arrival;
use crate::transport::{upload, Frame, Lease, RunError, Session};

/// Files this large get progress events.
const LARGE_UPLOAD: u64 = 8 << 20;

/// Runs host ops in the session (stopping at the first failure).
pub(super) async fn run(
    cx: &RunContext,
    names: &Names<'_>,
    session: &Lease,
    ops: &[Op],
    check_mode: bool,
) -> Result<Vec<OpResult>, Failure> {
    let mut sources = upload::sources(&cx.playbook.dir(), ops, &cx.checksums)
        .await
        .map_err(|err| (NodeStatus::Failed, err))?;
    // Artifacts come from this machine's cache: a checksum mismatch ends the node here,
    // before any byte is sent.
    sources.extend(
        cx.artifacts
            .sources(ops)
            .await
            .map_err(|err| (NodeStatus::Failed, err))?,
    );
    let progress = |source: &upload::Source, before: u64, sent: u64| {
        report_upload(cx, names, source, before, sent)
    };
    let mut arrivals = upload::stage(session, &sources, check_mode, &progress)
        .await
        .map_err(node_failure)?;
    let frames = session
        .run(ops, &arrivals, check_mode, check_mode || cx.diff)
        .await
        .map_err(node_failure)?;
    let transfers: HashMap<usize, Transfer> = arrivals
        .iter()
        .map(|(index, arrival)| (*index, transfer(arrival)))
        .collect();
    // Staged files that an op moved into place are gone; the others (an earlier op failed)
    // are removed.
    arrivals.retain(|index, _| frames.get(*index).is_none_or(|f| f.exit_code != Some(0)));
    upload::discard(session, &arrivals).await;
    Ok(ops
        .iter()
        .zip(frames)
        .enumerate()
        .map(|(index, (op, frame))| {
            let status = op_status(op, &frame);
            let diff = crate::engine::diff::of_op(op, &frame.stdout, &cx.redactor);
            let result = OpResult {
                status,
                exit_code: frame.exit_code,
                stdout: frame.stdout,
                stderr: frame.stderr,
                diff,
                transfer: transfers.get(&index).copied(),
            };
            match op {
                Op::Fetch { to, .. } if status == OpStatus::Ok && !check_mode => {
                    keep_fetched(cx, names, to, result)
                }
                _ => result,
            }
        })
        .collect())
}

/// Saves a fetched file under the host's fetch folder (`join` keeps an absolute `to` as it is);
/// failing to save fails the op.
fn keep_fetched(cx: &RunContext, names: &Names<'_>, to: &str, result: OpResult) -> OpResult {
    let target = cx.fetch_dir(names.host).join(to);
    match save_private(&target, &result.stdout) {
        Ok(()) => result,
        Err(err) => OpResult::failed(&format!("cannot save {}: {err}", target.display())),
    }
}

fn save_private(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = target.parent() {
        private_dir(dir)?;
    }
    write_private(target, bytes)
}

/// Runs shell probes in one round trip; a probe's exit code is data, not a failure.
pub(super) async fn probe(
    session: &Session,
    probes: &[&Probe],
) -> Result<BTreeMap<String, ProbeResult>, Failure> {
    if probes.is_empty() {
        return Ok(BTreeMap::new());
    }
    let ops: Vec<Op> = probes
        .iter()
        .map(|probe| {
            let run = probe.as_run().expect("only shell probes reach the host");
            Op::check(Run::Shell(format!(
                "( {} ); printf '\\n%s' \"$?\"",
                run.to_shell()
            )))
        })
        .collect();
    let frames = session
        .run(&ops, &HashMap::new(), false, false)
        .await
        .map_err(node_failure)?;
    Ok(probes
        .iter()
        .zip(frames)
        .map(|(probe, frame)| {
            let stdout = String::from_utf8_lossy(&frame.stdout).into_owned();
            let (output, code) = stdout.rsplit_once('\n').unwrap_or(("", stdout.as_str()));
            let result = ProbeResult {
                exit_code: code.trim().parse().unwrap_or(-1),
                stdout: output.to_string(),
                stderr: String::from_utf8_lossy(&frame.stderr).into_owned(),
            };
            (probe.name.clone(), result)
        })
        .collect())
}

/// Reports a large upload's progress at every 5% mark it passes (`before` is what it had sent
/// when last told).
fn report_upload(
    cx: &RunContext,
    names: &Names<'_>,
    source: &upload::Source,
    before: u64,
    sent: u64,
) {
    let step = source.size.max(1).div_ceil(20);
    let crossed = sent / step != before / step || sent == source.size;
    if source.size >= LARGE_UPLOAD && crossed {
        cx.reporter.event(&Event::UploadProgress {
            node: names.node.to_string(),
            host: names.host.to_string(),
            path: cx.redactor.redact(&source.target),
            sent_bytes: sent,
            size_bytes: source.size,
        });
    }
}

/// What an upload's arrival says about its file.
fn transfer(arrival: &Arrival) -> Transfer {
    match arrival {
        Arrival::InPlace => Transfer::Present,
        Arrival::Staged(_) => Transfer::Sent,
        Arrival::NotSent => Transfer::ToSend,
    }
}

/// How a transport error ends an attempt.
fn node_failure(err: RunError) -> Failure {
    match err {
        RunError::Invalid(message) => (NodeStatus::Failed, message),
        RunError::Unreachable(message) => (
            NodeStatus::Unreachable,
            format!("connection lost: {message}"),
        ),
    }
}

fn op_status(op: &Op, frame: &Frame) -> OpStatus {
    match (frame.exit_code, frame.status.as_str()) {
        (None, _) => OpStatus::NotRun,
        (Some(0), "u") => OpStatus::Ok,
        (Some(0), "w") => OpStatus::WouldChange,
        (Some(0), _) if op.may_change() => OpStatus::Changed,
        (Some(0), _) => OpStatus::Ok,
        _ => OpStatus::Failed,
    }
}
