//! The run's artifacts: each (URL, checksum) made ready once however many nodes ask
//! (single flight), and the answer, good or bad, shared by all of them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use graphrun_plugin_api::{Checksum, Op};
use serde::Serialize;
use tokio::sync::OnceCell;

use super::cache::Cache;
use super::http::Http;
use super::location::{shown, Location};
use super::{sums, Settings};
use crate::engine::redact::Redactor;
use crate::engine::{Event, Reporter};
use crate::transport::upload::{self, Source};

/// Where a run's copy of an artifact came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Already in the cache: nothing downloaded.
    Cache,
    /// The `[artifacts]` folder.
    Folder,
    /// Downloaded (from the mirror, or upstream) in this run.
    Downloaded,
    /// `plan`: not cached, would be downloaded.
    ToDownload,
}

/// An artifact ready to upload (in `plan`, known by its checksum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// Its sha256 (lowercase hex).
    pub sha256: String,
    /// Its size (unknown in `plan` until it is downloaded).
    pub size: Option<u64>,
    /// The local file (in `plan`, where it would be cached).
    pub path: PathBuf,
    /// Where it came from.
    pub origin: Origin,
}

type Shared = Arc<OnceCell<Result<Ready, String>>>;

/// A run's artifacts.
pub struct Store {
    settings: Settings,
    cache: Result<Cache, String>,
    http: OnceLock<Result<Http, String>>,
    /// `apply` downloads; `plan` only looks.
    download: bool,
    reporter: Arc<dyn Reporter>,
    /// URLs in events pass through it (a plugin may build one from a secret parameter).
    redactor: Redactor,
    files: Mutex<HashMap<String, Shared>>,
}

impl Store {
    /// The artifacts of a run with these settings; `download` is false in `plan`.
    pub fn new(
        settings: &Settings,
        download: bool,
        reporter: Arc<dyn Reporter>,
        redactor: Redactor,
    ) -> Self {
        Store {
            cache: Cache::new(settings.cache.as_deref()),
            settings: settings.clone(),
            http: OnceLock::new(),
            download,
            reporter,
            redactor,
            files: Mutex::new(HashMap::new()),
        }
    }

    /// The upload sources of a node's artifact ops, each made ready (once per run).
    pub async fn sources(&self, ops: &[Op]) -> Result<Vec<Source>, String> {
        let mut found = Vec::new();
        for (index, op) in ops.iter().enumerate() {
            let Op::Artifact {
                url,
                checksum,
                path: target,
                ..
            } = op
            else {
                continue;
            };
            let ready = self.ready(url, checksum).await?;
            found.push(Source {
                index,
                path: ready.path,
                target: target.clone(),
                sha256: ready.sha256,
                size: ready.size.unwrap_or(0),
            });
        }
        Ok(found)
    }

    /// The artifact at the upstream `url`, verified by `checksum`.
    pub async fn ready(&self, url: &str, checksum: &Checksum) -> Result<Ready, String> {
        let key = format!("{url}\n{checksum:?}");
        let cell = self
            .files
            .lock()
            .expect("artifacts lock")
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_init(|| async {
            let ready = self.prepare(url, checksum).await?;
            self.reporter.event(&Event::ArtifactReady {
                url: self.redactor.redact(&shown(url)),
                sha256: ready.sha256.clone(),
                size_bytes: ready.size,
                origin: ready.origin,
            });
            Ok(ready)
        })
        .await
        .clone()
    }

    async fn prepare(&self, url: &str, checksum: &Checksum) -> Result<Ready, String> {
        let cache = self.cache.as_ref().map_err(Clone::clone)?;
        let sha256 = self.expected(cache, checksum).await?;
        let ready = self.find(cache, url, sha256).await?;
        // A checksum file's answer is kept only once a file has matched it: a wrong checksum
        // file, once fixed, is read again.
        if let Checksum::File { url, entry } = checksum {
            if ready.origin != Origin::ToDownload && cache.known_sum(url, entry).is_none() {
                cache.remember_sum(url, entry, &ready.sha256)?;
            }
        }
        Ok(ready)
    }

    /// The file with this sha256: cached, in the folder, or downloaded (in `plan`, not).
    async fn find(&self, cache: &Cache, url: &str, sha256: String) -> Result<Ready, String> {
        let location = self.settings.locate(url)?;
        if let Some(size) = cache.used(&sha256) {
            return Ok(Ready {
                path: cache.file(&sha256),
                size: Some(size),
                origin: Origin::Cache,
                sha256,
            });
        }
        match location {
            Location::Local(path) => {
                let file = path.clone();
                let (actual, size) = tokio::task::spawn_blocking(move || upload::hash_file(&file))
                    .await
                    .map_err(|err| err.to_string())?
                    .map_err(|err| {
                        format!(
                            "cannot read {} for {url}: {err} (the [artifacts] folder holds \
                             files as HOST/PATH of their upstream URL)",
                            path.display()
                        )
                    })?;
                verify(url, &path.display().to_string(), &sha256, &actual)?;
                Ok(Ready {
                    sha256,
                    size: Some(size),
                    path,
                    origin: Origin::Folder,
                })
            }
            Location::Remote(_) if !self.download => Ok(Ready {
                path: cache.file(&sha256),
                size: None,
                origin: Origin::ToDownload,
                sha256,
            }),
            Location::Remote(source) => {
                let temp = cache.temp()?;
                let mut file = tokio::fs::File::from_std(
                    temp.reopen()
                        .map_err(|err| format!("cannot write {}: {err}", temp.path().display()))?,
                );
                let progress = Progress::new(&self.redactor.redact(url), &*self.reporter);
                let (actual, size) = self
                    .http()?
                    .download(&source, &mut file, &|got, total| {
                        progress.report(got, total)
                    })
                    .await?;
                verify(url, &shown(&source), &sha256, &actual)?;
                Ok(Ready {
                    path: cache.keep(temp, &sha256)?,
                    size: Some(size),
                    origin: Origin::Downloaded,
                    sha256,
                })
            }
        }
    }

    /// The sha256 the artifact must have: pinned, remembered from an earlier run, or read
    /// from its checksum file (fetched through the same mirror or folder as artifacts).
    async fn expected(&self, cache: &Cache, checksum: &Checksum) -> Result<String, String> {
        let (url, entry) = match checksum {
            Checksum::Sha256(hex) if sums::is_sha256(hex) => return Ok(hex.to_ascii_lowercase()),
            Checksum::Sha256(hex) => {
                return Err(format!("`{hex}` is not a sha256 (64 hexadecimal digits)"))
            }
            Checksum::File { url, entry } => (url, entry),
        };
        if let Some(known) = cache.known_sum(url, entry) {
            return Ok(known);
        }
        let text = match self.settings.locate(url)? {
            Location::Local(path) => tokio::fs::read_to_string(&path)
                .await
                .map_err(|err| format!("cannot read {} for {url}: {err}", path.display()))?,
            Location::Remote(source) => self.http()?.text(&source).await?,
        };
        sums::find(&text, entry).map_err(|err| format!("checksum file {}: {err}", shown(url)))
    }

    /// The HTTP client, started on first use (a run without downloads sets up no TLS).
    fn http(&self) -> Result<&Http, String> {
        self.http
            .get_or_init(Http::new)
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// A mismatch is an error (never a warning): nothing is uploaded.
fn verify(url: &str, from: &str, expected: &str, actual: &str) -> Result<(), String> {
    if expected == actual {
        return Ok(());
    }
    Err(format!(
        "checksum mismatch for {} (read from {from}): expected sha256 {expected}, got {actual}; \
         nothing was uploaded",
        shown(url)
    ))
}

/// Reports a download's progress at every 5% (every 8 MiB when the size is not announced).
struct Progress<'a> {
    url: String,
    reporter: &'a dyn Reporter,
    last: std::sync::atomic::AtomicU64,
}

impl<'a> Progress<'a> {
    fn new(url: &str, reporter: &'a dyn Reporter) -> Self {
        Progress {
            url: shown(url),
            reporter,
            last: Default::default(),
        }
    }

    fn report(&self, received: u64, size: Option<u64>) {
        use std::sync::atomic::Ordering;
        let step = size.map_or(8 << 20, |size| size.div_ceil(20).max(1));
        let mark = received / step;
        let done = size == Some(received);
        if self.last.swap(mark, Ordering::Relaxed) != mark || done {
            self.reporter.event(&Event::ArtifactProgress {
                url: self.url.clone(),
                received_bytes: received,
                size_bytes: size,
            });
        }
    }
}
