//! What an op does to a file, as people read it: a unified diff of the content the host has
//! and the content the op leaves, or a one-line summary for binary and large files.

use graphrun_plugin_api::Op;
use similar::TextDiff;

use crate::transport::script::{parse_diff, Contents, DIFF_LIMIT};

/// The diff an op reported in its stdout (ops compiled with `diff`), if it reported one.
pub fn of_op(op: &Op, stdout: &[u8]) -> Option<String> {
    let path = match op {
        Op::File { path, .. }
        | Op::Upload { path, .. }
        | Op::Line { path, .. }
        | Op::Replace { path, .. }
        | Op::Block { path, .. }
        | Op::Absent { path } => path,
        _ => return None,
    };
    parse_diff(stdout).map(|contents| describe(path, &contents))
}

/// A unified diff with three lines of context (`--- PATH (before)`, `+++ PATH (after)`).
pub fn describe(path: &str, contents: &Contents) -> String {
    match contents {
        Contents::TooLarge { before, after } => format!(
            "large file {path}: {before} → {after} bytes (no diff above {} KiB)",
            DIFF_LIMIT / 1024
        ),
        Contents::Both { before, after } => match (text(before), text(after)) {
            (Some(old), Some(new)) => TextDiff::from_lines(old, new)
                .unified_diff()
                .context_radius(3)
                .header(&format!("{path} (before)"), &format!("{path} (after)"))
                .to_string(),
            _ => format!(
                "binary file {path}: {} → {} bytes",
                before.len(),
                after.len()
            ),
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

    #[test]
    fn text_changes_are_a_unified_diff() {
        let diff = describe("/etc/x", &both("a\nb\nc\n", "a\nB\nc\n"));
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
            describe("/bin/x", &binary),
            "binary file /bin/x: 3 → 2 bytes"
        );
        let large = Contents::TooLarge {
            before: 10,
            after: 100_000,
        };
        assert_eq!(
            describe("/big", &large),
            "large file /big: 10 → 100000 bytes (no diff above 64 KiB)"
        );
    }

    #[test]
    fn other_ops_and_plain_output_have_no_diff() {
        assert_eq!(of_op(&Op::file("/x", "y"), b"hello"), None);
        let stdout = b"GRAPHRUN-DIFF 2 3\nabxyz";
        assert_eq!(
            of_op(
                &Op::check(graphrun_plugin_api::Run::Shell("x".into())),
                stdout
            ),
            None
        );
        assert!(of_op(&Op::file("/x", "xyz"), stdout)
            .unwrap()
            .contains("-ab"));
    }
}
