//! What an op does to a file, as people read it: a unified diff of the content the host has
//! and the content the op leaves, or a one-line summary for binary and large files.

use graphrun_plugin_api::Op;
use similar::TextDiff;

use super::redact::Redactor;
use crate::transport::script::{parse_diff, Contents, DIFF_LIMIT};

/// The diff an op reported in its stdout (ops compiled with `diff`), if it reported one.
pub fn of_op(op: &Op, stdout: &[u8], redactor: &Redactor) -> Option<String> {
    let path = match op {
        Op::File { path, .. }
        | Op::Upload { path, .. }
        | Op::Artifact { path, .. }
        | Op::Line { path, .. }
        | Op::Replace { path, .. }
        | Op::Block { path, .. }
        | Op::Absent { path } => path,
        _ => return None,
    };
    parse_diff(stdout).map(|contents| describe(path, &contents, redactor))
}

/// A unified diff with three lines of context (`--- PATH (before)`, `+++ PATH (after)`).
/// Both contents are redacted before they are compared: a secret of several lines would
/// otherwise reach the diff cut into lines that no longer match it.
pub fn describe(path: &str, contents: &Contents, redactor: &Redactor) -> String {
    match contents {
        Contents::TooLarge { before, after } => redactor.redact(&format!(
            "large file {path}: {before} → {after} bytes (no diff above {} KiB)",
            DIFF_LIMIT / 1024
        )),
        Contents::Both { before, after } => match (text(before), text(after)) {
            (Some(old), Some(new)) => {
                let (old, new) = (redactor.redact(old), redactor.redact(new));
                let diff = TextDiff::from_lines(&old, &new)
                    .unified_diff()
                    .context_radius(3)
                    .header(&format!("{path} (before)"), &format!("{path} (after)"))
                    .to_string();
                redactor.redact(&diff)
            }
            _ => redactor.redact(&format!(
                "binary file {path}: {} → {} bytes",
                before.len(),
                after.len()
            )),
        },
    }
}

/// Text if it is UTF-8 without NUL bytes (what a diff can show).
fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|t| !t.contains('\0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(before: &str, after: &str) -> Contents {
        Contents::Both {
            before: before.into(),
            after: after.into(),
        }
    }

    fn none() -> Redactor {
        Redactor::default()
    }

    #[test]
    fn a_secret_of_several_lines_is_hidden_whole() {
        let key = "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----\n";
        let redactor = Redactor::new(&[key.to_string()]);
        let diff = describe("/k", &both("old\n", &format!("old\n{key}")), &redactor);
        assert_eq!(diff, "--- /k (before)\n+++ /k (after)\n@@ -1 +1,2 @@\n old\n+***\n\\ No newline at end of file\n");
    }

    #[test]
    fn text_changes_are_a_unified_diff() {
        let diff = describe("/etc/x", &both("a\nb\nc\n", "a\nB\nc\n"), &none());
        assert_eq!(
            diff,
            "--- /etc/x (before)\n+++ /etc/x (after)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
    }

    #[test]
    fn binary_and_large_files_are_summarised() {
        let binary = Contents::Both {
            before: vec![0, 1, 2],
            after: vec![0, 1],
        };
        assert_eq!(
            describe("/bin/x", &binary, &none()),
            "binary file /bin/x: 3 → 2 bytes"
        );
        let large = Contents::TooLarge {
            before: 10,
            after: 100_000,
        };
        assert_eq!(
            describe("/big", &large, &none()),
            "large file /big: 10 → 100000 bytes (no diff above 64 KiB)"
        );
    }

    #[test]
    fn other_ops_and_plain_output_have_no_diff() {
        assert_eq!(of_op(&Op::file("/x", "y"), b"hello", &none()), None);
        let stdout = b"GRAPHRUN-DIFF 2 3\nabxyz";
        assert_eq!(
            of_op(
                &Op::check(graphrun_plugin_api::Run::Shell("x".into())),
                stdout,
                &none()
            ),
            None
        );
        assert!(of_op(&Op::file("/x", "xyz"), stdout, &none())
            .unwrap()
            .contains("-ab"));
    }
}
