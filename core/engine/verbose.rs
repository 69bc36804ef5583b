//! `-v`: the shell text of each op a node runs, on stderr, secrets redacted.

use graphrun_plugin_api::{Op, Target};

use super::redact::Redactor;
use crate::transport::script;

/// Prints each op's shell text. The op is redacted before it is compiled, so a secret cannot
/// slip out quoted or encoded; an upload's content is left out (it may be a large binary).
pub(super) fn show_ops(redactor: &Redactor, node: &str, ops: &[Op]) {
    for (index, op) in ops.iter().enumerate() {
        let text = match op {
            Op::Upload { .. } | Op::Artifact { .. } => {
                "(an upload: its content is not shown)".to_string()
            }
            _ if op.target() == Target::Cluster => "(through the Kubernetes API)".to_string(),
            _ => redacted(redactor, op)
                .and_then(|op| script::compile(&op, None, false))
                .unwrap_or_else(|err| format!("(cannot show: {err})")),
        };
        eprintln!(
            "{node} op {index}: {}\n{}",
            redactor.redact(&op.summary()),
            indent(&text)
        );
    }
}

fn redacted(redactor: &Redactor, op: &Op) -> Result<Op, String> {
    let json = serde_json::to_value(op).map_err(|err| err.to_string())?;
    serde_json::from_value(redactor.redact_json(&json)).map_err(|err| err.to_string())
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use graphrun_plugin_api::Run;

    #[test]
    fn secrets_are_gone_before_the_shell_text_is_made() {
        let redactor = Redactor::new(&["it's secret".to_string()]);
        let op = Op::check(Run::Shell("echo \"it's secret\"".into()));
        let shown = script::compile(&redacted(&redactor, &op).unwrap(), None, false).unwrap();
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
