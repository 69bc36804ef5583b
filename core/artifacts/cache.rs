//! The artifact cache on the control machine: files named by their sha256 (so a file is
//! verified once, when it arrives, and any URL with the same content shares it), and the
//! sha256 each checksum file gave (so a cached artifact needs no network at all).
//!
//! ```text
//! CACHE/sha256/<hex>            the files (0600, in 0700 folders)
//! CACHE/sums/<sha256 of URL>    the hash a checksum file at URL gave for an entry
//! CACHE/tmp/                    downloads in progress
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

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

    /// The size of the cached file with this sha256, if it is cached.
    pub fn size(&self, sha256: &str) -> Option<u64> {
        std::fs::metadata(self.file(sha256))
            .ok()
            .filter(|meta| meta.is_file())
            .map(|meta| meta.len())
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn files_and_sums_are_kept_private_under_their_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(&dir.path().join("c"))).unwrap();
        let sum = "a".repeat(64);
        assert_eq!(cache.size(&sum), None);
        let mut temp = cache.temp().unwrap();
        temp.write_all(b"hello").unwrap();
        let kept = cache.keep(temp, &sum).unwrap();
        assert_eq!(kept, dir.path().join("c/sha256").join(&sum));
        assert_eq!(cache.size(&sum), Some(5));
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
}
