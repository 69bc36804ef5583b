//! One `apply` at a time per state folder.
//!
//! Two runs of the same playbook would both run every step (a non-idempotent command twice) and
//! both write the state file. `apply` therefore holds an exclusive `flock` on
//! `.graphrun/<playbook>/lock` for its whole run; the file names the holder (pid, host, start
//! time) so a refused run can say who holds it. The kernel drops the flock when its process
//! dies, however it dies (even SIGKILL), so a stale lock never blocks anyone; the holder's
//! details left in the file let the next run say whose lock it takes over. `plan` takes no lock.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::state;

/// Who holds (or held) a lock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    /// Process id.
    pub pid: u32,
    /// Host name of the control machine it runs on.
    pub host: String,
    /// When it took the lock (RFC 3339).
    pub started_at: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {}, started {}",
            self.pid, self.host, self.started_at
        )
    }
}

/// A held lock; released (and its holder record cleared) when dropped.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    /// The holder whose lock was taken over: that run ended without releasing it.
    pub taken_over: Option<Holder>,
}

impl StateLock {
    /// Takes the lock of a state folder at once, or says who holds it.
    pub fn acquire(data_dir: &Path) -> Result<StateLock, String> {
        state::private_dir(data_dir)
            .map_err(|err| format!("cannot create {}: {err}", data_dir.display()))?;
        let path = data_dir.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|err| format!("cannot open {}: {err}", path.display()))?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(refusal(&path, read_holder(&mut file).ok().flatten()));
        }
        let taken_over = read_holder(&mut file).ok().flatten();
        let me = Holder {
            pid: std::process::id(),
            host: host_name(),
            started_at: state::now(),
        };
        let record = serde_json::to_vec(&me).expect("holder serializes");
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(&record))
            .and_then(|()| file.sync_all())
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        Ok(StateLock { file, taken_over })
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // An empty file means "released cleanly"; closing the file drops the flock.
        let _ = self.file.set_len(0);
    }
}

fn refusal(path: &Path, holder: Option<Holder>) -> String {
    let who = holder.map_or("another graphrun (just starting)".to_string(), |h| {
        format!("another graphrun ({h})")
    });
    format!(
        "{who} is applying this playbook and holds {}: wait for it to finish (or stop it), then run again",
        path.display()
    )
}

fn read_holder(file: &mut File) -> std::io::Result<Option<Holder>> {
    let mut text = String::new();
    file.rewind()?;
    file.read_to_string(&mut text)?;
    Ok(serde_json::from_str(&text).ok())
}

fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer outlives the call and its length is passed.
    let rc = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if rc != 0 {
        return "unknown host".into();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}
