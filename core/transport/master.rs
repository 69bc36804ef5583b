//! One authenticated SSH connection per host: an OpenSSH ControlMaster that graphrun starts
//! with the system `ssh` (so ssh_config, the agent, bastions and graphrun's host-key policy
//! apply exactly as on the command line), and sessions over it through the `openssh` crate's
//! native multiplexing client: a new shell or upload costs one channel, not a handshake or a
//! process on this machine.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Child;

use super::process::{kill_group, spawn_owned, Feed, Process};
use super::shell::collect_stderr;
use super::ssh;
use crate::playbook::Host;

/// A running master connection.
pub struct Master {
    /// The ssh process; taken when the connection is closed.
    child: Mutex<Option<Child>>,
    session: Arc<openssh::Session>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
}

impl Master {
    /// Connects to `host` (authenticates, checks its key) and listens on `control`.
    pub async fn connect(host: &Host, control: PathBuf) -> Result<Master, String> {
        let _ = std::fs::remove_file(&control);
        let mut command = ssh::master_command(host, &control);
        ssh::show_command(host, &command);
        command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child =
            spawn_owned(&mut command).map_err(|err| format!("cannot start ssh: {err}"))?;
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let stderr_done = collect_stderr(
            Box::new(child.stderr.take().expect("piped")),
            stderr_tail.clone(),
        );
        // ssh creates the control socket once the connection is authenticated (it links it
        // into place, so it exists only when it listens). ssh's own ConnectTimeout bounds the
        // TCP part; the margin covers authentication.
        let within = host.connection.connect_timeout + Duration::from_secs(10);
        let started = tokio::time::Instant::now();
        let failure = loop {
            if control.exists() {
                return Ok(Master {
                    child: Mutex::new(Some(child)),
                    session: Arc::new(openssh::Session::resume_mux(control.into(), None)),
                    stderr_tail,
                });
            }
            if let Ok(Some(_)) = child.try_wait() {
                break "ssh exited before the connection was ready".to_string();
            }
            if started.elapsed() > within {
                kill_group(&mut child);
                break format!(
                    "no connection within {}",
                    humantime::format_duration(within)
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), stderr_done).await;
        Err(last_words(&stderr_tail).unwrap_or(failure))
    }

    /// Whether the connection is still up (ssh exits when it drops).
    pub fn is_alive(&self) -> bool {
        self.child
            .lock()
            .expect("master lock")
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Starts `command` (shell text) in a new session, reading `feed`.
    pub async fn spawn(&self, command: &str, feed: Feed) -> Result<Process, String> {
        Process::remote(&self.session, command, feed)
            .await
            .map_err(|err| {
                // A session that cannot be opened because the connection dropped says why.
                last_words(&self.stderr_tail).map_or(err.clone(), |why| format!("{err}: {why}"))
            })
    }

    /// Forwards a free local port to `host:port` as seen from the connected host (what
    /// `ssh -O forward -L` asks of a ControlMaster); the forward lasts as long as the connection.
    pub async fn forward(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        // The master listens itself: a port free now is free when it binds it a moment later
        // unless another program takes it in between, which then fails the request.
        let local = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map_err(|err| format!("no free local port: {err}"))?;
        let remote = openssh::Socket::TcpSocket {
            host: host.into(),
            port,
        };
        self.session
            .request_port_forward(openssh::ForwardType::Local, local, remote)
            .await
            .map_err(|err| format!("cannot forward {local} to {host}:{port}: {err}"))?;
        Ok(local)
    }

    /// Ends the connection: ssh exits at SIGTERM after telling the server; sessions still open
    /// end with it. An ssh that has not exited 200 ms later is killed (seen taking seconds on
    /// a busy machine, while the kernel closes the connection just as well).
    pub async fn close(&self) {
        let Some(mut child) = self.child.lock().expect("master lock").take() else {
            return;
        };
        if let Some(pid) = child.id() {
            // SAFETY: signals ssh itself, a child of graphrun that has not been reaped yet.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        // Waited for as it exits (no polling interval added to every run's end).
        if tokio::time::timeout(Duration::from_millis(200), child.wait())
            .await
            .is_err()
        {
            kill_group(&mut child);
        }
    }

    /// Stops the connection at once (Ctrl-C).
    pub fn kill(&self) {
        if let Some(child) = self.child.lock().expect("master lock").as_mut() {
            kill_group(child);
        }
    }
}

/// ssh's stderr, if it said anything (its reason for failing or dropping).
fn last_words(tail: &Mutex<Vec<u8>>) -> Option<String> {
    let text = String::from_utf8_lossy(&tail.lock().expect("stderr lock"))
        .trim()
        .to_string();
    (!text.is_empty()).then_some(text)
}
