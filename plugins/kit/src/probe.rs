//! Reading probe results and probing files, so a plugin plans only what differs.

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{PlanRequest, Probe, Run};

/// A probe's standard output (empty when the probe did not run).
pub fn stdout<'a>(request: &'a PlanRequest, name: &str) -> &'a str {
    request
        .probes
        .get(name)
        .map(|result| result.stdout.as_str())
        .unwrap_or_default()
}

/// Whether a probe ran and exited 0.
pub fn succeeded(request: &PlanRequest, name: &str) -> bool {
    request
        .probes
        .get(name)
        .is_some_and(|result| result.exit_code == 0)
}

/// A probe printing the file at `path` (exit code 1 and nothing when it does not exist).
pub fn file(name: &str, path: &str) -> Probe {
    Probe::run(name, Run::Shell(format!("cat {} 2>/dev/null", quote(path))))
}

/// The content a [`file()`] probe read, `None` when the file does not exist.
pub fn file_content<'a>(request: &'a PlanRequest, name: &str) -> Option<&'a str> {
    succeeded(request, name).then(|| stdout(request, name))
}
