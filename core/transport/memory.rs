//! An in-memory transport: simulated hosts for scheduler tests and benchmarks.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use graphrun_plugin_api::Op;

use super::shell::Frame;

/// What a simulated op does.
#[derive(Debug, Clone, Default)]
pub struct Simulated {
    /// How long it takes.
    pub delay: Duration,
    /// Its exit code (non-zero fails the node).
    pub exit_code: i32,
    /// Whether it changed something.
    pub changed: bool,
    /// What it prints.
    pub stdout: String,
}

/// Decides what each (host, op) does.
pub type Behaviour = dyn Fn(&str, &Op) -> Simulated + Send + Sync;

/// One op as it ran, for assertions on ordering and overlap.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    /// Host name.
    pub host: String,
    /// The op's summary.
    pub op: String,
    /// When it started.
    pub started: Instant,
    /// When it ended.
    pub finished: Instant,
}

/// Simulated hosts.
#[derive(Clone)]
pub struct MemoryTransport {
    behaviour: Arc<Behaviour>,
    unreachable: Arc<Mutex<BTreeSet<String>>>,
    journal: Arc<Mutex<Vec<JournalEntry>>>,
}

impl MemoryTransport {
    /// Hosts where every op behaves as `behaviour` says.
    pub fn new(behaviour: impl Fn(&str, &Op) -> Simulated + Send + Sync + 'static) -> Self {
        MemoryTransport {
            behaviour: Arc::new(behaviour),
            unreachable: Default::default(),
            journal: Default::default(),
        }
    }

    /// Makes a host refuse connections.
    pub fn set_unreachable(&self, host: &str) {
        self.unreachable
            .lock()
            .expect("lock")
            .insert(host.to_string());
    }

    /// Every op run so far.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.journal.lock().expect("lock").clone()
    }

    pub(super) fn open(&self, host: &str) -> Result<MemorySession, String> {
        if self.unreachable.lock().expect("lock").contains(host) {
            return Err(format!(
                "ssh: connect to host {host} port 22: Connection refused"
            ));
        }
        Ok(MemorySession {
            host: host.to_string(),
            transport: self.clone(),
        })
    }
}

/// One simulated host's session.
pub struct MemorySession {
    host: String,
    transport: MemoryTransport,
}

impl MemorySession {
    pub(super) async fn run(&self, ops: &[Op], check_mode: bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        let mut failed = false;
        for op in ops {
            if failed {
                frames.push(Frame {
                    exit_code: None,
                    status: String::new(),
                    stdout: vec![],
                    stderr: vec![],
                });
                continue;
            }
            let simulated = (self.transport.behaviour)(&self.host, op);
            let started = Instant::now();
            if !check_mode {
                tokio::time::sleep(simulated.delay).await;
            }
            self.transport
                .journal
                .lock()
                .expect("lock")
                .push(JournalEntry {
                    host: self.host.clone(),
                    op: op.summary(),
                    started,
                    finished: Instant::now(),
                });
            failed = simulated.exit_code != 0;
            let status = match (simulated.changed, check_mode) {
                (false, _) => "u",
                (true, true) => "w",
                (true, false) => "",
            };
            frames.push(Frame {
                exit_code: Some(simulated.exit_code),
                status: status.to_string(),
                stdout: simulated.stdout.into_bytes(),
                stderr: if failed {
                    b"simulated failure".to_vec()
                } else {
                    vec![]
                },
            });
        }
        frames
    }
}
