//! Tests: ui. What people read (diagnostics, progress lines, the recap), snapshotted as cargo's
//! UI tests do, so a regression in wording or layout shows up as a diff. Temporary folders
//! become `[ROOT]` and durations `[ELAPSED]`. `SNAPSHOTS=overwrite cargo test --test integration
//! ui::` rewrites the expected text in place after a deliberate change.

mod cli;
mod diagnostics;
mod run;

use std::path::Path;
use std::process::{Command, Output};

use crate::support::TempPlaybook;

/// `graphrun ARGS…` in `dir`, with colours and terminals out of the picture.
fn graphrun(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("graphrun runs")
}

/// Exit code, stdout and stderr as one text, redacted.
fn transcript(dir: &Path, output: &Output) -> String {
    let text = format!(
        "exit {}\n--- stdout\n{}--- stderr\n{}",
        output
            .status
            .code()
            .map_or("signal".into(), |c| c.to_string()),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    redact(&text, dir)
}

/// `graphrun validate playbook.toml` on `text`: its transcript.
fn validate(text: &str) -> String {
    let playbook = TempPlaybook::new(text);
    let output = graphrun(playbook.dir.path(), &["validate", "playbook.toml"]);
    transcript(playbook.dir.path(), &output)
}

/// The folder becomes `[ROOT]`, a run's id `[RUN]`, `1.25s` `[ELAPSED]`.
fn redact(text: &str, root: &Path) -> String {
    let mut text = text.replace(&root.display().to_string(), "[ROOT]");
    while let Some(start) = text.find("/runs/2") {
        let id = start + "/runs/".len();
        let end = text[id..].find('/').map_or(text.len(), |i| id + i);
        text.replace_range(id..end, "[RUN]");
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let (before, from) = rest.split_at(start);
        out.push_str(before);
        let digits = from.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let number = &from[..from.len() - digits.len()];
        let preceded_by_word = before.ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if number.contains('.') && digits.starts_with('s') && !preceded_by_word {
            out.push_str("[ELAPSED]");
            rest = &digits[1..];
        } else {
            out.push_str(number);
            rest = digits;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn redaction_hides_folders_and_durations_only() {
    assert_eq!(
        redact(
            "/tmp/x/a.toml done in 0.25s (1.5s) v1.2 3s",
            Path::new("/tmp/x")
        ),
        "[ROOT]/a.toml done in [ELAPSED] ([ELAPSED]) v1.2 3s"
    );
}
