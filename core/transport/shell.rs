//! A long-lived POSIX shell on a host, driven over its stdin/stdout.
//!
//! One shell per host runs every op of the run: no new process, session or handshake per op,
//! which is what keeps graphrun near the cost of plain shell commands. Requests are written as
//! they come (independent nodes pipeline); each op answers with a frame
//! `STDOUT \n MARKER R rc status \n STDERR \n MARKER E \n`, where MARKER is a random string
//! per session that user output cannot forge by accident.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;

use super::script::PRELUDE;

/// How one op ended on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Exit code; `None` when the op was not run (an earlier op of the batch failed).
    pub exit_code: Option<i32>,
    /// `u`: nothing to do; `w`: would change (check mode); empty: ran.
    pub status: String,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

type Reply = oneshot::Sender<Result<Vec<Frame>, String>>;

struct Pending {
    frames: usize,
    reply: Reply,
}

/// A shell process and the frames it owes.
pub struct ShellSession {
    stdin: tokio::sync::Mutex<Option<ChildStdin>>,
    pending: Arc<Mutex<VecDeque<Pending>>>,
    lost: Arc<Mutex<Option<String>>>,
    child: Mutex<Child>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    marker: String,
    reset: std::sync::atomic::AtomicBool,
}

impl ShellSession {
    /// Starts `command` (which must run a POSIX shell reading stdin), sends the prelude and
    /// waits until the shell answers. `first_line` is written before anything else (a sudo
    /// password read by `sudo -S`, never put on a command line).
    pub async fn open(
        mut command: Command,
        ready_within: Duration,
        first_line: Option<&str>,
    ) -> Result<Self, String> {
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C in the terminal reaches graphrun, which then stops
            // the shells itself (and everything they started), instead of racing with them.
            .process_group(0);
        die_with_graphrun(&mut command);
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot start {:?}: {err}", command.as_std().get_program()))?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = child.stdout.take().expect("piped");
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let stderr_done = collect_stderr(child.stderr.take().expect("piped"), stderr_tail.clone());
        let marker = format!("GRAPHRUN-{}", random_hex());
        let mut bootstrap = String::new();
        if let Some(line) = first_line {
            bootstrap.push_str(line);
            bootstrap.push('\n');
        }
        bootstrap.push_str(&format!(
            "M={marker}\nT=$(mktemp -d) || exit 97\ntrap 'rm -rf \"$T\"' EXIT\n{PRELUDE}\nprintf '%s READY\\n' \"$M\"\n"
        ));
        let ready = async {
            stdin
                .write_all(bootstrap.as_bytes())
                .await
                .map_err(|err| err.to_string())?;
            stdin.flush().await.map_err(|err| err.to_string())?;
            read_until_ready(&mut stdout, &marker).await
        };
        let outcome = tokio::time::timeout(ready_within, ready).await;
        let failure = match outcome {
            Ok(Ok(rest)) => {
                let session = ShellSession {
                    stdin: tokio::sync::Mutex::new(Some(stdin)),
                    pending: Arc::new(Mutex::new(VecDeque::new())),
                    lost: Arc::new(Mutex::new(None)),
                    child: Mutex::new(child),
                    stderr_tail,
                    marker,
                    reset: Default::default(),
                };
                session.start_reader(stdout, rest);
                return Ok(session);
            }
            Ok(Err(reason)) => reason,
            Err(_) => format!(
                "no answer within {}",
                humantime::format_duration(ready_within)
            ),
        };
        kill_group(&mut child);
        let _ = tokio::time::timeout(Duration::from_secs(2), stderr_done).await;
        let tail = String::from_utf8_lossy(&stderr_tail.lock().expect("stderr lock"))
            .trim()
            .to_string();
        Err(if tail.is_empty() { failure } else { tail })
    }

    /// Runs compiled op snippets in order, stopping at the first failure; one frame per snippet.
    pub async fn run(&self, snippets: &[String], check_mode: bool) -> Result<Vec<Frame>, String> {
        if snippets.is_empty() {
            return Ok(Vec::new());
        }
        // Each snippet becomes the body of `gr_op`, called in the session shell itself (no
        // subshell); "would change" (`gr_s=w`) is a success.
        let mut batch = format!("gr_ok=1; GR_CHECK={}\n", u8::from(check_mode));
        for snippet in snippets {
            batch.push_str(&format!(
                "if [ $gr_ok = 1 ]; then gr_s=; gr_changed=; gr_op() {{\n{snippet}\n}}\n\
                 gr_op </dev/null 2>\"$T/e\"; gr_rc=$?; [ \"$gr_s\" = w ] && gr_rc=0; [ $gr_rc = 0 ] || gr_ok=0\n\
                 else gr_rc=-; gr_s=; : >\"$T/e\"; fi\n\
                 printf '\\n%s R %s %s\\n' \"$M\" \"$gr_rc\" \"$gr_s\"; [ -s \"$T/e\" ] && cat \"$T/e\"; printf '\\n%s E\\n' \"$M\"\n",
            ));
        }
        let (reply, answer) = oneshot::channel();
        {
            let mut stdin = self.stdin.lock().await;
            if let Some(reason) = self.lost.lock().expect("lost lock").clone() {
                return Err(reason);
            }
            let Some(pipe) = stdin.as_mut() else {
                return Err("the session is closed".into());
            };
            // Queue before writing, under the stdin lock: frames come back in write order.
            self.pending
                .lock()
                .expect("pending lock")
                .push_back(Pending {
                    frames: snippets.len(),
                    reply,
                });
            if let Err(err) = pipe.write_all(batch.as_bytes()).await {
                drop(stdin);
                return Err(self.fail(format!("cannot write to the host: {err}")));
            }
        }
        answer.await.unwrap_or_else(|_| Err(self.lost_reason()))
    }

    /// Kills the shell (after a timeout its state is unknown); pending requests fail.
    pub fn kill(&self, reason: &str) {
        self.reset.store(true, std::sync::atomic::Ordering::SeqCst);
        self.fail(reason.to_string());
        kill_group(&mut self.child.lock().expect("child lock"));
    }

    /// Whether graphrun killed the shell (as opposed to the host or network dropping it).
    pub fn was_reset(&self) -> bool {
        self.reset.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Whether the shell is gone.
    pub fn is_lost(&self) -> bool {
        self.lost.lock().expect("lost lock").is_some()
    }

    /// Ends the shell cleanly (its temp folder is removed by its exit trap).
    pub async fn close(&self) {
        self.stdin.lock().await.take();
        let wait = async {
            loop {
                if let Ok(Some(_)) | Err(_) = self.child.lock().expect("child lock").try_wait() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .is_err()
        {
            kill_group(&mut self.child.lock().expect("child lock"));
        }
    }

    fn lost_reason(&self) -> String {
        self.lost
            .lock()
            .expect("lost lock")
            .clone()
            .unwrap_or_else(|| "the connection was lost".into())
    }

    fn fail(&self, reason: String) -> String {
        fail_all(&self.pending, &self.lost, &self.stderr_tail, reason)
    }

    fn start_reader(&self, stdout: ChildStdout, initial: Vec<u8>) {
        let pending = self.pending.clone();
        let lost = self.lost.clone();
        let tail = self.stderr_tail.clone();
        let marker = self.marker.clone();
        tokio::spawn(async move {
            let reason = read_frames(stdout, initial, &marker, &pending).await;
            // Let the stderr collector catch the last words (ssh's reason for dropping).
            tokio::time::sleep(Duration::from_millis(50)).await;
            fail_all(&pending, &lost, &tail, reason);
        });
    }
}

/// Makes the kernel kill the shell's process (ssh, or the local `sh`) when graphrun dies, even
/// by SIGKILL, when no code of graphrun can stop it: a killed run leaves no ssh client behind.
/// The signal follows the thread that spawned the child; sessions are spawned from tokio's
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

/// Kills the shell and every process it started (a local `sleep` would outlive a killed `sh`).
fn kill_group(child: &mut Child) {
    if let Some(pid) = child.id() {
        // SAFETY: kill(2) with a negative pid signals that process group; the group was created
        // for this child by `process_group(0)`, so it holds only the shell and its descendants.
        unsafe {
            libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
        }
    }
    let _ = child.start_kill();
}

/// Records why the session is gone and fails every waiting request with it.
fn fail_all(
    pending: &Mutex<VecDeque<Pending>>,
    lost: &Mutex<Option<String>>,
    tail: &Mutex<Vec<u8>>,
    reason: String,
) -> String {
    let stderr = String::from_utf8_lossy(&tail.lock().expect("stderr lock"))
        .trim()
        .to_string();
    let reason = if stderr.is_empty() {
        reason
    } else {
        format!("{reason}: {stderr}")
    };
    let reason = lost
        .lock()
        .expect("lost lock")
        .get_or_insert(reason)
        .clone();
    for waiting in pending.lock().expect("pending lock").drain(..) {
        let _ = waiting.reply.send(Err(reason.clone()));
    }
    reason
}

/// Parses frames until the stream ends; returns why it ended.
async fn read_frames(
    mut stdout: ChildStdout,
    mut buffer: Vec<u8>,
    marker: &str,
    pending: &Mutex<VecDeque<Pending>>,
) -> String {
    let result_tag = format!("\n{marker} R ").into_bytes();
    let end_tag = format!("\n{marker} E\n").into_bytes();
    let mut frames = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut scanned = 0;
    loop {
        while let Some(frame) = take_frame(&mut buffer, &mut scanned, &result_tag, &end_tag) {
            frames.push(frame);
            let mut queue = pending.lock().expect("pending lock");
            if queue.front().is_some_and(|p| p.frames == frames.len()) {
                let done = queue.pop_front().expect("checked");
                let _ = done.reply.send(Ok(std::mem::take(&mut frames)));
            }
        }
        match stdout.read(&mut chunk).await {
            Ok(0) => return "the connection closed".into(),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(err) => return format!("reading from the host failed: {err}"),
        }
    }
}

/// Removes one complete frame from the front of `buffer`, if there is one. `scanned` is where
/// the search for the next result line resumes, so a large output is scanned once, not per read.
fn take_frame(
    buffer: &mut Vec<u8>,
    scanned: &mut usize,
    result_tag: &[u8],
    end_tag: &[u8],
) -> Option<Frame> {
    let Some(result_at) = find(buffer, result_tag, *scanned) else {
        *scanned = buffer.len().saturating_sub(result_tag.len());
        return None;
    };
    *scanned = result_at;
    let line_end = find(buffer, b"\n", result_at + result_tag.len())?;
    let end_at = find(buffer, end_tag, line_end + 1)?;
    let header =
        String::from_utf8_lossy(&buffer[result_at + result_tag.len()..line_end]).to_string();
    let mut fields = header.split(' ');
    let exit_code = fields.next().and_then(|code| code.parse().ok());
    let status = fields.next().unwrap_or("").to_string();
    let frame = Frame {
        exit_code,
        status,
        stdout: buffer[..result_at].to_vec(),
        stderr: buffer[line_end + 1..end_at].to_vec(),
    };
    buffer.drain(..end_at + end_tag.len());
    *scanned = 0;
    Some(frame)
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Reads until the prelude's READY line; returns what followed it.
async fn read_until_ready(stdout: &mut ChildStdout, marker: &str) -> Result<Vec<u8>, String> {
    let ready = format!("{marker} READY\n").into_bytes();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(at) = find(&buffer, &ready, 0) {
            return Ok(buffer.split_off(at + ready.len()));
        }
        match stdout.read(&mut chunk).await {
            Ok(0) => return Err("the connection closed before the shell started".into()),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// Keeps the last 8 KiB of the process's stderr (for error messages).
fn collect_stderr(
    mut stderr: tokio::process::ChildStderr,
    tail: Arc<Mutex<Vec<u8>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            let mut tail = tail.lock().expect("stderr lock");
            tail.extend_from_slice(&chunk[..n]);
            let excess = tail.len().saturating_sub(8192);
            tail.drain(..excess);
        }
    })
}

/// 128 random bits as hex, from the kernel.
pub fn random_hex() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom is readable");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
