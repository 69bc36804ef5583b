//! The artifact cache on the control machine: files named by their sha256 (so a file is
//! verified once, when it arrives, and any URL with the same content shares it), and the
//! sha256 each checksum file gave (so a cached artifact needs no network at all).
//!
//! ```text
//! CACHE/sha256/<hex>            the files (0600, in 0700 folders)
//! CACHE/sums/<sha256 of URL>    the hash a checksum file at URL gave for an entry
//! CACHE/tmp/                    downloads in progress
//! ```
//!
//! A file's modification time is when a run last used it, so `graphrun cache prune` can remove
//! what no run has needed for a while (an RKE2 image archive is 800 MB a version).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::engine::state::{private_dir, write_private};

/// The cache folder.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache at `root`, or in the user's cache folder (`$XDG_CACHE_HOME` or
    /// `~/.cache`, then `graphrun/artifacts`).
    pub fn new(root: Option<&Path>) -> Result<Self, String> {
        let root = match root {
            Some(root) => root.to_path_buf(),
            None => std::env::var_os("XDG_CACHE_HOME")
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
                .ok_or("no cache folder: set HOME, or `cache` in [artifacts]")?
                .join("graphrun")
                .join("artifacts"),
        };
        Ok(Cache { root })
    }

    /// Where the file with this sha256 is (or would be) kept.
    pub fn file(&self, sha256: &str) -> PathBuf {
        self.root.join("sha256").join(sha256)
    }

    /// The size of the cached file with this sha256, if it is cached; the file counts as used
    /// now (see [`Cache::prune`]).
    pub fn used(&self, sha256: &str) -> Option<u64> {
        let path = self.file(sha256);
        let size = std::fs::metadata(&path)
            .ok()
            .filter(|meta| meta.is_file())
            .map(|meta| meta.len())?;
        // Best effort: a cache this user cannot write to still serves its files.
        let _ = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|file| file.set_modified(SystemTime::now()));
        Some(size)
    }

    /// Removes the files no run has used for `unused_for`, and downloads an interrupted run
    /// left as long ago; with `dry_run`, only says which. The checksums learnt stay (a few
    /// bytes each, they spare a checksum file's download).
    pub fn prune(&self, unused_for: Duration, dry_run: bool) -> Result<Prune, String> {
        let mut prune = Prune::default();
        for folder in ["sha256", "tmp"] {
            let dir = self.root.join(folder);
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(format!("cannot read {}: {err}", dir.display())),
            };
            for entry in entries {
                let path = entry
                    .map_err(|err| format!("cannot read {}: {err}", dir.display()))?
                    .path();
                let meta = std::fs::symlink_metadata(&path)
                    .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
                if !meta.is_file() {
                    continue;
                }
                let idle = meta
                    .modified()
                    .ok()
                    .and_then(|at| SystemTime::now().duration_since(at).ok())
                    .unwrap_or_default();
                if idle < unused_for {
                    prune.kept += meta.len();
                    continue;
                }
                if !dry_run {
                    std::fs::remove_file(&path)
                        .map_err(|err| format!("cannot remove {}: {err}", path.display()))?;
                }
                prune.removed.push(Removed {
                    path,
                    size: meta.len(),
                    idle,
                });
            }
        }
        Ok(prune)
    }

    /// The sha256 that the checksum file at `url` gave for `entry` in an earlier run.
    pub fn known_sum(&self, url: &str, entry: &str) -> Option<String> {
        let text = std::fs::read_to_string(self.sum_file(url, entry)).ok()?;
        let sum = text.trim();
        super::sums::is_sha256(sum).then(|| sum.to_string())
    }

    /// Remembers what the checksum file at `url` gave for `entry`.
    pub fn remember_sum(&self, url: &str, entry: &str, sha256: &str) -> Result<(), String> {
        let path = self.sum_file(url, entry);
        self.private(path.parent().expect("in sums/"))?;
        write_private(&path, sha256.as_bytes())
            .map_err(|err| format!("cannot write {}: {err}", path.display()))
    }

    /// A new file for a download in progress (removed when dropped, unless kept).
    pub fn temp(&self) -> Result<tempfile::NamedTempFile, String> {
        let dir = self.root.join("tmp");
        self.private(&dir)?;
        tempfile::NamedTempFile::new_in(&dir)
            .map_err(|err| format!("cannot create a file in {}: {err}", dir.display()))
    }

    /// Moves a verified download into place under its sha256.
    pub fn keep(&self, mut temp: tempfile::NamedTempFile, sha256: &str) -> Result<PathBuf, String> {
        let path = self.file(sha256);
        self.private(path.parent().expect("in sha256/"))?;
        temp.flush()
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
        temp.persist(&path)
            .map_err(|err| format!("cannot write {}: {}", path.display(), err.error))?;
        Ok(path)
    }

    /// Creates `dir` (and the cache root) private to this user.
    fn private(&self, dir: &Path) -> Result<(), String> {
        for dir in [&self.root, dir] {
            private_dir(dir).map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        }
        Ok(())
    }

    fn sum_file(&self, url: &str, entry: &str) -> PathBuf {
        let key = Sha256::digest(format!("{url}\n{entry}").as_bytes());
        let name: String = key.iter().map(|b| format!("{b:02x}")).collect();
        self.root.join("sums").join(name)
    }
}

/// What [`Cache::prune`] removed (or would remove) and kept.
#[derive(Debug, Default)]
pub struct Prune {
    /// The files removed.
    pub removed: Vec<Removed>,
    /// The bytes of the files kept.
    pub kept: u64,
}

/// One file [`Cache::prune`] removed.
#[derive(Debug)]
pub struct Removed {
    /// Where it was.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// How long no run had used it.
    pub idle: Duration,
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn files_and_sums_are_kept_private_under_their_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(&dir.path().join("c"))).unwrap();
        let sum = "a".repeat(64);
        assert_eq!(cache.used(&sum), None);
        let mut temp = cache.temp().unwrap();
        temp.write_all(b"hello").unwrap();
        let kept = cache.keep(temp, &sum).unwrap();
        assert_eq!(kept, dir.path().join("c/sha256").join(&sum));
        assert_eq!(cache.used(&sum), Some(5));
        cache
            .remember_sum("https://x.test/SUMS", "f", &sum)
            .unwrap();
        assert_eq!(
            cache.known_sum("https://x.test/SUMS", "f"),
            Some(sum.clone())
        );
        assert_eq!(cache.known_sum("https://x.test/SUMS", "g"), None);
        for folder in ["c", "c/sha256", "c/sums", "c/tmp"] {
            let mode = std::fs::metadata(dir.path().join(folder))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700, "{folder}");
        }
        let mode = std::fs::metadata(&kept).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the file is the user's only");
    }

    /// A cached file whose last use was `days` ago.
    fn cached(cache: &Cache, sha256: &str, bytes: &[u8], days: u64) -> PathBuf {
        let mut temp = cache.temp().unwrap();
        temp.write_all(bytes).unwrap();
        let path = cache.keep(temp, sha256).unwrap();
        last_touched(&path, days);
        path
    }

    /// Sets `path`'s modification time `days` ago.
    fn last_touched(path: &Path, days: u64) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(days * 86_400))
            .unwrap();
    }

    #[test]
    fn prune_removes_what_no_run_used_for_a_while_and_a_use_counts() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(dir.path())).unwrap();
        let (old, recent, reused) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
        let old_path = cached(&cache, &old, b"old", 40);
        let recent_path = cached(&cache, &recent, b"recent", 2);
        let reused_path = cached(&cache, &reused, b"reused!", 40);
        assert_eq!(cache.used(&reused), Some(7), "a run uses it today");
        let leftover = cache.temp().unwrap().into_temp_path().keep().unwrap();
        last_touched(&leftover, 40);
        cache
            .remember_sum("https://x.test/SUMS", "f", &old)
            .unwrap();
        let month = Duration::from_secs(30 * 86_400);

        let looked = cache.prune(month, true).unwrap();
        let listed: Vec<&PathBuf> = looked.removed.iter().map(|r| &r.path).collect();
        assert_eq!(listed.len(), 2, "{listed:?}");
        assert!(listed.contains(&&old_path) && listed.contains(&&leftover));
        assert!(old_path.exists(), "a dry run removes nothing");

        let pruned = cache.prune(month, false).unwrap();
        assert_eq!(pruned.removed.len(), 2);
        assert!(pruned.removed.iter().all(|r| r.idle >= month));
        assert_eq!(pruned.kept, 6 + 7);
        assert!(!old_path.exists() && !leftover.exists());
        assert!(recent_path.exists() && reused_path.exists());
        assert_eq!(cache.known_sum("https://x.test/SUMS", "f"), Some(old));
    }
}
