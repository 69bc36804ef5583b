//! What a run reports while it goes: the stable event stream behind every output format.
//!
//! `--output json` prints these one per line; field names are part of graphrun's interface
//! (documented in the README) and only grow.

use std::collections::BTreeMap;

use serde::Serialize;

pub use crate::artifacts::Origin;

/// `apply` changes hosts; `plan` only looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Make the changes.
    Apply,
    /// Report what would change.
    Plan,
}

/// How a node ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    /// Ran, nothing needed changing.
    Ok,
    /// Ran and changed something.
    Changed,
    /// `plan`: something would change.
    WouldChange,
    /// Its `when` was false.
    Skipped,
    /// Done in an earlier, unfinished run with the same inputs (resume).
    Done,
    /// An op failed, or planning failed.
    Failed,
    /// The host could not be reached or was lost.
    Unreachable,
    /// Not run: something it needs failed.
    Blocked,
    /// Not run: the run stopped early (`--fail-fast`, Ctrl-C).
    Cancelled,
    /// Stopped by Ctrl-C.
    Interrupted,
}

impl NodeStatus {
    /// Whether dependents may run after it.
    pub fn is_success(self) -> bool {
        matches!(
            self,
            NodeStatus::Ok
                | NodeStatus::Changed
                | NodeStatus::WouldChange
                | NodeStatus::Skipped
                | NodeStatus::Done
        )
    }

    /// The word used in output and state.
    pub fn word(self) -> &'static str {
        match self {
            NodeStatus::Ok => "ok",
            NodeStatus::Changed => "changed",
            NodeStatus::WouldChange => "would_change",
            NodeStatus::Skipped => "skipped",
            NodeStatus::Done => "done",
            NodeStatus::Failed => "failed",
            NodeStatus::Unreachable => "unreachable",
            NodeStatus::Blocked => "blocked",
            NodeStatus::Cancelled => "cancelled",
            NodeStatus::Interrupted => "interrupted",
        }
    }
}

/// How one op ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OpStatus {
    /// Nothing to do.
    Ok,
    /// Changed the host.
    Changed,
    /// `plan`: would change the host.
    WouldChange,
    /// Failed.
    Failed,
    /// Not run (an earlier op failed, or `plan` does not run it).
    NotRun,
}

/// What an upload or artifact op did with its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transfer {
    /// The host had a file with the same sha256: nothing was sent.
    Present,
    /// Sent to the host.
    Sent,
    /// `plan`: the host's copy differs; it would be sent.
    ToSend,
}

/// Counts per host for the recap.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recap {
    /// Nodes that needed no change (or were done before).
    pub ok: usize,
    /// Nodes that changed something.
    pub changed: usize,
    /// `plan`: nodes that would change something.
    pub would_change: usize,
    /// Nodes whose `when` was false.
    pub skipped: usize,
    /// Nodes that failed.
    pub failed: usize,
    /// Nodes stopped by Ctrl-C.
    pub interrupted: usize,
    /// Nodes that could not reach the host.
    pub unreachable: usize,
    /// Nodes not run because a need failed, or the run stopped.
    pub blocked: usize,
    /// Steps with `once` whose single node ran on this host (counted above too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub once: Vec<String>,
}

impl Recap {
    /// Counts one node.
    pub fn add(&mut self, status: NodeStatus) {
        match status {
            NodeStatus::Ok | NodeStatus::Done => self.ok += 1,
            NodeStatus::Changed => self.changed += 1,
            NodeStatus::WouldChange => self.would_change += 1,
            NodeStatus::Skipped => self.skipped += 1,
            NodeStatus::Failed => self.failed += 1,
            NodeStatus::Interrupted => self.interrupted += 1,
            NodeStatus::Unreachable => self.unreachable += 1,
            NodeStatus::Blocked | NodeStatus::Cancelled => self.blocked += 1,
        }
    }
}

/// A step as the run's DAG has it: enough for a report to draw the DAG and its critical path.
#[derive(Debug, Clone, Serialize)]
pub struct StepLinks {
    /// Step id.
    pub id: String,
    /// Plugin name.
    pub plugin: String,
    /// Step ids it waits for.
    pub needs: Vec<String>,
    /// `host`: each need on the same host; `all`: each need on every host.
    pub wait: String,
}

/// One thing that happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run begins.
    RunStarted {
        /// Timestamp id of the run (its log folder).
        run_id: String,
        /// Playbook path.
        playbook: String,
        /// apply or plan.
        mode: Mode,
        /// Node count per host.
        hosts: BTreeMap<String, usize>,
        /// The run log (`apply` only): every op with its whole output.
        #[serde(skip_serializing_if = "Option::is_none")]
        log: Option<String>,
        /// The steps of the run and what they wait for (with the nodes of the run, the DAG).
        steps: Vec<StepLinks>,
    },
    /// A node starts an attempt.
    NodeStarted {
        /// `step@host`.
        node: String,
        /// Step id.
        step: String,
        /// Host name.
        host: String,
        /// 1 for the first attempt.
        attempt: u32,
        /// Milliseconds since the run started.
        at_ms: u64,
    },
    /// A large upload moved on (every 5% of files of 8 MiB or more).
    UploadProgress {
        /// `step@host`.
        node: String,
        /// Host name.
        host: String,
        /// Where the file goes on the host.
        path: String,
        /// Bytes sent so far.
        sent_bytes: u64,
        /// The file's size.
        size_bytes: u64,
    },
    /// An artifact is ready for the run's uploads (once per run, before its first upload).
    ArtifactReady {
        /// Its upstream URL.
        url: String,
        /// Its sha256.
        sha256: String,
        /// Its size (not known in `plan` before it is downloaded).
        #[serde(skip_serializing_if = "Option::is_none")]
        size_bytes: Option<u64>,
        /// `cache`, `folder`, `downloaded`, or in `plan` `to_download`.
        origin: Origin,
    },
    /// An artifact's download moved on (every 5%, or 8 MiB when its size is unknown).
    ArtifactProgress {
        /// Its upstream URL.
        url: String,
        /// Bytes received so far.
        received_bytes: u64,
        /// The size the server announced.
        #[serde(skip_serializing_if = "Option::is_none")]
        size_bytes: Option<u64>,
    },
    /// A wait for a Kubernetes object saw something new (its condition, its rollout).
    WaitProgress {
        /// `step@host`.
        node: String,
        /// Host name.
        host: String,
        /// The wait's summary.
        op: String,
        /// What it saw last (secrets redacted).
        seen: String,
    },
    /// An op ended.
    OpFinished {
        /// `step@host`.
        node: String,
        /// Step id.
        step: String,
        /// Host name.
        host: String,
        /// Position in the node's plan.
        index: usize,
        /// One-line summary (secrets redacted).
        op: String,
        /// Outcome.
        status: OpStatus,
        /// Exit code, when it ran.
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        /// Tail of its stderr when it failed, or the `warning: ` lines of a read-only check that
        /// passed (secrets redacted).
        #[serde(skip_serializing_if = "Option::is_none")]
        stderr: Option<String>,
        /// Tail of its stdout when it failed (secrets redacted).
        #[serde(skip_serializing_if = "Option::is_none")]
        stdout: Option<String>,
        /// `plan` and `apply --diff`: what it changes (would change) in a file, as a unified
        /// diff or a one-line summary for binary and large files (secrets redacted).
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
        /// Uploads and artifacts: whether the file was on the host already or was sent.
        #[serde(skip_serializing_if = "Option::is_none")]
        transfer: Option<Transfer>,
    },
    /// A node ended.
    NodeFinished {
        /// `step@host`.
        node: String,
        /// Step id.
        step: String,
        /// Host name.
        host: String,
        /// Outcome.
        status: NodeStatus,
        /// Wall time of all attempts, from the moment the node started.
        duration_ms: u64,
        /// Time it waited, ready, for a free slot (`--per-host`, `--parallel`, `exclusive`).
        queued_ms: u64,
        /// Attempts made (0 when it did not run).
        attempts: u32,
        /// Milliseconds since the run started.
        at_ms: u64,
        /// Why it failed or was not run.
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The run ended.
    RunFinished {
        /// Exit code of graphrun.
        exit_code: i32,
        /// Wall time.
        duration_ms: u64,
        /// Counts per host.
        recap: BTreeMap<String, Recap>,
    },
}

/// Receives events (progress display, JSON lines, tests).
pub trait Reporter: Send + Sync {
    /// Called for each event, in order.
    fn event(&self, event: &Event);
}

/// Keeps events in memory (tests, library users).
#[derive(Default)]
pub struct Collector(pub std::sync::Mutex<Vec<Event>>);

impl Reporter for Collector {
    fn event(&self, event: &Event) {
        self.0.lock().expect("collector lock").push(event.clone());
    }
}
