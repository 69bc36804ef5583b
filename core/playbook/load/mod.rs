//! Reads playbook and inventory TOML into a [`Playbook`], collecting every error with its span.

use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{check, uploads};
use super::{Diagnostic, Playbook, Source};
use crate::plugins::Registry;

mod inventory;
mod steps;
mod text;

use inventory::{with_group_tables, Settings, CONNECTION_KEYS};

const PLAYBOOK_KEYS: [&str; 6] = ["vars", "defaults", "hosts", "groups", "plugins", "steps"];
const INVENTORY_KEYS: [&str; 3] = ["defaults", "hosts", "groups"];

/// Loads and validates a playbook (and optional inventory file), loading the custom plugins it
/// names into `registry`. Returns every problem found, or a playbook that is safe to run.
pub fn load(
    path: &Path,
    inventory: Option<&Path>,
    registry: &mut Registry,
) -> Result<Playbook, Vec<Diagnostic>> {
    let mut loader = Loader::default();
    let playbook = loader.parse_file(path);
    let inventory = inventory.map(|p| loader.parse_file(p));
    let (Some(playbook), Some(inventory)) =
        (playbook, inventory.unwrap_or(Some(Document::empty())))
    else {
        return Err(in_file_order(loader.diagnostics));
    };
    loader.check_top_level(&playbook, &PLAYBOOK_KEYS);
    loader.check_top_level(&inventory, &INVENTORY_KEYS);

    let mut defaults = Settings::default();
    for document in [&inventory, &playbook] {
        if let Some((_, table)) = loader.table_at(document, document.get("defaults"), "defaults") {
            loader.read_settings(document, table, &CONNECTION_KEYS, &mut defaults);
        }
    }
    let vars = playbook
        .get("vars")
        .and_then(|v| loader.table_at(&playbook, Some(v), "vars"))
        .map(|(_, table)| loader.json_table(&playbook, table))
        .unwrap_or_default();
    let hosts = loader.read_hosts(&[&inventory, &playbook], &defaults);
    let groups = loader.read_groups(&[&inventory, &playbook], &hosts);
    let hosts = with_group_tables(hosts, &groups);
    loader.load_plugins(&playbook, registry);
    let (steps, spans) = loader.read_steps(&playbook, &hosts, &groups, registry);
    if loader.diagnostics.is_empty() {
        let known = check::Known {
            vars: &vars,
            hosts: &hosts,
            groups: &groups,
            registry,
        };
        loader.diagnostics.extend(check::cross_references(
            &playbook.source,
            &steps,
            &spans,
            &known,
        ));
    }
    // Planned only once every step is known to be well-formed.
    if loader.diagnostics.is_empty() {
        loader.diagnostics.extend(uploads::missing_sources(
            &playbook.source,
            &steps,
            &spans,
            &hosts,
            registry,
        ));
    }
    let mut warnings = Vec::new();
    if hosts.is_empty() {
        warnings.push(
            Diagnostic::general("the playbook has no hosts: its steps run nowhere")
                .help("pass the inventory with --inventory FILE, or add [hosts.NAME] tables")
                .warning(),
        );
    }
    if loader.diagnostics.is_empty() {
        Ok(Playbook {
            path: path.to_path_buf(),
            vars,
            hosts,
            groups,
            steps,
            secrets: loader.secrets,
            warnings,
        })
    } else {
        Err(in_file_order(loader.diagnostics))
    }
}

/// Diagnostics as a reader meets them: file by file (in the order the files first appear),
/// top to bottom; those without a place first.
fn in_file_order(mut diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut files: Vec<PathBuf> = Vec::new();
    for diagnostic in &diagnostics {
        if let Some((source, _)) = &diagnostic.location {
            if !files.contains(&source.path) {
                files.push(source.path.clone());
            }
        }
    }
    diagnostics.sort_by_key(|d| {
        d.location.as_ref().map(|(source, span)| {
            let file = files.iter().position(|f| *f == source.path);
            (file, span.start)
        })
    });
    diagnostics
}

/// Adds a label or hint to the diagnostic just recorded.
struct Note<'a>(&'a mut Diagnostic);

impl Note<'_> {
    fn help(self, help: impl Into<String>) -> Self {
        self.0.help = Some(help.into());
        self
    }

    fn label(self, label: impl Into<String>) -> Self {
        self.0.label = label.into();
        self
    }

    fn suggest(self, found: &str, candidates: &[&str]) -> Self {
        *self.0 = self.0.clone().suggest(found, candidates.iter().copied());
        self
    }
}

/// A parsed TOML file and its text.
struct Document {
    source: Arc<Source>,
    root: DeTable<'static>,
}

impl Document {
    fn empty() -> Self {
        Document {
            source: Source::new(Path::new("<none>"), String::new()),
            root: DeTable::new(),
        }
    }

    fn get(&self, key: &str) -> Option<&Spanned<DeValue<'static>>> {
        self.root.get(key)
    }
}

#[derive(Default)]
struct Loader {
    diagnostics: Vec<Diagnostic>,
    secrets: Vec<String>,
}

impl Loader {
    fn parse_file(&mut self, path: &Path) -> Option<Document> {
        let bytes = match text::read_limited(path) {
            Ok(bytes) => bytes,
            Err(err) => {
                self.diagnostics.push(
                    Diagnostic::general(format!("cannot read {}: {err}", path.display()))
                        .help("check the path; relative paths are relative to the current folder"),
                );
                return None;
            }
        };
        let text = match text::decode(&bytes) {
            Ok(text) => text,
            Err(err) => {
                self.diagnostics
                    .push(Diagnostic::general(format!("{}: {err}", path.display())));
                return None;
            }
        };
        let source = Source::new(path, text);
        // The parsed tree borrows the text; a playbook is loaded once per process, so leaking
        // one copy is cheaper than threading a lifetime through every table.
        let text: &'static str = Box::leak(source.text.clone().into_boxed_str());
        let (root, errors) = DeTable::parse_recoverable(text);
        let errors: Vec<(Range<usize>, String)> = errors
            .iter()
            .map(|e| (e.span().unwrap_or(0..0), e.message().trim_end().to_string()))
            .collect();
        self.diagnostics
            .extend(text::syntax_errors(&source, &errors));
        if !errors.is_empty() {
            return None;
        }
        let root = root.into_inner();
        if root.is_empty() {
            // Most likely the wrong file (or one truncated by a failed copy): refused rather
            // than run as a playbook that does nothing.
            self.diagnostics.push(
                Diagnostic::at(&source, 0..0, format!("{} is empty", path.display()))
                    .help("a playbook has [steps.ID] tables and hosts ([hosts.NAME], here or in --inventory FILE); an inventory has [hosts.NAME] tables"),
            );
            return None;
        }
        Some(Document { source, root })
    }

    fn error(
        &mut self,
        doc: &Document,
        span: Range<usize>,
        message: impl Into<String>,
    ) -> Note<'_> {
        self.diagnostics
            .push(Diagnostic::at(&doc.source, span, message));
        Note(self.diagnostics.last_mut().expect("just pushed"))
    }

    fn check_top_level(&mut self, doc: &Document, allowed: &[&str]) {
        for (key, _) in doc.root.iter() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                let found = key.get_ref().to_string();
                let diagnostic =
                    Diagnostic::at(&doc.source, key.span(), format!("unknown table `{found}`"))
                        .suggest(&found, allowed.iter().copied())
                        .help(format!("allowed here: {}", allowed.join(", ")));
                self.diagnostics.push(diagnostic);
            }
        }
    }

    fn table_at<'a>(
        &mut self,
        doc: &Document,
        value: Option<&'a Spanned<DeValue<'static>>>,
        what: &str,
    ) -> Option<(Range<usize>, &'a DeTable<'static>)> {
        let value = value?;
        match value.get_ref() {
            DeValue::Table(table) => Some((value.span(), table)),
            other => {
                self.error(
                    doc,
                    value.span(),
                    format!("`{what}` must be a table, found {}", a_kind(other)),
                )
                .help(format!("write it as [{what}] with keys below it"));
                None
            }
        }
    }

    fn string(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
    ) -> Option<String> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(
                    doc,
                    value.span(),
                    format!("`{what}` must be a string, found {}", a_kind(other)),
                );
                None
            }
        }
    }

    /// A string or a list of strings, each with its span.
    fn string_list(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
    ) -> Vec<(String, Range<usize>)> {
        match value.get_ref() {
            DeValue::String(s) => vec![(s.to_string(), value.span())],
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| Some((self.string(doc, item, what)?, item.span())))
                .collect(),
            other => {
                self.error(
                    doc,
                    value.span(),
                    format!(
                        "`{what}` must be a string or a list of strings, found {}",
                        a_kind(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// A duration in `range`: a number of seconds or text such as "30s". Out-of-range values
    /// are refused here, where the user can see them, not found later as an overflow.
    fn duration(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
        range: RangeInclusive<Duration>,
    ) -> Option<Duration> {
        let parsed = match value.get_ref() {
            // Too large for any range (rather than an overflow later); negative is too small.
            DeValue::Integer(_) => Ok(integer_value(value.get_ref())
                .map_or(Duration::MAX, |n| Duration::from_secs(n.max(0) as u64))),
            DeValue::String(s) => humantime::parse_duration(s)
                .map_err(|err| format!("`{what}`: `{s}` is not a duration ({err})")),
            other => Err(format!(
                "`{what}` must be a duration such as \"30s\", found {}",
                a_kind(other)
            )),
        };
        let (from, to) = (
            humantime::format_duration(*range.start()),
            humantime::format_duration(*range.end()),
        );
        match parsed {
            Ok(duration) if range.contains(&duration) => return Some(duration),
            Ok(_) => self.error(
                doc,
                value.span(),
                format!("`{what}` must be from {from} to {to}"),
            ),
            Err(message) => self.error(doc, value.span(), message),
        }
        .help("write durations such as \"30s\", \"5m\" or \"1h 30m\"");
        None
    }

    fn integer(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
        range: Range<i64>,
    ) -> Option<i64> {
        let parsed = integer_value(value.get_ref());
        if let Some(n) = parsed.filter(|n| range.contains(n)) {
            return Some(n);
        }
        let found = match parsed {
            Some(n) => n.to_string(),
            None if matches!(value.get_ref(), DeValue::Integer(_)) => "a larger number".into(),
            None => a_kind(value.get_ref()),
        };
        self.error(
            doc,
            value.span(),
            format!(
                "`{what}` must be an integer from {} to {}, found {found}",
                range.start,
                range.end - 1
            ),
        );
        None
    }

    fn boolean(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
    ) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(
                    doc,
                    value.span(),
                    format!("`{what}` must be true or false, found {}", a_kind(other)),
                );
                None
            }
        }
    }

    /// Converts a TOML value to JSON, resolving `{ env = "NAME" }` / `{ file = "path" }` secrets.
    fn json(&mut self, doc: &Document, value: &Spanned<DeValue<'static>>) -> Value {
        match value.get_ref() {
            DeValue::String(s) => Value::String(s.to_string()),
            DeValue::Integer(i) => i
                .as_str()
                .replace('_', "")
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| Value::String(i.as_str().to_string())),
            DeValue::Float(f) => f
                .as_str()
                .replace('_', "")
                .parse::<f64>()
                .map(Value::from)
                .unwrap_or(Value::Null),
            DeValue::Boolean(b) => Value::Bool(*b),
            DeValue::Datetime(d) => Value::String(d.to_string()),
            DeValue::Array(items) => {
                Value::Array(items.iter().map(|item| self.json(doc, item)).collect())
            }
            DeValue::Table(table) => match self.secret(doc, table) {
                Some(secret) => Value::String(secret),
                None => Value::Object(self.json_table(doc, table)),
            },
        }
    }

    fn json_table(
        &mut self,
        doc: &Document,
        table: &DeTable<'static>,
    ) -> serde_json::Map<String, Value> {
        table
            .iter()
            .map(|(key, value)| (key.get_ref().to_string(), self.json(doc, value)))
            .collect()
    }

    /// Resolves a secret reference table; `None` when the table is not one.
    fn secret(&mut self, doc: &Document, table: &DeTable<'static>) -> Option<String> {
        let mut entries = table.iter();
        let (key, value) = entries.next()?;
        if entries.next().is_some() || !matches!(key.get_ref().as_ref(), "env" | "file") {
            return None;
        }
        let reference = self.string(doc, value, key.get_ref())?;
        let resolved = if key.get_ref() == "env" {
            std::env::var(&reference).map_err(|_| {
                (
                    format!("secret: environment variable `{reference}` is not set"),
                    format!("export {reference}=… before running graphrun"),
                )
            })
        } else {
            let path = expand_home(&doc.source.path, &reference);
            std::fs::read_to_string(&path)
                .map(|s| s.trim_end_matches('\n').to_string())
                .map_err(|err| {
                    (
                        format!("secret: cannot read {}: {err}", path.display()),
                        "the path is relative to this file".to_string(),
                    )
                })
        };
        match resolved {
            Ok(secret) => {
                if !secret.is_empty() {
                    self.secrets.push(secret.clone());
                }
                Some(secret)
            }
            Err((message, help)) => {
                self.error(doc, value.span(), message).help(help);
                Some(String::new())
            }
        }
    }
}

/// An integer as written in TOML (any radix, `_` separators), if it fits an `i64`.
fn integer_value(value: &DeValue<'_>) -> Option<i64> {
    let DeValue::Integer(i) = value else {
        return None;
    };
    let digits = i.as_str().replace('_', "");
    let digits = ["0x", "0o", "0b"]
        .iter()
        .find_map(|prefix| digits.strip_prefix(prefix))
        .unwrap_or(&digits);
    i64::from_str_radix(digits, i.radix()).ok()
}

/// "a string", "an integer"…: what a value is, for "found …" in type errors.
pub(super) fn a_kind(value: &DeValue<'_>) -> String {
    let kind = value.type_str();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

/// Expands a leading `~/`; other relative paths are relative to the file that names them.
fn expand_home(file: &Path, path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ if Path::new(path).is_absolute() => PathBuf::from(path),
        _ => file.parent().unwrap_or(Path::new(".")).join(path),
    }
}
