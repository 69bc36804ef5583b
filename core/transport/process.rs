//! A process graphrun talks to through pipes: a local child, or a command in an SSH session
//! over a host's master connection. Shells (`shell.rs`) and uploads (`upload.rs`) use it the
//! same way wherever it runs.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::process::{Child, Command};

/// Writes to the process's standard input.
pub type Input = Box<dyn AsyncWrite + Send + Unpin>;
/// Reads its standard output or error.
pub type Output = Box<dyn AsyncRead + Send + Unpin>;

/// Where a process's standard input comes from.
pub enum Feed {
    /// A pipe that graphrun writes to ([`Process::stdin`]).
    Pipe,
    /// A local file that the process (for a remote one, the ssh client) reads by itself: an
    /// upload's bytes go from the file to the connection without a copy through graphrun.
    File(std::fs::File),
}

/// A started process and its pipes.
pub struct Process {
    /// Its standard input, when fed through a pipe.
    pub stdin: Option<Input>,
    /// Its standard output.
    pub stdout: Output,
    /// Its standard error.
    pub stderr: Output,
    /// To wait for it or stop it.
    pub handle: Handle,
}

/// What is left of a process once its pipes are taken: a way to wait for it or stop it.
pub enum Handle {
    /// A child of graphrun, in a process group of its own.
    Local(Child),
    /// A command in a session over the host's master connection.
    Remote(openssh::Child<Arc<openssh::Session>>),
}

impl Process {
    /// Starts `command` on this machine with piped standard output and error.
    pub fn local(mut command: Command, feed: Feed) -> Result<Process, String> {
        let stdin = match feed {
            Feed::Pipe => std::process::Stdio::piped(),
            Feed::File(file) => file.into(),
        };
        command
            .stdin(stdin)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = spawn_owned(&mut command)
            .map_err(|err| format!("cannot start {:?}: {err}", command.as_std().get_program()))?;
        Ok(Process {
            stdin: child.stdin.take().map(|pipe| Box::new(pipe) as Input),
            stdout: Box::new(child.stdout.take().expect("piped")),
            stderr: Box::new(child.stderr.take().expect("piped")),
            handle: Handle::Local(child),
        })
    }

    /// Starts `command` (shell text, run by the remote login shell) in a new session over a
    /// master connection.
    pub async fn remote(
        session: &Arc<openssh::Session>,
        command: &str,
        feed: Feed,
    ) -> Result<Process, String> {
        let stdin = match feed {
            Feed::Pipe => openssh::Stdio::piped(),
            Feed::File(file) => file.into(),
        };
        let mut child = openssh::Session::to_raw_command(session.clone(), command)
            .stdin(stdin)
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await
            .map_err(|err| format!("cannot open a session: {err}"))?;
        Ok(Process {
            stdin: child.stdin().take().map(|pipe| Box::new(pipe) as Input),
            stdout: Box::new(child.stdout().take().expect("piped")),
            stderr: Box::new(child.stderr().take().expect("piped")),
            handle: Handle::Remote(child),
        })
    }
}

impl Handle {
    /// Stops the process now. A local one is killed with everything it started; a remote
    /// session is dropped (its channel closes; the host's shell sees end of input).
    pub fn kill(self) {
        if let Handle::Local(mut child) = self {
            kill_group(&mut child);
        }
    }

    /// Waits up to `within` for the process to exit (its exit code, if it had one), then stops it.
    pub async fn wait(self, within: Duration) -> Option<i32> {
        match self {
            Handle::Local(mut child) => match tokio::time::timeout(within, child.wait()).await {
                Ok(Ok(status)) => status.code(),
                _ => {
                    kill_group(&mut child);
                    None
                }
            },
            Handle::Remote(child) => match tokio::time::timeout(within, child.wait()).await {
                Ok(Ok(status)) => status.code(),
                _ => None,
            },
        }
    }
}

/// Kills a local child and every process it started (a `sleep` would outlive a killed `sh`).
pub fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a negative pid signals that process group; the group was created
        // for this child by `process_group(0)`, so it holds only the child and its descendants.
        unsafe {
            libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
        }
    }
    let _ = child.start_kill();
}

/// Spawns a child that graphrun owns for its whole life: killed when dropped, in a process
/// group of its own (a Ctrl-C in the terminal reaches graphrun only, which then stops its
/// children and everything they started, see [`kill_group`], instead of racing with them), and
/// killed by the kernel if graphrun dies.
pub fn spawn_owned(command: &mut Command) -> std::io::Result<Child> {
    command.kill_on_drop(true).process_group(0);
    die_with_graphrun(command);
    command.spawn()
}

/// Makes the kernel kill a child (ssh, or the local `sh`) when graphrun dies, even by SIGKILL,
/// when no code of graphrun can stop it: a killed run leaves no ssh client behind.
/// The signal follows the thread that spawned the child; children are spawned from tokio's
/// worker threads, which live as long as the run.
fn die_with_graphrun(command: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the closure calls only async-signal-safe functions
    // (prctl, getppid) and touches no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // graphrun died before prctl took effect: nobody would kill this child later.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("graphrun exited"));
            }
            Ok(())
        });
    }
}
