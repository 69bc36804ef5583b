//! The control machine's executor: what plugins may read on this machine (a manifest step's
//! YAML files), relative to the playbook's folder. Plugins never read files themselves: the
//! engine reads them and hands the content over as a probe's answer.

use graphrun_plugin_api::ProbeResult;

use crate::engine::run::RunContext;

/// Reads a file: exit code 0 and its content, or 1 and why it cannot be read.
pub(super) async fn read_file(cx: &RunContext, path: &str) -> ProbeResult {
    // `join` keeps an absolute path as it is.
    let full = cx.playbook.dir().join(path);
    match tokio::fs::read_to_string(&full).await {
        Ok(content) => ProbeResult {
            exit_code: 0,
            stdout: content,
            stderr: String::new(),
        },
        Err(err) => ProbeResult {
            exit_code: 1,
            stdout: String::new(),
            stderr: format!("cannot read {}: {err}", full.display()),
        },
    }
}
