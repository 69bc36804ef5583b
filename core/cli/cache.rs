//! `graphrun cache prune`: removes the cached artifacts no run has used for a while.

use std::path::Path;
use std::time::Duration;

use super::paint_level;
use super::show::out;
use crate::artifacts::cache::Cache;
use crate::output::{mebibytes, plural};
use crate::playbook::Severity;

/// Removes (with `dry_run`, lists) the files of the cache at `root` (the user's cache folder
/// when `None`) that no run has used for `unused_for`.
pub(super) fn prune(root: Option<&Path>, unused_for: Duration, dry_run: bool) -> i32 {
    let prune = match Cache::new(root).and_then(|cache| cache.prune(unused_for, dry_run)) {
        Ok(prune) => prune,
        Err(message) => {
            eprintln!("{} {message}", paint_level(Severity::Error));
            return 1;
        }
    };
    let verb = if dry_run { "would remove" } else { "removed" };
    let mut text = String::new();
    for file in &prune.removed {
        text.push_str(&format!(
            "{verb} {} ({}, unused for {})\n",
            file.path.display(),
            mebibytes(file.size),
            age(file.idle)
        ));
    }
    let freed = prune.removed.iter().map(|file| file.size).sum();
    text.push_str(&format!(
        "{verb} {} ({}); {} kept\n",
        plural(prune.removed.len(), "file"),
        mebibytes(freed),
        mebibytes(prune.kept)
    ));
    out(&text)
}

/// Whole days, or hours under a day.
fn age(idle: Duration) -> String {
    let hours = idle.as_secs() / 3600;
    if hours >= 24 {
        plural((hours / 24) as usize, "day")
    } else {
        plural(hours as usize, "hour")
    }
}
