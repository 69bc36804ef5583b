//! The connections of a run. Per host: one master connection (SSH hosts) and a few shells
//! over it, shared by the host's running nodes (which shell runs a node's batch: `route.rs`).

mod route;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graphrun_plugin_api::shell::quote;
use tokio::io::AsyncWriteExt;

use super::master::Master;
use super::process::{Feed, Process};
use super::shell::{random_hex, ShellSession};
use super::{ssh, Session, Transport};
use crate::playbook::{ConnectionKind, Host, HostKeyChecking};

/// Connecting is tried at least this many times...
const CONNECT_ATTEMPTS: u32 = 3;
/// ...and again while the first attempt started less than this long ago: an sshd restarting
/// (a package upgrade) refuses connections for a moment, and quick refusals are retried for a
/// few seconds, while a dead host, whose every attempt waits the connect timeout, still costs
/// three attempts.
const CONNECT_PATIENCE: Duration = Duration::from_secs(5);

/// The waits between connection attempts: 250 ms, doubling up to 1 s.
struct Backoff {
    started: tokio::time::Instant,
    attempt: u32,
    delay: Duration,
}

impl Backoff {
    fn new() -> Self {
        Backoff {
            started: tokio::time::Instant::now(),
            attempt: 1,
            delay: Duration::from_millis(250),
        }
    }

    /// After a failed attempt: waits and says to try again, or says to give up.
    async fn again(&mut self) -> bool {
        if self.attempt >= CONNECT_ATTEMPTS && self.started.elapsed() >= CONNECT_PATIENCE {
            return false;
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(1));
        self.attempt += 1;
        true
    }
}

/// The sessions of a run, opened on first use (or up front by [`Connections::warm_up`]).
pub struct Connections {
    transport: Transport,
    slots: HashMap<String, Arc<Slot>>,
    /// Where the master connections' control sockets live (private to this run); held for
    /// its drop, which removes the folder.
    _control_dir: Option<tempfile::TempDir>,
}

/// One host's connection and shells.
pub struct Slot {
    host: Host,
    /// The master connection's control socket (SSH hosts of a real run).
    control: Option<PathBuf>,
    link: tokio::sync::Mutex<Link>,
    shells: Mutex<Vec<Arc<ShellSession>>>,
    /// Held while a shell opens: one at a time per host, so two batches looking for a shell
    /// at once do not open two.
    opening: tokio::sync::Mutex<()>,
    /// The most shells the host gets (`--per-host`).
    most: usize,
    /// Names this run to the host's shells (see `ShellSession::open`).
    run: Arc<str>,
}

#[derive(Default)]
struct Link {
    master: Option<Arc<Master>>,
    /// A permanent failure, or the last one after all attempts: later nodes fail fast with it.
    failed: Option<String>,
}

/// A node's access to its host: its batches go to the host's shells (or simulated host).
pub struct Lease {
    session: Session,
    slot: Arc<Slot>,
}

impl std::ops::Deref for Lease {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Lease {
    /// Starts `sh -c SCRIPT` on the host, as its shells run (same user, same sudo), in a
    /// session of its own beside the shell stream, reading `file`: for transfers. The file
    /// is read by the connection itself where nothing else has to come first on the script's
    /// input; otherwise (a sudo password goes first) the file comes back beside the process,
    /// for the caller to copy through its stdin pipe.
    pub async fn spawn_script_reading(
        &self,
        script: &str,
        file: std::fs::File,
    ) -> Result<(Process, Option<std::fs::File>), String> {
        if ssh::first_line(&self.slot.host.connection).is_some() {
            Ok((
                self.slot.spawn_script(script, Feed::Pipe).await?,
                Some(file),
            ))
        } else {
            Ok((
                self.slot.spawn_script(script, Feed::File(file)).await?,
                None,
            ))
        }
    }

    /// A local port that leads to `host:port` as the node's host reaches it, through its SSH
    /// connection (for an API server only the host can reach).
    pub async fn forward(&self, host: &str, port: u16) -> Result<std::net::SocketAddr, String> {
        if self.slot.host.connection.kind != ConnectionKind::Ssh || self.slot.control.is_none() {
            return Err(format!(
                "{} is not an SSH host: there is no connection to forward a port through",
                self.slot.host.name
            ));
        }
        self.slot.master().await?.forward(host, port).await
    }
}

impl Connections {
    /// Sessions to `hosts` through `transport`, at most `per_host` shells on each.
    pub fn new(transport: Transport, hosts: &[Host], per_host: usize) -> Result<Self, String> {
        let control_dir = match transport {
            Transport::Real => Some(
                tempfile::Builder::new()
                    .prefix("graphrun-")
                    .tempdir()
                    .map_err(|err| format!("cannot create a folder for control sockets: {err}"))?,
            ),
            Transport::Memory(_) => None,
        };
        let run: Arc<str> = random_hex().into();
        let slots = hosts
            .iter()
            .enumerate()
            .map(|(index, h)| {
                let slot = Slot {
                    host: h.clone(),
                    control: control_dir
                        .as_ref()
                        .map(|dir| dir.path().join(index.to_string())),
                    link: Default::default(),
                    shells: Default::default(),
                    opening: Default::default(),
                    most: per_host.max(1),
                    run: run.clone(),
                };
                (h.name.clone(), Arc::new(slot))
            })
            .collect();
        Ok(Connections {
            transport,
            slots,
            _control_dir: control_dir,
        })
    }

    /// Hosts whose key checking is off, for the warning printed before a run.
    pub fn unchecked_hosts(hosts: &[Host]) -> Vec<String> {
        hosts
            .iter()
            .filter(|h| {
                h.connection.host_key_checking == HostKeyChecking::Off
                    && h.connection.kind == ConnectionKind::Ssh
            })
            .map(|h| h.name.clone())
            .collect()
    }

    /// Access to `host` for one node, once the host has a shell (connecting it first as
    /// needed: a host that cannot be reached fails here).
    pub async fn session(&self, host: &str) -> Result<Lease, String> {
        let slot = self
            .slots
            .get(host)
            .ok_or_else(|| format!("unknown host {host}"))?
            .clone();
        if let Some(reason) = &slot.link.lock().await.failed {
            return Err(reason.clone());
        }
        let session = match &self.transport {
            Transport::Memory(memory) => Session::Memory(memory.open(host)?),
            Transport::Real => {
                slot.first_shell().await?;
                Session::Shell(slot.clone())
            }
        };
        Ok(Lease { session, slot })
    }

    /// Connects every host in parallel (at most `parallel` handshakes at once) and opens its
    /// first shell, so the first node of each host does not pay for its connection.
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

    /// Ends every shell and connection, all hosts at once: shells get end-of-input and exit
    /// after removing their temporary files; with `kill` (after Ctrl-C) everything is
    /// stopped where it is.
    pub async fn close(&self, kill: bool) {
        let mut closing = tokio::task::JoinSet::new();
        for slot in self.slots.values() {
            let shells: Vec<Arc<ShellSession>> =
                std::mem::take(&mut *slot.shells.lock().expect("shells lock"));
            let master = slot.link.lock().await.master.take();
            closing.spawn(async move {
                for shell in &shells {
                    if kill {
                        shell.kill("the run was interrupted");
                    } else {
                        shell.close().await;
                    }
                }
                if let Some(master) = master {
                    if kill {
                        master.kill();
                    } else {
                        master.close().await;
                    }
                }
            });
        }
        while closing.join_next().await.is_some() {}
    }
}

impl Slot {
    /// The host's live shells (forgetting the lost ones).
    fn live_shells(&self) -> Vec<Arc<ShellSession>> {
        let mut shells = self.shells.lock().expect("shells lock");
        shells.retain(|shell| !shell.is_lost());
        shells.clone()
    }

    /// Opens the host's first shell, unless it has one.
    async fn first_shell(&self) -> Result<(), String> {
        if !self.live_shells().is_empty() {
            return Ok(());
        }
        let _opening = self.opening.lock().await;
        if self.live_shells().is_empty() {
            let shell = self.open_shell().await?;
            self.shells
                .lock()
                .expect("shells lock")
                .push(Arc::new(shell));
        }
        Ok(())
    }

    /// A new shell on the slot's host; failures to connect are retried with backoff.
    async fn open_shell(&self) -> Result<ShellSession, String> {
        let connection = &self.host.connection;
        // The shell gets the connect timeout plus time for sudo and the prelude.
        let ready_within = connection.connect_timeout + Duration::from_secs(10);
        let first_line = ssh::first_line(connection);
        let mut backoff = Backoff::new();
        loop {
            let process = match connection.kind {
                ConnectionKind::Local => {
                    let command = ssh::local_shell(connection);
                    ssh::show_command(&self.host, &command);
                    Process::local(command, Feed::Pipe)
                }
                ConnectionKind::Ssh => {
                    let master = self.master().await?;
                    master
                        .spawn(&ssh::session_shell(connection), Feed::Pipe)
                        .await
                }
            };
            let opened = match process {
                Ok(process) => {
                    ShellSession::open(process, ready_within, first_line.as_deref(), &self.run)
                        .await
                }
                Err(message) => Err(message),
            };
            match opened {
                Ok(shell) => return Ok(shell),
                Err(message) => {
                    if ssh::is_permanent(&message) || !backoff.again().await {
                        let reason = ssh::explain_failure(&self.host, &message);
                        self.link.lock().await.failed = Some(reason.clone());
                        return Err(reason);
                    }
                }
            }
        }
    }

    /// Starts `sh -c SCRIPT` as the host's shells run. With a pipe feed, the sudo password
    /// (if any) is its first line; a file feed is for hosts that need none.
    async fn spawn_script(&self, script: &str, feed: Feed) -> Result<Process, String> {
        let connection = &self.host.connection;
        let mut process = match connection.kind {
            ConnectionKind::Local => {
                let mut command = ssh::local_shell(connection);
                command.arg("-c").arg(script);
                Process::local(command, feed)?
            }
            ConnectionKind::Ssh => {
                let master = self.master().await?;
                let shell = ssh::session_shell(connection);
                master
                    .spawn(&format!("{shell} -c {}", quote(script)), feed)
                    .await?
            }
        };
        if let (Some(line), Some(stdin)) = (ssh::first_line(connection), process.stdin.as_mut()) {
            stdin
                .write_all(format!("{line}\n").as_bytes())
                .await
                .map_err(|err| format!("cannot write to the host: {err}"))?;
        }
        Ok(process)
    }

    /// The host's master connection, connecting (again) as needed. One node connects while
    /// the others wait, so a dead host costs its attempts once, not once per node.
    async fn master(&self) -> Result<Arc<Master>, String> {
        let mut link = self.link.lock().await;
        if let Some(reason) = &link.failed {
            return Err(reason.clone());
        }
        if let Some(master) = link.master.as_ref().filter(|m| m.is_alive()) {
            return Ok(master.clone());
        }
        link.master = None;
        let control = self
            .control
            .clone()
            .expect("SSH hosts of a real run have a control socket");
        let mut backoff = Backoff::new();
        loop {
            match Master::connect(&self.host, control.clone()).await {
                Ok(master) => {
                    let master = Arc::new(master);
                    link.master = Some(master.clone());
                    return Ok(master);
                }
                Err(message) => {
                    if ssh::is_permanent(&message) || !backoff.again().await {
                        let reason = ssh::explain_failure(&self.host, &message);
                        link.failed = Some(reason.clone());
                        return Err(reason);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Backoff;

    /// Attempts made when each one fails after `takes`.
    async fn attempts(takes: Duration) -> u32 {
        let mut backoff = Backoff::new();
        let mut attempts = 1;
        loop {
            tokio::time::sleep(takes).await;
            if !backoff.again().await {
                return attempts;
            }
            attempts += 1;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn quick_refusals_are_retried_for_five_seconds_slow_failures_three_times() {
        // At 0, 0.25, 0.75, then every second while the first was less than 5 s ago.
        assert_eq!(attempts(Duration::ZERO).await, 8);
        // A dead host: each attempt waits the connect timeout.
        assert_eq!(attempts(Duration::from_secs(10)).await, 3);
    }
}
