//! Artifacts on the control machine: every file an [`Op::Artifact`] names is found once per run
//! (single flight across nodes), from the content-addressed cache, the playbook's local folder,
//! its mirror or upstream, verified against its sha256, and handed to the upload machinery
//! (`transport::upload`) as a local source, which sends it only to hosts whose copy differs.
//!
//! - [`location`]: where an upstream URL is served (`[artifacts]` mirror or folder), and URLs
//!   as they may be shown (credentials hidden);
//! - [`sums`]: reading `sha256sum` files and lone hashes;
//! - [`cache`]: the content-addressed cache folder (0700);
//! - [`http`]: downloads, streamed to disk and hashed on the way;
//! - [`store`]: the run's single-flight store that ties them together.
//!
//! [`Op::Artifact`]: graphrun_plugin_api::Op::Artifact

pub mod cache;
pub mod http;
pub mod location;
pub mod store;
pub mod sums;

use std::path::PathBuf;

pub use store::{Origin, Ready, Store};

/// The playbook's `[artifacts]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// A mirror in upstream layout (`MIRROR/<upstream host>/<upstream path>`), over HTTP(S).
    pub mirror: Option<String>,
    /// A local folder in the same layout (air-gapped sites).
    pub dir: Option<PathBuf>,
    /// The cache folder; the user's cache folder (`~/.cache/graphrun/artifacts`) when unset.
    pub cache: Option<PathBuf>,
}
