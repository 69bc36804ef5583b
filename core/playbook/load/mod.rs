//! Reads playbook and inventory TOML into a [`Playbook`], collecting every error with its span.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{check, uploads};
use super::{Diagnostic, Playbook, Source};
use crate::plugins::Registry;

mod artifacts;
mod inventory;
mod steps;

pub(super) use steps::NO_HOSTS_HELP;
mod text;
mod values;

use values::a_kind;

use inventory::{with_group_tables, Settings, CONNECTION_KEYS};

const PLAYBOOK_KEYS: [&str; 7] = [
    "vars",
    "defaults",
    "hosts",
    "groups",
    "plugins",
    "artifacts",
    "steps",
];
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
    let artifacts = loader.read_artifacts(&playbook);
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
            &artifacts,
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
            artifacts,
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

/// Expands a leading `~/`; other relative paths are relative to the file that names them.
fn expand_home(file: &Path, path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ if Path::new(path).is_absolute() => PathBuf::from(path),
        _ => file.parent().unwrap_or(Path::new(".")).join(path),
    }
}
