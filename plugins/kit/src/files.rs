//! Edits of existing system files.

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Op, Run};

/// Suffix of the one backup kept of a system file graphrun edits.
pub const BACKUP_SUFFIX: &str = ".graphrun-backup";

/// Copies `path` to `path.graphrun-backup` (keeping mode and owner) just before an edit: one
/// backup, the file as it was before graphrun's latest change. Plan it only with an edit.
pub fn backup(path: &str) -> Op {
    Op::command(Run::Shell(format!(
        "cp -p {} {}",
        quote(path),
        quote(&format!("{path}{BACKUP_SUFFIX}"))
    )))
}
