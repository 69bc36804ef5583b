//! Showing a run: progress and recap for people, JSON lines for programs; the DAG as a picture.

pub mod graph;
mod human;
pub mod report;
pub mod style;

use std::io::Write;

pub use human::Human;

use crate::engine::{Event, Reporter};

/// `1 host`, `2 hosts`.
pub fn plural(count: usize, word: &str) -> String {
    format!("{count} {word}{}", if count == 1 { "" } else { "s" })
}

/// A size in MiB with one decimal, as graphrun prints sizes.
pub fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1048576.0)
}

/// One JSON object per line on stdout (`--output json`); see the README for the fields.
pub struct JsonLines;

impl Reporter for JsonLines {
    fn event(&self, event: &Event) {
        let line = serde_json::to_string(event).expect("events serialize");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}
