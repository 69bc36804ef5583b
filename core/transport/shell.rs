//! A long-lived POSIX shell on a host, driven over its stdin/stdout.
//!
//! A shell runs batch after batch of ops, from whichever nodes of its host send them (see
//! `pool.rs`): no new process, session or handshake per op, and batches queued behind each
//! other travel as one stream (no round trip between them), which is what keeps graphrun near
//! the cost of plain shell commands. Each op answers with a frame
//! `STDOUT \n MARKER R rc status \n STDERR \n MARKER E \n`, where MARKER is a random string
//! per session that user output cannot forge by accident.
//!
//! Each batch is guarded by a *claim*: before running it, the shell creates an empty file on
//! the host whose path names the batch, failing if it exists (`set -C`, i.e. `O_EXCL`). A
//! batch that waited too long behind another node's op is sent to a second shell as well; the
//! claim makes exactly one of the two run it, and the other answers with one "skipped" frame.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graphrun_plugin_api::shell::quote;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::batch::{Answer, Queue, Request, SKIPPED};
use super::process::{Handle, Input, Output, Process};
use super::script::PRELUDE;

/// Chooses where the shell keeps its temporary files (each op's stderr, content to compare,
/// each batch's claim) and sets `T` to their common prefix: `${T}NAME` is FOLDER/MARKER.NAME.
/// FOLDER is in memory, private to the user (/dev/shm/graphrun-UID, mode 0700, made by the
/// first session and afterwards only checked, with builtins): a file on a disk filesystem
/// costs a journalled inode (it showed in the hosts' CPU time), a folder per session a process.
/// A folder of that name that is not the user's own is never used; then `mktemp -d`.
/// `R` is the prefix of the run's marks of edited files, shared by its shells on the host
/// (with `mktemp`, a shell's own); the shell that made a mark removes it on exit.
const TEMP_FILES: &str = r#"gr_uid=
while read -r gr_k gr_v gr_rest; do [ "$gr_k" = Uid: ] && { gr_uid=$gr_v; break; }; done 2>/dev/null </proc/self/status
gr_dir=/dev/shm/graphrun-$gr_uid
[ -z "$gr_uid" ] || [ -d "$gr_dir" ] || mkdir -m 700 "$gr_dir" 2>/dev/null
gr_marks=
if [ -n "$gr_uid" ] && [ -d "$gr_dir" ] && [ ! -L "$gr_dir" ] && [ -O "$gr_dir" ]; then
  T=$gr_dir/$M.; R=$gr_dir/$GR_RUN.; trap 'rm -f "$T"* $gr_marks' EXIT
else
  T=$(mktemp -d) || exit 97; T=$T/; R=$T; trap 'rm -rf "$T"' EXIT
fi
"#;

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

/// A shell process and the batches it owes answers for.
pub struct ShellSession {
    stdin: tokio::sync::Mutex<Option<Input>>,
    queue: Arc<Mutex<Queue>>,
    lost: Arc<Mutex<Option<String>>>,
    handle: Mutex<Option<Handle>>,
    stderr_tail: Arc<Mutex<Vec<u8>>>,
    marker: String,
    /// The prefix of the shell's temporary files on the host (see [`TEMP_FILES`]), which
    /// names the claims of batches first written to it.
    temp: String,
    /// The prefix of the run's marks of edited files on the host (`R` in [`TEMP_FILES`]).
    marks: String,
    claims: AtomicU64,
}

impl ShellSession {
    /// Takes over `process` (which must run a POSIX shell reading stdin), sends the prelude
    /// and waits until the shell answers. `first_line` is written before anything else (a sudo
    /// password read by `sudo -S`, never put on a command line). `run` names the run, the
    /// same for all its shells on the host: a file edited twice in one run keeps the backup
    /// of its version before the run (see `script.rs`).
    pub async fn open(
        process: Process,
        ready_within: Duration,
        first_line: Option<&str>,
        run: &str,
    ) -> Result<Self, String> {
        let Process {
            stdin,
            mut stdout,
            stderr,
            handle,
        } = process;
        let mut stdin = stdin.expect("a shell reads its commands from a pipe");
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let stderr_done = collect_stderr(stderr, stderr_tail.clone());
        let marker = format!("GRAPHRUN-{}", random_hex());
        let mut bootstrap = String::new();
        if let Some(line) = first_line {
            bootstrap.push_str(line);
            bootstrap.push('\n');
        }
        bootstrap.push_str(&format!(
            "M={marker}\nGR_RUN={run}\n{TEMP_FILES}{PRELUDE}\nprintf '%s READY %s\\n' \"$M\" \"$T\"\n"
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
            Ok(Ok((temp, rest))) => {
                let session = ShellSession {
                    stdin: tokio::sync::Mutex::new(Some(stdin)),
                    queue: Default::default(),
                    lost: Arc::new(Mutex::new(None)),
                    handle: Mutex::new(Some(handle)),
                    stderr_tail,
                    marker,
                    marks: marks_prefix(&temp, run),
                    temp,
                    claims: AtomicU64::new(0),
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
        handle.kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), stderr_done).await;
        let tail = String::from_utf8_lossy(&stderr_tail.lock().expect("stderr lock"))
            .trim()
            .to_string();
        Err(if tail.is_empty() { failure } else { tail })
    }

    /// Runs compiled op snippets in order, stopping at the first failure; one frame per snippet.
    pub async fn run(&self, snippets: &[String], check_mode: bool) -> Answer {
        if snippets.is_empty() {
            return Ok(Vec::new());
        }
        let (request, answer) = Request::new(snippets, check_mode);
        self.submit(&request).await?;
        answer.await.unwrap_or_else(|_| Err(self.lost_reason()))
    }

    /// Queues `request` behind the batches this shell already owes (its answer goes to the
    /// request's receiver). Fails only when the shell is gone.
    pub async fn submit(&self, request: &Arc<Request>) -> Result<(), String> {
        let mut stdin = self.stdin.lock().await;
        if let Some(reason) = self.lost.lock().expect("lost lock").clone() {
            return Err(reason);
        }
        let Some(pipe) = stdin.as_mut() else {
            return Err("the session is closed".into());
        };
        let claim = request
            .claim
            .lock()
            .expect("claim lock")
            .get_or_insert_with(|| {
                let number = self.claims.fetch_add(1, Ordering::Relaxed);
                format!("{}q{number}", self.temp)
            })
            .clone();
        let text = format!(
            "if gr_claim {}; then\n{}else printf '\\n%s R - {SKIPPED}\\n\\n%s E\\n' \"$M\" \"$M\"; fi\n",
            quote(&claim),
            request.text
        );
        // Queue before writing, under the stdin lock: frames come back in write order.
        self.queue.lock().expect("queue lock").push(request.clone());
        if let Err(err) = pipe.write_all(text.as_bytes()).await {
            drop(stdin);
            return Err(self.fail(format!("cannot write to the host: {err}")));
        }
        Ok(())
    }

    /// Where `request` is in this shell's queue (0: running), if this shell holds it.
    pub fn position(&self, request: &Arc<Request>) -> Option<usize> {
        let queue = self.queue.lock().expect("queue lock");
        queue.batches.iter().position(|r| Arc::ptr_eq(r, request))
    }

    /// How many batches the shell owes (the running one included).
    pub fn load(&self) -> usize {
        self.queue.lock().expect("queue lock").batches.len()
    }

    /// Since when the batch at the front has been running.
    pub fn front_since(&self) -> Option<Instant> {
        self.queue.lock().expect("queue lock").front_since
    }

    /// How long its batches typically run (a moving average; `None` before the first answer).
    pub fn typical(&self) -> Option<Duration> {
        self.queue.lock().expect("queue lock").typical
    }

    /// Kills the shell (its state is unknown, e.g. after a timeout); pending requests fail.
    pub fn kill(&self, reason: &str) {
        self.fail(reason.to_string());
        self.stop();
    }

    /// Kills the shell like [`ShellSession::kill`], but hands back the batches it still owed
    /// (that no other shell holds) instead of failing them, so they can go to another shell.
    pub fn abandon(&self, reason: &str) -> Vec<Arc<Request>> {
        self.lost
            .lock()
            .expect("lost lock")
            .get_or_insert_with(|| reason.to_string());
        let owed: Vec<Arc<Request>> = self
            .queue
            .lock()
            .expect("queue lock")
            .batches
            .drain(..)
            .collect();
        self.stop();
        owed.into_iter()
            .filter(|request| request.release() && !request.is_answered())
            .collect()
    }

    /// The prefix of the shell's temporary files on the host.
    #[cfg(test)]
    pub(super) fn temp_prefix(&self) -> &str {
        &self.temp
    }

    /// Whether the shell is gone.
    pub fn is_lost(&self) -> bool {
        self.lost.lock().expect("lost lock").is_some()
    }

    /// Whether the shell is alive and owes no answer.
    pub fn is_idle(&self) -> bool {
        !self.is_lost() && self.load() == 0
    }

    /// Ends the shell cleanly (its temporary files are removed by its exit trap).
    pub async fn close(&self) {
        self.stdin.lock().await.take();
        let handle = self.handle.lock().expect("handle lock").take();
        if let Some(handle) = handle {
            handle.wait(Duration::from_secs(5)).await;
        }
    }

    fn stop(&self) {
        if let Some(handle) = self.handle.lock().expect("handle lock").take() {
            let local = matches!(handle, Handle::Local(_));
            handle.kill();
            // A killed shell runs no exit trap; a remote one is only cut off from its input
            // and still does, a local one is gone at once: graphrun removes its files, and
            // the run's marks with them (a later edit of a marked file makes one more backup).
            if local {
                remove_temp_files(&self.temp);
                remove_temp_files(&self.marks);
            }
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
        fail_all(&self.queue, &self.lost, &self.stderr_tail, reason)
    }

    fn start_reader(&self, stdout: Output, initial: Vec<u8>) {
        let queue = self.queue.clone();
        let lost = self.lost.clone();
        let tail = self.stderr_tail.clone();
        let marker = self.marker.clone();
        tokio::spawn(async move {
            let reason = read_frames(stdout, initial, &marker, &queue).await;
            // Let the stderr collector catch the last words (ssh's reason for dropping).
            tokio::time::sleep(Duration::from_millis(50)).await;
            fail_all(&queue, &lost, &tail, reason);
        });
    }
}

impl Drop for ShellSession {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `R` as [`TEMP_FILES`] sets it, given `T`.
fn marks_prefix(temp: &str, run: &str) -> String {
    match temp.rsplit_once('/') {
        Some((folder, name)) if !name.is_empty() => format!("{folder}/{run}."),
        _ => temp.to_string(),
    }
}

/// Removes the files of a shell on this machine that start with `prefix` (its temporary
/// files, or the run's marks; see [`TEMP_FILES`]).
fn remove_temp_files(prefix: &str) {
    use std::os::unix::ffi::OsStrExt;
    if prefix.ends_with('/') {
        let _ = std::fs::remove_dir_all(prefix);
        return;
    }
    let path = std::path::Path::new(prefix);
    let (Some(folder), Some(stem)) = (path.parent(), path.file_name()) else {
        return;
    };
    for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        if entry.file_name().as_bytes().starts_with(stem.as_bytes()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Records why the session is gone and fails every batch it owed that no other shell holds.
fn fail_all(
    queue: &Mutex<Queue>,
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
    let owed: Vec<Arc<Request>> = queue
        .lock()
        .expect("queue lock")
        .batches
        .drain(..)
        .collect();
    for request in owed {
        if request.release() {
            request.answer(Err(reason.clone()));
        }
    }
    reason
}

/// Parses frames until the stream ends; returns why it ended.
async fn read_frames(
    mut stdout: Output,
    mut buffer: Vec<u8>,
    marker: &str,
    queue: &Mutex<Queue>,
) -> String {
    let result_tag = format!("\n{marker} R ").into_bytes();
    let end_tag = format!("\n{marker} E\n").into_bytes();
    let mut frames = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut scanned = 0;
    loop {
        while let Some(frame) = take_frame(&mut buffer, &mut scanned, &result_tag, &end_tag) {
            let mut queue = queue.lock().expect("queue lock");
            let Some(front) = queue.batches.front().cloned() else {
                continue;
            };
            if frames.is_empty() && frame.status == SKIPPED {
                // Another shell claimed it and answers for it.
                queue.pop(false);
                if front.release() {
                    front.answer(Err("the shell that ran the batch was lost".into()));
                }
                continue;
            }
            frames.push(frame);
            if frames.len() == front.frames {
                queue.pop(true);
                front.release();
                front.answer(Ok(std::mem::take(&mut frames)));
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

/// Reads until the prelude's READY line; returns the prefix of the shell's temporary files (named on that
/// line) and what followed the line.
async fn read_until_ready(stdout: &mut Output, marker: &str) -> Result<(String, Vec<u8>), String> {
    let ready = format!("{marker} READY ").into_bytes();
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(at) = find(&buffer, &ready, 0) {
            if let Some(end) = find(&buffer, b"\n", at) {
                let temp = String::from_utf8_lossy(&buffer[at + ready.len()..end]).into_owned();
                return Ok((temp, buffer.split_off(end + 1)));
            }
        }
        match stdout.read(&mut chunk).await {
            Ok(0) => return Err("the connection closed before the shell started".into()),
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// Keeps the last 8 KiB of the process's stderr (for error messages).
pub(super) fn collect_stderr(
    mut stderr: Output,
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
