//! Output for people: a progress line per host on a terminal (plain lines otherwise), what
//! `plan` would change, and a recap table with the failures at the end.

use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::style::{self, Paint};
use super::{mebibytes, plural};
use crate::engine::events::Origin;
use crate::engine::{Event, Mode, NodeStatus, OpStatus, Recap, Reporter, Transfer};

/// Hosts shown with a bar of their own; the rest share one summary bar.
const MAX_BARS: usize = 20;

/// Progress and recap on stdout.
pub struct Human {
    inner: Mutex<Inner>,
}

struct Inner {
    mode: Mode,
    bars: Option<MultiProgress>,
    host_bars: HashMap<String, ProgressBar>,
    overflow: Option<ProgressBar>,
    /// A bar per artifact being downloaded, by URL.
    downloads: HashMap<String, ProgressBar>,
    failures: Vec<(String, String)>,
    /// Warnings of read-only checks that passed, by node (shown under the recap).
    warnings: Vec<(String, String)>,
    /// The run log, named with failures (it has every op's whole output).
    log: Option<String>,
    /// Per node, the ops that change (would change) something, with their diffs.
    changes: BTreeMap<String, Vec<(String, Option<String>)>>,
}

impl Human {
    /// Bars when stdout is a terminal and NO_COLOR is unset; plain lines otherwise.
    pub fn new() -> Self {
        let fancy = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none()
            && !style::quiet();
        Human {
            inner: Mutex::new(Inner {
                mode: Mode::Apply,
                bars: fancy.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
                host_bars: HashMap::new(),
                overflow: None,
                downloads: HashMap::new(),
                failures: Vec::new(),
                warnings: Vec::new(),
                changes: BTreeMap::new(),
                log: None,
            }),
        }
    }
}

impl Default for Human {
    fn default() -> Self {
        Self::new()
    }
}

impl Inner {
    fn line(&self, text: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(text);
            }
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
            }
        }
    }

    /// A line that `-q` leaves out.
    fn say(&self, text: &str) {
        if !style::quiet() {
            self.line(text);
        }
    }

    fn bar_for(&self, host: &str) -> Option<&ProgressBar> {
        self.host_bars.get(host).or(self.overflow.as_ref())
    }
}

impl Reporter for Human {
    fn event(&self, event: &Event) {
        let mut inner = self.inner.lock().expect("output lock");
        match event {
            Event::RunStarted {
                mode,
                hosts,
                playbook,
                log,
                ..
            } => {
                inner.mode = *mode;
                inner.log = log.clone();
                let verb = if *mode == Mode::Plan {
                    "planning"
                } else {
                    "applying"
                };
                let total: usize = hosts.values().sum();
                inner.say(&format!(
                    "{verb} {playbook}: {} on {}",
                    plural(total, "node"),
                    plural(hosts.len(), "host")
                ));
                if let Some(bars) = inner.bars.clone() {
                    let style = ProgressStyle::with_template(
                        "{prefix:<16} [{pos}/{len}] {elapsed:>4} {msg}",
                    )
                    .expect("valid template");
                    for (index, (host, count)) in hosts.iter().enumerate() {
                        if index < MAX_BARS {
                            let bar = bars.add(
                                ProgressBar::new(*count as u64)
                                    .with_style(style.clone())
                                    .with_prefix(host.clone()),
                            );
                            bar.enable_steady_tick(Duration::from_millis(250));
                            inner.host_bars.insert(host.clone(), bar);
                        }
                    }
                    if hosts.len() > MAX_BARS {
                        let rest: usize = hosts.values().skip(MAX_BARS).sum();
                        let prefix = format!("+{} hosts", hosts.len() - MAX_BARS);
                        inner.overflow = Some(
                            bars.add(
                                ProgressBar::new(rest as u64)
                                    .with_style(style)
                                    .with_prefix(prefix),
                            ),
                        );
                    }
                }
            }
            Event::NodeStarted {
                step,
                host,
                attempt,
                ..
            } => {
                if let Some(bar) = inner.bar_for(host) {
                    let retry = if *attempt > 1 {
                        format!(" (attempt {attempt})")
                    } else {
                        String::new()
                    };
                    bar.set_message(format!("{step}{retry}"));
                }
            }
            Event::UploadProgress {
                node,
                host,
                path,
                sent_bytes,
                size_bytes,
            } => {
                if let Some(bar) = inner.bar_for(host) {
                    let percent = sent_bytes * 100 / (*size_bytes).max(1);
                    bar.set_message(format!("{node}: uploading {path} {percent}%"));
                }
            }
            Event::ArtifactProgress {
                url,
                received_bytes,
                size_bytes,
            } => {
                if let Some(bars) = inner.bars.clone() {
                    let bar = inner.downloads.entry(url.clone()).or_insert_with(|| {
                        let style = ProgressStyle::with_template(
                            "downloading {msg} {bytes}/{total_bytes} {bytes_per_sec}",
                        )
                        .expect("valid template");
                        bars.add(
                            ProgressBar::new(0)
                                .with_style(style)
                                .with_message(url.clone()),
                        )
                    });
                    bar.set_length(size_bytes.unwrap_or(*received_bytes));
                    bar.set_position(*received_bytes);
                }
            }
            Event::ArtifactReady {
                url,
                size_bytes,
                origin,
                ..
            } => {
                if let Some(bar) = inner.downloads.remove(url) {
                    bar.finish_and_clear();
                }
                let whence = match origin {
                    Origin::Cache => "in the cache".to_string(),
                    Origin::Folder => "from the artifacts folder".to_string(),
                    Origin::Downloaded => {
                        format!("downloaded ({})", mebibytes(size_bytes.unwrap_or(0)))
                    }
                    Origin::ToDownload => "to download".to_string(),
                };
                inner.say(&format!("artifact {url}: {whence}"));
            }
            Event::WaitProgress {
                node, host, seen, ..
            } => {
                if let Some(bar) = inner.bar_for(host) {
                    bar.set_message(format!("{node}: waiting, {seen}"));
                }
            }
            Event::OpFinished {
                node,
                op,
                status,
                diff,
                stderr,
                transfer,
                ..
            } => {
                if let (OpStatus::Ok, Some(lines)) = (status, stderr) {
                    inner.warnings.push((node.clone(), lines.clone()));
                }
                // `plan` lists every op that would change (and every file it would upload or
                // finds on the host already); `apply --diff` the changes it made.
                let listed = *status == OpStatus::WouldChange
                    || (*status == OpStatus::Changed && diff.is_some())
                    || (inner.mode == Mode::Plan && transfer.is_some());
                if listed {
                    let text = match transfer {
                        Some(Transfer::Present) => format!("= {op} (on the host already)"),
                        Some(Transfer::ToSend) => format!("~ {op} (to upload)"),
                        _ => format!("~ {op}"),
                    };
                    inner
                        .changes
                        .entry(node.clone())
                        .or_default()
                        .push((text, diff.clone()));
                }
            }
            Event::NodeFinished {
                node,
                host,
                status,
                duration_ms,
                queued_ms,
                error,
                ..
            } => {
                if let Some(bar) = inner.bar_for(host) {
                    bar.inc(1);
                }
                // Blocked, cancelled and interrupted nodes did not fail: the recap counts them.
                if let Some(error) = error {
                    if matches!(status, NodeStatus::Failed | NodeStatus::Unreachable) {
                        inner.failures.push((node.clone(), error.clone()));
                    }
                }
                // On a terminal the bars show progress; what changed or failed stays above
                // them, as cargo keeps its "Compiling" lines.
                let show = inner.bars.is_none()
                    || matches!(
                        status,
                        NodeStatus::Changed
                            | NodeStatus::WouldChange
                            | NodeStatus::Failed
                            | NodeStatus::Unreachable
                            | NodeStatus::Interrupted
                    );
                if show {
                    let seconds = *duration_ms as f64 / 1000.0;
                    let word = format!("{:<12}", status.word());
                    let mut text =
                        format!("{} {node} ({seconds:.2}s", paint_status(&word, *status));
                    // Scheduling itself takes a few milliseconds; a wait for a slot shows.
                    if *queued_ms >= 100 {
                        text.push_str(&format!(", queued {:.2}s", *queued_ms as f64 / 1000.0));
                    }
                    text.push(')');
                    if let (Some(error), true) = (error, inner.bars.is_some()) {
                        text.push_str(&format!(": {}", first_line(error)));
                    }
                    inner.say(&text);
                }
                for (op, diff) in inner.changes.remove(node).unwrap_or_default() {
                    inner.say(&format!("    {op}"));
                    if let Some(diff) = diff {
                        inner.say(&indented_diff(&diff));
                    }
                }
            }
            Event::RunFinished {
                recap,
                exit_code,
                duration_ms,
            } => {
                for bar in inner.host_bars.values().chain(inner.overflow.iter()) {
                    bar.finish_and_clear();
                }
                let report = recap_table(inner.mode, recap);
                inner.line(&report);
                for (node, lines) in &inner.warnings {
                    inner.line(&format!(
                        "{} {node}:\n  {}",
                        style::paint("WARNING", Paint::Yellow),
                        lines.replace('\n', "\n  ")
                    ));
                }
                for (node, error) in &inner.failures {
                    inner.line(&format!(
                        "{} {node}:\n  {}",
                        style::paint("FAILED", Paint::Red),
                        error.replace('\n', "\n  ")
                    ));
                }
                if let (Some(log), false) = (&inner.log, inner.failures.is_empty()) {
                    inner.line(&format!("every op's whole output: {log}"));
                }
                let seconds = *duration_ms as f64 / 1000.0;
                let verdict = match (exit_code, inner.mode) {
                    (0, _) => format!("done in {seconds:.2}s"),
                    (130, Mode::Apply) => format!(
                        "interrupted after {seconds:.2}s: state saved; run apply again to resume"
                    ),
                    (130, Mode::Plan) => format!("interrupted after {seconds:.2}s"),
                    (_, Mode::Apply) => format!(
                        "failed after {seconds:.2}s: fix the cause and run apply again to resume"
                    ),
                    (_, Mode::Plan) => {
                        format!("failed after {seconds:.2}s: fix the cause and run plan again")
                    }
                };
                inner.line(&verdict);
            }
        }
    }
}

/// A diff indented under its op; in colour, removals red, additions green, hunks yellow.
fn indented_diff(diff: &str) -> String {
    let lines = diff.trim_end_matches('\n').lines().map(|line| {
        let paint = match line.as_bytes().first() {
            _ if line.starts_with("--- ") || line.starts_with("+++ ") => None,
            Some(b'-') => Some(Paint::Red),
            Some(b'+') => Some(Paint::Green),
            Some(b'@') => Some(Paint::Yellow),
            _ => None,
        };
        let line = paint.map_or_else(|| line.to_string(), |paint| style::paint(line, paint));
        format!("      {line}")
    });
    lines.collect::<Vec<_>>().join("\n")
}

/// A status word (already padded) in its colour.
fn paint_status(word: &str, status: NodeStatus) -> String {
    match status {
        NodeStatus::Changed | NodeStatus::WouldChange => style::paint(word, Paint::Yellow),
        NodeStatus::Failed | NodeStatus::Unreachable | NodeStatus::Interrupted => {
            style::paint(word, Paint::Red)
        }
        _ => word.to_string(),
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The recap: one row per host (and an `interrupted` column after Ctrl-C).
pub fn recap_table(mode: Mode, recap: &BTreeMap<String, Recap>) -> String {
    let width = recap.keys().map(String::len).max().unwrap_or(4).max(4);
    let interrupted = recap.values().any(|r| r.interrupted > 0);
    let mut out = String::from("\nRECAP\n");
    let middle = if mode == Mode::Plan {
        "would_change"
    } else {
        "changed"
    };
    out.push_str(&format!(
        "{:<width$}  {:>5}  {:>12}  {:>7}  {:>6}  {:>11}  {:>7}",
        "host", "ok", middle, "skipped", "failed", "unreachable", "blocked"
    ));
    if interrupted {
        out.push_str("  interrupted");
    }
    out.push('\n');
    for (host, r) in recap {
        let changed = if mode == Mode::Plan {
            r.would_change
        } else {
            r.changed
        };
        out.push_str(&format!(
            "{host:<width$}  {:>5}  {:>12}  {:>7}  {:>6}  {:>11}  {:>7}",
            r.ok, changed, r.skipped, r.failed, r.unreachable, r.blocked
        ));
        if interrupted {
            out.push_str(&format!("  {:>11}", r.interrupted));
        }
        out.push('\n');
    }
    for (host, r) in recap.iter().filter(|(_, r)| !r.once.is_empty()) {
        let steps: Vec<String> = r.once.iter().map(|id| format!("`{id}`")).collect();
        out.push_str(&format!(
            "once on {host} (one node for all its hosts): {}\n",
            steps.join(", ")
        ));
    }
    out
}
