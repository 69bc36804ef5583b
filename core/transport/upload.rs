//! Uploads travel over the connection, not through a shell's text stream. For one node: the
//! host's checksums of all its upload targets in one round trip, before any byte is sent;
//! then each source whose checksum the target lacks is streamed (never held in memory) in a
//! session of its own to a temporary file beside its target, and its sha256 is checked on
//! the host. The op itself then moves it into place (`gr_place`, in order with the node's
//! other ops). A transfer cut off midway fails that check and its file is removed: the target
//! is never half-written.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Op, Run};
use sha2::{Digest, Sha256};
use std::io::Seek;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::OnceCell;

use super::process::{Input, Process};
use super::script::Arrival;
use super::{Lease, RunError, Session};

/// `gr_sha256 <FILE` prints FILE's sha256 (then more words). OpenSSL's digest uses the CPU's
/// SHA instructions where coreutils' `sha256sum` does not: about five times less CPU on the
/// host for a large upload (0.05 s against 0.28 s per 100 MB on the lab hosts).
const SHA256: &str = "gr_sha256() { if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r; else sha256sum; fi; }";

/// Bytes per read (hashing a file, copying it through a pipe).
const CHUNK: usize = 256 * 1024;

/// How often a transfer's progress is looked at.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Hears how far an upload got: its source, the bytes reported before and those sent now.
pub type Progress<'a> = dyn Fn(&Source, u64, u64) + Sync + 'a;

/// A local file to upload, for the op at `index` of a node.
#[derive(Debug, Clone)]
pub struct Source {
    /// The op's index among the node's ops.
    pub index: usize,
    /// The local file.
    pub path: PathBuf,
    /// Where it goes on the host.
    pub target: String,
    /// Its sha256 (hex).
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A local file's sha256 and size, or why it could not be read.
type Checksum = Result<(String, u64), String>;

/// Local files' checksums and sizes, each computed once per run however many hosts get it.
#[derive(Default)]
pub struct Checksums(Mutex<HashMap<PathBuf, Arc<OnceCell<Checksum>>>>);

impl Checksums {
    async fn of(&self, path: &Path) -> Checksum {
        let cell = self
            .0
            .lock()
            .expect("checksums lock")
            .entry(path.to_path_buf())
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            let file = path.to_path_buf();
            tokio::task::spawn_blocking(move || hash_file(&file))
                .await
                .map_err(|err| err.to_string())?
                .map_err(|err| format!("cannot read {}: {err}", path.display()))
        })
        .await
        .clone()
    }
}

/// The sources of a node's upload ops, resolved from `base` and hashed (reading each file
/// in chunks, once per run); a declared sha256 that does not match refuses the upload.
pub async fn sources(
    base: &Path,
    ops: &[Op],
    checksums: &Checksums,
) -> Result<Vec<Source>, String> {
    let mut found = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        let Op::Upload {
            source,
            path: target,
            sha256: expected,
            ..
        } = op
        else {
            continue;
        };
        let path = base.join(source);
        let (sha256, size) = checksums.of(&path).await?;
        if let Some(expected) = expected {
            if !sha256.eq_ignore_ascii_case(expected) {
                return Err(format!(
                    "{} has sha256 {sha256}, expected {expected}: refusing to upload it",
                    path.display()
                ));
            }
        }
        found.push(Source {
            index,
            path,
            target: target.clone(),
            sha256,
            size,
        });
    }
    Ok(found)
}

/// A local file's sha256 (hex) and size, read in chunks.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; CHUNK];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
        size += n as u64;
    }
    let digest = hasher.finalize();
    Ok((digest.iter().map(|b| format!("{b:02x}")).collect(), size))
}

/// Gets each source to its host (in plan mode, only looks): where each upload's content is
/// when its op runs. `progress` hears how far each transfer got, a few times a second.
pub async fn stage(
    lease: &Lease,
    sources: &[Source],
    check_mode: bool,
    progress: &Progress<'_>,
) -> Result<HashMap<usize, Arrival>, RunError> {
    if sources.is_empty() {
        return Ok(HashMap::new());
    }
    // Simulated hosts hold whatever they are asked to.
    if let Session::Memory(_) = &**lease {
        return Ok(sources
            .iter()
            .map(|s| (s.index, Arrival::InPlace))
            .collect());
    }
    let present = host_checksums(lease, sources).await?;
    let mut arrivals = HashMap::new();
    for (source, on_host) in sources.iter().zip(present) {
        let arrival = if on_host.eq_ignore_ascii_case(&source.sha256) {
            Arrival::InPlace
        } else if check_mode {
            Arrival::NotSent
        } else {
            match send(lease, source, progress).await {
                Ok(temp) => Arrival::Staged(temp),
                Err(err) => {
                    discard(lease, &arrivals).await;
                    return Err(err);
                }
            }
        };
        arrivals.insert(source.index, arrival);
    }
    Ok(arrivals)
}

/// Removes staged files that no op moved into place (an earlier op of the node failed).
pub async fn discard(lease: &Lease, arrivals: &HashMap<usize, Arrival>) {
    let temps: Vec<String> = arrivals
        .values()
        .filter_map(|a| match a {
            Arrival::Staged(temp) => Some(quote(temp)),
            _ => None,
        })
        .collect();
    if !temps.is_empty() {
        let op = Op::check(Run::Shell(format!("rm -f {}", temps.join(" "))));
        let _ = lease.run(&[op], &HashMap::new(), false, false).await;
    }
}

/// The sha256 of each target on the host (`-` when it is not a regular file), one round trip.
async fn host_checksums(lease: &Lease, sources: &[Source]) -> Result<Vec<String>, RunError> {
    let targets: Vec<String> = sources.iter().map(|s| quote(&s.target)).collect();
    let script = format!(
        "{SHA256}\nfor p in {}; do if [ -f \"$p\" ]; then s=$(gr_sha256 <\"$p\") && echo \"${{s%% *}}\" || echo -; else echo -; fi; done",
        targets.join(" ")
    );
    let frames = lease
        .run(
            &[Op::check(Run::Shell(script))],
            &HashMap::new(),
            false,
            false,
        )
        .await?;
    let stdout = frames
        .first()
        .map(|f| String::from_utf8_lossy(&f.stdout).into_owned())
        .unwrap_or_default();
    let sums: Vec<String> = stdout.lines().map(str::to_string).collect();
    if sums.len() != sources.len() {
        return Err(RunError::Invalid(format!(
            "the host did not report the checksums of the upload targets: {stdout:?}"
        )));
    }
    Ok(sums)
}

/// Streams one source to a new temporary file beside its target; returns that file's path.
async fn send(lease: &Lease, source: &Source, progress: &Progress<'_>) -> Result<String, RunError> {
    let script = format!(
        "{SHA256}\np={p}; d=${{p%/*}}; [ -d \"$d\" ] || mkdir -p \"$d\" || exit 1\n\
         t=$(mktemp \"$d/.${{p##*/}}.graphrun-XXXXXX\") || exit 1\n\
         cat >\"$t\"; s=$(gr_sha256 <\"$t\"); s=${{s%% *}}\n\
         [ \"$s\" = {sha} ] || {{ rm -f \"$t\"; echo \"the file arrived incomplete or changed (sha256 $s)\" >&2; exit 1; }}\n\
         printf '%s\\n' \"$t\"",
        p = quote(&source.target),
        sha = source.sha256,
    );
    let unreadable = |err: std::io::Error| {
        RunError::Invalid(format!("cannot read {}: {err}", source.path.display()))
    };
    let file = std::fs::File::open(&source.path).map_err(unreadable)?;
    // A second descriptor of the same open file: its offset is how far the reader got.
    let position = file.try_clone().map_err(unreadable)?;
    let (process, to_copy) = lease
        .spawn_script_reading(&script, file)
        .await
        .map_err(RunError::Unreachable)?;
    let Process {
        stdin,
        mut stdout,
        mut stderr,
        handle,
    } = process;
    let copy = async {
        match (to_copy, stdin) {
            (Some(file), Some(input)) => copy_through(file, input).await,
            _ => Ok(()),
        }
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let transfer = async {
        tokio::join!(
            copy,
            stdout.read_to_end(&mut out),
            stderr.read_to_end(&mut err)
        )
        .0
    };
    let written = watch(transfer, &position, source, progress).await;
    let code = handle.wait(Duration::from_secs(60)).await;
    let reason = String::from_utf8_lossy(&err).trim().to_string();
    let temp = String::from_utf8_lossy(&out).trim().to_string();
    match (written, code) {
        (Ok(()), Some(0)) if !temp.is_empty() => Ok(temp),
        (Err(local), _) if reason.is_empty() => Err(RunError::Unreachable(local)),
        _ => Err(RunError::Invalid(format!(
            "upload of {} to {} failed: {reason}",
            source.path.display(),
            source.target
        ))),
    }
}

/// Copies `file` into a process's stdin pipe (after the sudo password it was sent first).
async fn copy_through(file: std::fs::File, mut input: Input) -> Result<(), String> {
    let mut file = tokio::io::BufReader::with_capacity(CHUNK, tokio::fs::File::from_std(file));
    tokio::io::copy_buf(&mut file, &mut input)
        .await
        .map_err(|err| format!("the transfer stopped: {err}"))?;
    input.shutdown().await.map_err(|err| err.to_string())
}

/// Runs `transfer`, telling `progress` every 100 ms how far the reader of `position`'s file
/// got, and once more at the end of a transfer that completed.
async fn watch<T>(
    transfer: impl std::future::Future<Output = Result<T, String>>,
    position: &std::fs::File,
    source: &Source,
    progress: &Progress<'_>,
) -> Result<T, String> {
    tokio::pin!(transfer);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    let mut reported = 0;
    loop {
        tokio::select! {
            done = &mut transfer => {
                if done.is_ok() && reported < source.size {
                    progress(source, reported, source.size);
                }
                return done;
            }
            _ = tick.tick() => {
                let mut reader = position;
                if let Ok(now) = reader.stream_position() {
                    if now > reported {
                        progress(source, reported, now);
                        reported = now;
                    }
                }
            }
        }
    }
}
