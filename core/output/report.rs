//! The run report: one self-contained HTML page (a timeline per host, the critical path, each
//! node's ops, the recap) built from a run's events.
//!
//! The page is `report.html`, a template with its own CSS and JavaScript and nothing fetched
//! from elsewhere; graphrun only puts the events into it, so the page and `--output json` can
//! never disagree. Every `apply` keeps its events in `runs/<run id>/events.jsonl` beside its
//! log, so `graphrun report` can draw a run afterwards from the state file or an events file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::engine::state::{private_dir, write_private};
use crate::engine::{Event, Reporter};

const TEMPLATE: &str = include_str!("report.html");
const PLACEHOLDER: &str = "/*GRAPHRUN_EVENTS*/";
/// A run's events, beside its log.
const EVENTS_FILE: &str = "events.jsonl";

/// The report page for these events.
pub fn render(events: &[Value]) -> String {
    let json = serde_json::to_string(events).expect("events serialize");
    // `<` only occurs inside JSON strings, where `\u003c` means the same: no `</script>` in
    // the events can end the script element early.
    TEMPLATE.replace(PLACEHOLDER, &json.replace('<', "\\u003c"))
}

/// Writes the page to `path` and the events it was built from beside it
/// (`NAME.events.jsonl`), both 0600; returns the events file's path.
pub fn write(path: &Path, events: &[Value]) -> Result<PathBuf, String> {
    let beside = path.with_extension("events.jsonl");
    let lines: String = events.iter().map(|e| format!("{e}\n")).collect();
    for (target, bytes) in [(path, render(events)), (beside.as_path(), lines)] {
        write_private(target, bytes.as_bytes())
            .map_err(|err| format!("cannot write {}: {err}", target.display()))?;
    }
    Ok(beside)
}

/// Reads events from an events file (JSON lines), or from a state file: then the events of the
/// newest run recorded beside it.
pub fn read_events(input: &Path) -> Result<Vec<Value>, String> {
    let text = std::fs::read_to_string(input)
        .map_err(|err| format!("cannot read {}: {err}", input.display()))?;
    let is_state = serde_json::from_str::<Value>(&text)
        .is_ok_and(|v| v.get("nodes").is_some() && v.get("event").is_none());
    if is_state {
        let events = newest_run_events(input)?;
        return read_events(&events);
    }
    let mut events = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event: Value = serde_json::from_str(line).map_err(|err| {
            format!(
                "{}:{}:{}: not a graphrun event ({err}): give an events file \
                 (`--output json` lines, or runs/<run id>/{EVENTS_FILE}) or a state file",
                input.display(),
                number + 1,
                err.column()
            )
        })?;
        if event.get("event").is_none() {
            return Err(format!(
                "{}:{}:1: not a graphrun event (no `event` field)",
                input.display(),
                number + 1
            ));
        }
        events.push(event);
    }
    if events.is_empty() {
        return Err(format!("{}: no events in it", input.display()));
    }
    Ok(events)
}

/// `runs/<newest run id>/events.jsonl` in the state file's folder (run ids sort by time).
fn newest_run_events(state: &Path) -> Result<PathBuf, String> {
    let runs = state.with_file_name("runs");
    let newest = std::fs::read_dir(&runs)
        .map_err(|err| format!("cannot read {}: {err}", runs.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path().join(EVENTS_FILE)))
        .filter(|events| events.is_file())
        .max();
    newest.ok_or_else(|| {
        format!(
            "{}: no run with recorded events (each `apply` records them in {}/<run id>/{EVENTS_FILE})",
            state.display(),
            runs.display()
        )
    })
}

/// Passes events on to another reporter, streams them to the run's `events.jsonl` (when the
/// run has a log folder) and keeps them for a report when asked to.
pub struct Recorder {
    inner: Arc<dyn Reporter>,
    file: Mutex<Option<std::io::BufWriter<std::fs::File>>>,
    kept: Option<Mutex<Vec<Value>>>,
}

impl Recorder {
    /// Records for `inner`; `keep` keeps every event in memory for [`Recorder::events`].
    pub fn new(inner: Arc<dyn Reporter>, keep: bool) -> Self {
        Recorder {
            inner,
            file: Mutex::new(None),
            kept: keep.then(Default::default),
        }
    }

    /// The events kept so far (none unless made with `keep`).
    pub fn events(&self) -> Vec<Value> {
        self.kept
            .as_ref()
            .map(|kept| kept.lock().expect("events lock").clone())
            .unwrap_or_default()
    }

    fn open(log: &Path) -> Option<std::io::BufWriter<std::fs::File>> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = log.parent()?;
        private_dir(dir).ok()?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join(EVENTS_FILE))
            .ok()?;
        Some(std::io::BufWriter::new(file))
    }
}

impl Reporter for Recorder {
    fn event(&self, event: &Event) {
        self.inner.event(event);
        let mut file = self.file.lock().expect("events file lock");
        if let Event::RunStarted { log: Some(log), .. } = event {
            *file = Recorder::open(Path::new(log));
        }
        if file.is_none() && self.kept.is_none() {
            return;
        }
        let value = serde_json::to_value(event).expect("events serialize");
        if let Some(out) = file.as_mut() {
            let _ = writeln!(out, "{value}");
            if matches!(event, Event::RunFinished { .. }) {
                let _ = out.flush();
            }
        }
        drop(file);
        if let Some(kept) = &self.kept {
            kept.lock().expect("events lock").push(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_cannot_end_the_script_element() {
        let events = vec![serde_json::json!({"event": "x", "op": "</script><b>"})];
        let page = render(&events);
        assert!(!page.contains("</script><b>"));
        assert!(page.contains(r#""op":"\u003c/script>\u003cb>""#));
        assert!(!page.contains(PLACEHOLDER));
    }

    #[test]
    fn the_page_fetches_nothing() {
        for needle in ["http://", "https://", "src=", "href=", "@import", "url("] {
            assert!(!TEMPLATE.contains(needle), "{needle}");
        }
    }
}
