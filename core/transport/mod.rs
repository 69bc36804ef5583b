//! Reaching hosts: one long-lived shell per host (local or over SSH), or simulated hosts.

pub mod memory;
pub mod script;
pub mod shell;
mod ssh;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use graphrun_plugin_api::Op;

use crate::playbook::{Host, HostKeyChecking};
pub use memory::{MemoryTransport, Simulated};
pub use shell::Frame;

/// How sessions are opened.
#[derive(Clone)]
pub enum Transport {
    /// Real hosts: the local shell or OpenSSH, per the host's connection settings.
    Real,
    /// Simulated hosts.
    Memory(MemoryTransport),
}

/// A host's open session.
pub enum Session {
    /// A shell process (local or over ssh).
    Shell(Box<shell::ShellSession>),
    /// A simulated host.
    Memory(memory::MemorySession),
}

/// Why ops could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// An op could not be turned into a command (a bug or bad data, not the host's fault).
    Invalid(String),
    /// The connection failed or was lost.
    Unreachable(String),
    /// graphrun itself killed the session (another node on the host timed out); running the
    /// ops again on a new session is safe.
    Reset,
}

impl Session {
    /// Runs ops in order (stopping at the first failure); `uploads` holds the source bytes of
    /// each `Op::Upload`, by index; with `diff`, file ops report contents before and after
    /// (see [`script::parse_diff`]).
    pub async fn run(
        &self,
        ops: &[Op],
        uploads: &HashMap<usize, Vec<u8>>,
        check_mode: bool,
        diff: bool,
    ) -> Result<Vec<Frame>, RunError> {
        match self {
            Session::Shell(session) => {
                let snippets = ops
                    .iter()
                    .enumerate()
                    .map(|(i, op)| script::compile(op, uploads.get(&i).map(Vec::as_slice), diff))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(RunError::Invalid)?;
                session.run(&snippets, check_mode).await.map_err(|message| {
                    if session.was_reset() {
                        RunError::Reset
                    } else {
                        RunError::Unreachable(message)
                    }
                })
            }
            Session::Memory(session) => Ok(session.run(ops, check_mode).await),
        }
    }

    fn is_lost(&self) -> bool {
        match self {
            Session::Shell(session) => session.is_lost(),
            Session::Memory(_) => false,
        }
    }

    /// Drops the session after a timeout: whatever it was doing is abandoned.
    pub fn kill(&self, reason: &str) {
        if let Session::Shell(session) = self {
            session.kill(reason);
        }
    }
}

/// The sessions of a run, opened on first use (or up front by [`Connections::warm_up`]).
pub struct Connections {
    transport: Transport,
    slots: HashMap<String, Slot>,
}

struct Slot {
    host: Host,
    state: tokio::sync::Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    session: Option<Arc<Session>>,
    /// A permanent failure, or the last one after all attempts: later nodes fail fast with it.
    failed: Option<String>,
}

const CONNECT_ATTEMPTS: u32 = 3;

impl Connections {
    /// Sessions to `hosts` through `transport`.
    pub fn new(transport: Transport, hosts: &[Host]) -> Self {
        let slots = hosts
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    Slot {
                        host: h.clone(),
                        state: Default::default(),
                    },
                )
            })
            .collect();
        Connections { transport, slots }
    }

    /// Hosts whose key checking is off, for the warning printed before a run.
    pub fn unchecked_hosts(hosts: &[Host]) -> Vec<String> {
        hosts
            .iter()
            .filter(|h| {
                h.connection.host_key_checking == HostKeyChecking::Off
                    && h.connection.kind == crate::playbook::ConnectionKind::Ssh
            })
            .map(|h| h.name.clone())
            .collect()
    }

    /// The open session to `host`, opening (or reopening) it as needed.
    pub async fn session(&self, host: &str) -> Result<Arc<Session>, String> {
        let slot = self
            .slots
            .get(host)
            .ok_or_else(|| format!("unknown host {host}"))?;
        let mut state = slot.state.lock().await;
        if let Some(reason) = &state.failed {
            return Err(reason.clone());
        }
        if let Some(session) = state.session.as_ref().filter(|s| !s.is_lost()) {
            return Ok(session.clone());
        }
        state.session = None;
        let mut delay = Duration::from_millis(250);
        let mut attempt = 1;
        loop {
            match self.open(&slot.host).await {
                Ok(session) => {
                    let session = Arc::new(session);
                    state.session = Some(session.clone());
                    return Ok(session);
                }
                Err(message) if attempt >= CONNECT_ATTEMPTS || ssh::is_permanent(&message) => {
                    let reason = ssh::explain_failure(&slot.host, &message);
                    state.failed = Some(reason.clone());
                    return Err(reason);
                }
                Err(_) => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
            }
        }
    }

    /// Opens every host's session in parallel (at most `parallel` handshakes at once), so the
    /// first node of each host does not pay for its connection.
    pub async fn warm_up(self: &Arc<Self>, parallel: usize) {
        let limit = Arc::new(tokio::sync::Semaphore::new(parallel.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let hosts: Vec<String> = self.slots.keys().cloned().collect();
        for host in hosts {
            let connections = self.clone();
            let limit = limit.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire().await;
                let _ = connections.session(&host).await;
            });
        }
        while tasks.join_next().await.is_some() {}
    }

    /// Kills the host's open session, if it has one (after a timeout its state is unknown);
    /// the next node of that host connects again. Never opens a connection.
    pub async fn kill_session(&self, host: &str, reason: &str) {
        if let Some(slot) = self.slots.get(host) {
            if let Some(session) = slot.state.lock().await.session.take() {
                session.kill(reason);
            }
        }
    }

    /// Ends every session, all at once: shells get end-of-input and exit after cleaning up
    /// their temporary folder; with `kill` (after Ctrl-C) they are stopped where they are.
    pub async fn close(&self, kill: bool) {
        let mut closing = tokio::task::JoinSet::new();
        for slot in self.slots.values() {
            if let Some(session) = slot.state.lock().await.session.take() {
                if kill {
                    session.kill("the run was interrupted");
                } else {
                    closing.spawn(async move {
                        if let Session::Shell(shell) = session.as_ref() {
                            shell.close().await;
                        }
                    });
                }
            }
        }
        while closing.join_next().await.is_some() {}
    }

    async fn open(&self, host: &Host) -> Result<Session, String> {
        match &self.transport {
            Transport::Memory(memory) => memory.open(&host.name).map(Session::Memory),
            Transport::Real => {
                let (command, first_line) = ssh::shell_command(host);
                if crate::output::style::verbose() {
                    // The sudo password goes to stdin, never on this line: nothing to redact.
                    eprintln!("{}: {:?}", host.name, command.as_std());
                }
                // The handshake gets the connect timeout plus time for sudo and the prelude.
                let ready_within = host.connection.connect_timeout + Duration::from_secs(10);
                shell::ShellSession::open(command, ready_within, first_line.as_deref())
                    .await
                    .map(|s| Session::Shell(Box::new(s)))
            }
        }
    }
}

#[cfg(test)]
mod diff_tests;
#[cfg(test)]
mod tests;
