//! The state file's journal: one line per node started or finished, appended as it happens.
//!
//! The state file is rewritten at most every 200 ms (large runs would spend their time
//! rewriting it otherwise), so a run killed with SIGKILL could lose the last finished nodes and
//! run them again. Each line is one `write(2)` to `state.journal`, which the kernel keeps even
//! when the process dies right after; loading replays it over the state file, and every full
//! save of the state file empties it. A node that started but never finished was in flight when
//! the run died: its outcome on the host is unknown.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::state::NodeRecord;

/// One line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    /// The node's ops are about to be sent.
    Started(String),
    /// The node's outcome.
    Finished(String, NodeRecord),
}

/// What a journal left by an earlier run says.
#[derive(Debug, Default)]
pub struct Replay {
    /// Outcomes, in order.
    pub finished: Vec<(String, NodeRecord)>,
    /// Nodes started and never finished: in flight when that run ended.
    pub in_flight: Vec<String>,
}

/// The open journal of a run.
pub struct Journal {
    path: PathBuf,
    file: Option<File>,
}

impl Journal {
    /// The journal beside a state file.
    pub fn beside(state_path: &Path) -> Journal {
        Journal {
            path: state_path.with_extension("journal"),
            file: None,
        }
    }

    /// Reads what an earlier run appended (nothing if the file does not exist).
    pub fn replay(&self) -> Result<Replay, String> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Replay::default()),
            Err(err) => return Err(format!("cannot read {}: {err}", self.path.display())),
        };
        let mut replay = Replay::default();
        // A torn last line (the process died inside the write) is skipped like any unreadable one.
        for entry in text
            .lines()
            .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
        {
            match entry {
                Entry::Started(node) => replay.in_flight.push(node),
                Entry::Finished(node, record) => {
                    replay.in_flight.retain(|n| *n != node);
                    replay.finished.push((node, record));
                }
            }
        }
        Ok(replay)
    }

    /// Notes that a node starts.
    pub fn started(&mut self, node: &str) -> Result<(), String> {
        self.append(&Entry::Started(node.to_string()))
    }

    /// Notes a node's outcome.
    pub fn finished(&mut self, node: &str, record: &NodeRecord) -> Result<(), String> {
        self.append(&Entry::Finished(node.to_string(), record.clone()))
    }

    /// Empties the journal: the state file now holds all it said.
    pub fn clear(&mut self) -> Result<(), String> {
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("cannot remove {}: {err}", self.path.display()))
            }
            _ => Ok(()),
        }
    }

    fn append(&mut self, entry: &Entry) -> Result<(), String> {
        let mut line = serde_json::to_vec(entry).expect("journal entry serializes");
        line.push(b'\n');
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&self.path)
                    .map_err(|err| format!("cannot open {}: {err}", self.path.display()))?,
            ),
        };
        // One write per line: never buffered, so a killed process loses nothing written.
        file.write_all(&line)
            .map_err(|err| format!("cannot write {}: {err}", self.path.display()))
    }
}
