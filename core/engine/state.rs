//! The state file: what each node last did, so a re-run resumes where a failed run stopped.
//!
//! `.graphrun/<playbook>/state.json` next to the playbook, written atomically (temporary file,
//! then rename) with mode 0600. A node recorded as done with the same input hash is skipped
//! while a run is being resumed, i.e. while the previous run did not complete. After a complete
//! run, the next `apply` checks every node again, so drift on the hosts is repaired. Between two
//! saves, `state.journal` (see `journal.rs`) keeps what happened, so even a killed run loses
//! no outcome.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::journal::Journal;

const VERSION: u32 = 1;

/// The whole file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    /// File format version.
    pub version: u32,
    /// Whether the last run finished every node of the playbook successfully.
    pub complete: bool,
    /// Per node (`step@host`), its last outcome.
    pub nodes: BTreeMap<String, NodeRecord>,
}

/// What one node last did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// `ok`, `changed`, `skipped`, `failed`, `unreachable`, `blocked`, `interrupted`.
    pub status: String,
    /// Hash of the node's resolved inputs (plugin, version, rendered parameters, host).
    pub input_hash: String,
    /// When it finished (RFC 3339).
    pub finished_at: String,
    /// Outputs, for later steps when this node is skipped on resume.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl NodeRecord {
    /// Whether the node's work is done.
    pub fn is_done(&self) -> bool {
        matches!(self.status.as_str(), "ok" | "changed" | "skipped")
    }
}

/// The state file of one playbook, saved at most every 200 ms during a run and at its end;
/// its journal keeps every node's start and outcome in between.
pub struct StateStore {
    path: PathBuf,
    state: State,
    /// The state as loaded: what a resumed run may skip.
    previous: State,
    /// Nodes the previous run had started and not finished when it died.
    previous_in_flight: Vec<String>,
    journal: Journal,
    /// Nodes of this run started and not finished yet.
    in_flight: BTreeSet<String>,
    dirty: bool,
    last_save: Option<Instant>,
}

/// The folder graphrun keeps for a playbook: `.graphrun/<playbook file stem>/`.
pub fn playbook_dir(playbook: &Path) -> PathBuf {
    let stem = playbook
        .file_stem()
        .map_or("playbook".into(), |s| s.to_string_lossy().into_owned());
    let parent = playbook
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parent.join(".graphrun").join(stem)
}

/// Creates a folder readable by the owner only; parents it creates are private too (so
/// `runs/` is 0700 like `runs/<run id>/`).
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Writes a file atomically with mode 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

impl StateStore {
    /// Opens the state kept in `data_dir`; `fresh` ignores what it holds.
    pub fn open(data_dir: &Path, fresh: bool) -> Result<Self, String> {
        let path = data_dir.join("state.json");
        let journal = Journal::beside(&path);
        let mut previous = match std::fs::read(&path) {
            Ok(_) if fresh => State::default(),
            Ok(bytes) => serde_json::from_slice::<State>(&bytes)
                .ok()
                .filter(|s| s.version == VERSION)
                .ok_or_else(|| format!("{} is not a graphrun {VERSION} state file: move it away or run with --fresh", path.display()))?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
        };
        let mut previous_in_flight = Vec::new();
        if !fresh {
            let replay = journal.replay()?;
            if !replay.finished.is_empty() || !replay.in_flight.is_empty() {
                // A journal left behind means that run never reached its final save.
                previous.complete = false;
            }
            previous.nodes.extend(replay.finished);
            previous_in_flight = replay.in_flight;
        }
        let state = State {
            version: VERSION,
            complete: false,
            nodes: previous.nodes.clone(),
        };
        Ok(StateStore {
            path,
            state,
            previous,
            previous_in_flight,
            journal,
            in_flight: BTreeSet::new(),
            dirty: false,
            last_save: None,
        })
    }

    /// A done record of the previous run for this node with these inputs, if the run resumes.
    pub fn resumable(&self, node: &str, input_hash: &str) -> Option<&NodeRecord> {
        if self.previous.complete {
            return None;
        }
        self.previous
            .nodes
            .get(node)
            .filter(|r| r.is_done() && r.input_hash == input_hash)
    }

    /// Nodes the previous run started and never finished (it was killed): their outcome on the
    /// hosts is unknown, so they run again.
    pub fn previous_in_flight(&self) -> &[String] {
        &self.previous_in_flight
    }

    /// Notes that a node's ops are about to be sent.
    pub fn started(&mut self, node: &str) -> Result<(), String> {
        self.in_flight.insert(node.to_string());
        self.journal.started(node)
    }

    /// Records a node's outcome (in the journal at once, in the state file soon).
    pub fn record(&mut self, node: String, record: NodeRecord) -> Result<(), String> {
        self.in_flight.remove(&node);
        let journaled = self.journal.finished(&node, &record);
        self.state.nodes.insert(node, record);
        self.dirty = true;
        journaled
    }

    /// Marks whether every node of the playbook is done.
    pub fn set_complete(&mut self, complete: bool) {
        self.state.complete = complete;
        self.dirty = true;
    }

    /// Saves if something changed and the last save is old enough (keeps large runs cheap).
    pub fn save_soon(&mut self) -> Result<(), String> {
        if self
            .last_save
            .is_some_and(|t| t.elapsed() < Duration::from_millis(200))
        {
            return Ok(());
        }
        self.save()
    }

    /// Saves now if something changed.
    pub fn save(&mut self) -> Result<(), String> {
        if !self.dirty {
            return Ok(());
        }
        let dir = self.path.parent().expect("state path has a folder");
        private_dir(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        let bytes = serde_json::to_vec(&self.state).expect("state serializes");
        write_private(&self.path, &bytes)
            .map_err(|err| format!("cannot write {}: {err}", self.path.display()))?;
        self.dirty = false;
        self.last_save = Some(Instant::now());
        // The state file holds every outcome now; the journal keeps what is still in flight.
        self.journal.clear()?;
        for node in &self.in_flight {
            self.journal.started(node)?;
        }
        Ok(())
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Now, as RFC 3339 in UTC.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
