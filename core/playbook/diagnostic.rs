//! Errors a user can act on: file, line, column, the source line with a marker, and a hint.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A file the diagnostics point into.
#[derive(Debug)]
pub struct Source {
    /// Path as the user gave it.
    pub path: PathBuf,
    /// Whole text.
    pub text: String,
}

impl Source {
    /// Wraps a file's text.
    pub fn new(path: &Path, text: String) -> Arc<Self> {
        Arc::new(Source {
            path: path.to_path_buf(),
            text,
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, self.text[line_start..offset].chars().count() + 1)
    }
}

/// One problem in the input.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where: the file and byte range, when known.
    pub location: Option<(Arc<Source>, Range<usize>)>,
    /// Text under the marker.
    pub label: String,
    /// What to do about it.
    pub help: Option<String>,
    /// Other places in the same file that explain this one (a first definition…), each with
    /// the text under its marker.
    pub related: Vec<(Range<usize>, String)>,
    /// An error stops the run; a warning is only printed.
    pub severity: Severity,
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The input is invalid: nothing runs.
    Error,
    /// Probably a mistake, but the input can run.
    Warning,
}

impl Diagnostic {
    /// A problem at `span` of `source`.
    pub fn at(source: &Arc<Source>, span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location: Some((source.clone(), span)),
            label: String::new(),
            help: None,
            related: Vec::new(),
            severity: Severity::Error,
        }
    }

    /// A problem not tied to a place in a file (a file that cannot be read…).
    pub fn general(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location: None,
            label: String::new(),
            help: None,
            related: Vec::new(),
            severity: Severity::Error,
        }
    }

    /// Makes it a warning: printed, but the input still runs.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Points at another place of the same file, with `label` under it.
    pub fn related(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    /// Sets the text under the marker.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets the hint.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds "did you mean `X`?" when one of `candidates` is close to `found`.
    pub fn suggest<'a>(self, found: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match closest(found, candidates) {
            Some(best) => self.label(format!("did you mean `{best}`?")),
            None => self,
        }
    }

    /// `file:line:col`, or nothing.
    pub fn position(&self) -> Option<String> {
        self.location.as_ref().map(|(source, span)| {
            let (line, col) = source.line_col(span.start);
            format!("{}:{line}:{col}", source.path.display())
        })
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{level}: {}", self.message)?;
        // Cargo's layout: the gutter is as wide as the largest line number shown.
        let mut gutter = 1;
        if let Some((source, span)) = &self.location {
            let (line, col) = source.line_col(span.start);
            let mut marks = vec![(span.clone(), '^', self.label.as_str())];
            marks.extend(
                self.related
                    .iter()
                    .map(|(s, l)| (s.clone(), '-', l.as_str())),
            );
            marks.sort_by_key(|(span, _, _)| span.start);
            gutter = marks
                .iter()
                .map(|(span, _, _)| source.line_col(span.start).0.to_string().len())
                .max()
                .unwrap_or(1);
            writeln!(
                f,
                "{:gutter$}--> {}:{line}:{col}",
                "",
                source.path.display()
            )?;
            writeln!(f, "{:gutter$} |", "")?;
            for (span, marker, label) in marks {
                write_marked_line(f, source, &span, marker, label, gutter)?;
            }
        }
        if let Some(help) = &self.help {
            writeln!(f, "{:gutter$} = help: {help}", "")?;
        }
        Ok(())
    }
}

/// One source line and, under it, `marker` characters below `span` followed by `label`.
fn write_marked_line(
    f: &mut fmt::Formatter<'_>,
    source: &Source,
    span: &Range<usize>,
    marker: char,
    label: &str,
    gutter: usize,
) -> fmt::Result {
    let (line, col) = source.line_col(span.start);
    let text = source.text.lines().nth(line - 1).unwrap_or("");
    let width = source.text[span.clone()]
        .lines()
        .next()
        .map_or(1, |first| first.chars().count().max(1));
    writeln!(f, "{line:>gutter$} | {text}")?;
    let under = format!(
        "{}{} {label}",
        " ".repeat(col - 1),
        marker.to_string().repeat(width)
    );
    writeln!(f, "{:gutter$} | {}", "", under.trim_end())
}

/// The candidate closest to `found` by edit distance, if it is close enough to be a typo.
pub fn closest<'a>(found: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(found, candidate), candidate))
        // Close enough to be a typo, and not a whole rewrite of a short name (`x` → `a`).
        .filter(|(distance, candidate)| {
            *distance <= (candidate.len().max(found.len()) / 3).max(1)
                && *distance < found.chars().count()
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring characters (the commonest typo) each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_position_line_marker_and_hint() {
        let source = Source::new(Path::new("p.toml"), "[steps.a]\nneds = []\n".into());
        let diagnostic = Diagnostic::at(&source, 10..14, "unknown key `neds`")
            .suggest("neds", ["needs", "on"])
            .help("remove it");
        assert_eq!(
            diagnostic.to_string(),
            "error: unknown key `neds`\n --> p.toml:2:1\n  |\n2 | neds = []\n  | ^^^^ did you mean `needs`?\n  = help: remove it\n"
        );
    }

    #[test]
    fn suggests_only_close_names() {
        assert_eq!(closest("comand", ["command", "file"]), Some("command"));
        assert_eq!(closest("docker", ["command", "file"]), None);
        assert_eq!(
            closest("x", ["a", "b"]),
            None,
            "a one-letter name is not a typo"
        );
        assert_eq!(
            closest("wbe", ["web", "db"]),
            Some("web"),
            "a swap is one typo"
        );
    }
}
