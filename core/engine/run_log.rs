//! The log of one run's ops and their output.

use std::io::Write;
use std::sync::Mutex;

use graphrun_plugin_api::Op;

use super::exec::OpResult;
use super::redact::Redactor;
use super::state;

/// Per-run log: `.graphrun/<playbook>/runs/<run id>/ops.log`, every op of every node with its
/// output, secrets redacted. One file per run keeps large runs cheap (no file per host).
pub(super) struct RunLog {
    file: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl RunLog {
    pub(super) fn create(path: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(RunLog {
            file: Mutex::new(std::io::BufWriter::new(file)),
        })
    }

    pub(super) fn write(&self, redactor: &Redactor, node: &str, op: &Op, result: &OpResult) {
        let mut text = format!(
            "== {} {node} {:?} exit={} :: {}\n",
            state::now(),
            result.status,
            result.exit_code.map_or("-".into(), |c| c.to_string()),
            op.summary()
        );
        // A fetched file's content is not log material.
        let stdout = if matches!(op, Op::Fetch { .. }) {
            &[][..]
        } else {
            &result.stdout[..]
        };
        for (name, bytes) in [("stdout", stdout), ("stderr", &result.stderr[..])] {
            if !bytes.is_empty() {
                text.push_str(&format!(
                    "-- {name}\n{}\n",
                    String::from_utf8_lossy(bytes).trim_end()
                ));
            }
        }
        let _ = self
            .file
            .lock()
            .expect("log lock")
            .write_all(redactor.redact(&text).as_bytes());
    }

    pub(super) fn flush(&self) {
        let _ = self.file.lock().expect("log lock").flush();
    }
}
