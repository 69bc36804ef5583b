//! Reads playbook and inventory TOML into a [`Playbook`], collecting every error with its span.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use graphrun_plugin_api::Params;
use serde_json::Value;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::check::{self, StepSpans};
use super::{
    Connection, ConnectionKind, Diagnostic, Host, HostKeyChecking, Playbook, Source, Step, Wait,
};
use crate::plugins::Registry;

const PLAYBOOK_KEYS: [&str; 6] = ["vars", "defaults", "hosts", "groups", "plugins", "steps"];
const INVENTORY_KEYS: [&str; 3] = ["defaults", "hosts", "groups"];
const CONNECTION_KEYS: [&str; 10] = [
    "connection",
    "user",
    "port",
    "identity_file",
    "known_hosts_file",
    "host_key_checking",
    "become",
    "become_password",
    "connect_timeout",
    "jump",
];
const HOST_KEYS: [&str; 3] = ["address", "groups", "vars"];
/// Step keys the engine reads; every other key is a plugin parameter.
pub(super) const STEP_KEYS: [&str; 8] = [
    "plugin",
    "on",
    "needs",
    "wait",
    "retries",
    "retry_delay",
    "timeout",
    "when",
];

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
        return Err(loader.diagnostics);
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
    if loader.diagnostics.is_empty() {
        Ok(Playbook {
            path: path.to_path_buf(),
            vars,
            hosts,
            groups,
            steps,
            secrets: loader.secrets,
        })
    } else {
        Err(loader.diagnostics)
    }
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

/// Connection settings as read, before defaults are applied.
#[derive(Default, Clone)]
struct Settings {
    connection: Option<ConnectionKind>,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    known_hosts_file: Option<PathBuf>,
    host_key_checking: Option<HostKeyChecking>,
    become_root: Option<bool>,
    become_password: Option<String>,
    connect_timeout: Option<Duration>,
    jump: Option<String>,
}

impl Loader {
    fn parse_file(&mut self, path: &Path) -> Option<Document> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) => {
                self.diagnostics.push(
                    Diagnostic::general(format!("cannot read {}: {err}", path.display()))
                        .help("check the path; relative paths are relative to the current folder"),
                );
                return None;
            }
        };
        let source = Source::new(path, text);
        // The parsed tree borrows the text; a playbook is loaded once per process, so leaking
        // one copy is cheaper than threading a lifetime through every table.
        let text: &'static str = Box::leak(source.text.clone().into_boxed_str());
        let (root, errors) = DeTable::parse_recoverable(text);
        for error in &errors {
            let span = error.span().unwrap_or(0..0);
            let message = error.message().trim_end().to_string();
            self.diagnostics.push(
                Diagnostic::at(&source, span, format!("invalid TOML: {message}"))
                    .label("here")
                    .help("fix the TOML syntax (https://toml.io)"),
            );
        }
        if !errors.is_empty() {
            return None;
        }
        Some(Document {
            source,
            root: root.into_inner(),
        })
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
                    format!("`{what}` must be a table, found {}", other.type_str()),
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
                    format!("`{what}` must be a string, found {}", other.type_str()),
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
                        other.type_str()
                    ),
                );
                Vec::new()
            }
        }
    }

    fn duration(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
    ) -> Option<Duration> {
        match value.get_ref() {
            DeValue::Integer(i) => match i.as_str().parse::<u64>() {
                Ok(seconds) => Some(Duration::from_secs(seconds)),
                Err(_) => {
                    self.error(
                        doc,
                        value.span(),
                        format!("`{what}` must be a positive duration"),
                    );
                    None
                }
            },
            DeValue::String(s) => match humantime::parse_duration(s) {
                Ok(duration) => Some(duration),
                Err(err) => {
                    self.error(
                        doc,
                        value.span(),
                        format!("`{what}`: `{s}` is not a duration ({err})"),
                    )
                    .help("write durations such as \"30s\", \"5m\" or \"1h 30m\"");
                    None
                }
            },
            other => {
                self.error(
                    doc,
                    value.span(),
                    format!(
                        "`{what}` must be a duration such as \"30s\", found {}",
                        other.type_str()
                    ),
                );
                None
            }
        }
    }

    fn integer(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
        range: Range<i64>,
    ) -> Option<i64> {
        let parsed = match value.get_ref() {
            DeValue::Integer(i) => i64::from_str_radix(
                &i.as_str()
                    .replace('_', "")
                    .replace("0x", "")
                    .replace("0o", "")
                    .replace("0b", ""),
                i.radix(),
            )
            .ok(),
            _ => None,
        };
        match parsed {
            Some(n) if range.contains(&n) => Some(n),
            _ => {
                self.error(
                    doc,
                    value.span(),
                    format!(
                        "`{what}` must be an integer from {} to {}",
                        range.start,
                        range.end - 1
                    ),
                );
                None
            }
        }
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
                    format!("`{what}` must be true or false, found {}", other.type_str()),
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
            let path = relative_to(&doc.source.path, &reference);
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

    fn read_settings(
        &mut self,
        doc: &Document,
        table: &DeTable<'static>,
        allowed: &[&str],
        out: &mut Settings,
    ) {
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            match name {
                "connection" => {
                    out.connection = match self.string(doc, value, name).as_deref() {
                        Some("ssh") => Some(ConnectionKind::Ssh),
                        Some("local") => Some(ConnectionKind::Local),
                        Some(other) => {
                            self.error(doc, value.span(), format!("unknown connection `{other}`"))
                                .help("use \"ssh\" or \"local\"");
                            None
                        }
                        None => None,
                    }
                }
                "user" => out.user = self.string(doc, value, name),
                "port" => out.port = self.integer(doc, value, name, 1..65536).map(|p| p as u16),
                "identity_file" => {
                    out.identity_file = self
                        .string(doc, value, name)
                        .map(|p| expand_home(&doc.source.path, &p))
                }
                "known_hosts_file" => {
                    out.known_hosts_file = self
                        .string(doc, value, name)
                        .map(|p| expand_home(&doc.source.path, &p))
                }
                "host_key_checking" => {
                    out.host_key_checking = match self.string(doc, value, name).as_deref() {
                        Some("strict") => Some(HostKeyChecking::Strict),
                        Some("accept-new") => Some(HostKeyChecking::AcceptNew),
                        Some("off") => Some(HostKeyChecking::Off),
                        Some(other) => {
                            self.error(
                                doc,
                                value.span(),
                                format!("unknown host_key_checking `{other}`"),
                            )
                            .help("use \"strict\", \"accept-new\" or \"off\"");
                            None
                        }
                        None => None,
                    }
                }
                "become" => out.become_root = self.boolean(doc, value, name),
                "become_password" => {
                    out.become_password = match value.get_ref() {
                        DeValue::Table(table) => self.secret(doc, table),
                        _ => None,
                    };
                    if out.become_password.is_none() {
                        self.error(doc, value.span(), "`become_password` must be a secret reference")
                            .help("write { env = \"VARIABLE\" } or { file = \"path\" }: a password never sits in the playbook");
                    }
                }
                "connect_timeout" => out.connect_timeout = self.duration(doc, value, name),
                "jump" => out.jump = self.string(doc, value, name),
                _ if allowed.contains(&name) => {}
                _ => {
                    let mut keys: Vec<&str> = allowed.to_vec();
                    keys.extend(CONNECTION_KEYS.iter().filter(|k| !allowed.contains(*k)));
                    self.error(doc, key.span(), format!("unknown key `{name}`"))
                        .help(format!("allowed here: {}", keys.join(", ")))
                        .suggest(name, &keys);
                }
            }
        }
    }

    fn read_hosts(&mut self, docs: &[&Document], defaults: &Settings) -> Vec<Host> {
        let mut hosts: Vec<Host> = Vec::new();
        for doc in docs {
            let Some((_, table)) = self.table_at(doc, doc.get("hosts"), "hosts") else {
                continue;
            };
            for (key, value) in table.iter() {
                let name = key.get_ref().to_string();
                if hosts.iter().any(|h| h.name == name) {
                    self.error(doc, key.span(), format!("host `{name}` is defined twice"))
                        .help("a host is defined once, in the playbook or in the inventory");
                    continue;
                }
                let Some((_, fields)) = self.table_at(doc, Some(value), &format!("hosts.{name}"))
                else {
                    continue;
                };
                if let Some(host) = self.read_host(doc, &name, key.span(), fields, defaults) {
                    hosts.push(host);
                }
            }
        }
        hosts
    }

    fn read_host(
        &mut self,
        doc: &Document,
        name: &str,
        span: Range<usize>,
        fields: &DeTable<'static>,
        defaults: &Settings,
    ) -> Option<Host> {
        let mut settings = defaults.clone();
        self.read_settings(doc, fields, &HOST_KEYS, &mut settings);
        let address = fields
            .get("address")
            .and_then(|v| self.string(doc, v, "address"));
        let groups = fields
            .get("groups")
            .map(|v| {
                self.string_list(doc, v, "groups")
                    .into_iter()
                    .map(|(g, _)| g)
                    .collect()
            })
            .unwrap_or_default();
        let vars = match fields.get("vars") {
            Some(value) => match self.json(doc, value) {
                Value::Object(map) => map,
                _ => {
                    self.error(doc, value.span(), "`vars` must be a table");
                    Default::default()
                }
            },
            None => Default::default(),
        };
        let kind = settings.connection.unwrap_or(match address.as_deref() {
            Some("localhost") => ConnectionKind::Local,
            _ => ConnectionKind::Ssh,
        });
        let address = match (address, kind) {
            (Some(address), _) => address,
            (None, ConnectionKind::Local) => "localhost".to_string(),
            (None, ConnectionKind::Ssh) => {
                self.error(doc, span, format!("host `{name}` has no `address`"))
                    .help("add address = \"IP or DNS name\", or connection = \"local\" for this machine");
                return None;
            }
        };
        Some(Host {
            name: name.to_string(),
            address,
            groups,
            vars,
            connection: Connection {
                kind,
                user: settings.user,
                port: settings.port,
                identity_file: settings.identity_file,
                known_hosts_file: settings.known_hosts_file,
                host_key_checking: settings
                    .host_key_checking
                    .unwrap_or(HostKeyChecking::AcceptNew),
                become_root: settings.become_root.unwrap_or(false),
                become_password: settings.become_password,
                connect_timeout: settings.connect_timeout.unwrap_or(Duration::from_secs(10)),
                jump: settings.jump,
            },
        })
    }

    fn read_groups(&mut self, docs: &[&Document], hosts: &[Host]) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for host in hosts {
            for group in &host.groups {
                groups
                    .entry(group.clone())
                    .or_default()
                    .push(host.name.clone());
            }
        }
        for doc in docs {
            let Some((_, table)) = self.table_at(doc, doc.get("groups"), "groups") else {
                continue;
            };
            for (key, value) in table.iter() {
                let group = key.get_ref().to_string();
                let Some((_, fields)) = self.table_at(doc, Some(value), &format!("groups.{group}"))
                else {
                    continue;
                };
                for (field, value) in fields.iter() {
                    if field.get_ref() != "hosts" {
                        self.error(
                            doc,
                            field.span(),
                            format!("unknown key `{}` in group `{group}`", field.get_ref()),
                        )
                        .help("a group has one key: hosts = [\"name\", …]");
                        continue;
                    }
                    for (member, span) in self.string_list(doc, value, "hosts") {
                        if !hosts.iter().any(|h| h.name == member) {
                            let diagnostic = Diagnostic::at(
                                &doc.source,
                                span,
                                format!("unknown host `{member}` in group `{group}`"),
                            )
                            .suggest(&member, hosts.iter().map(|h| h.name.as_str()));
                            self.diagnostics.push(diagnostic);
                            continue;
                        }
                        let members = groups.entry(group.clone()).or_default();
                        if !members.contains(&member) {
                            members.push(member);
                        }
                    }
                }
            }
        }
        groups
    }

    fn load_plugins(&mut self, doc: &Document, registry: &mut Registry) {
        let Some((_, table)) = self.table_at(doc, doc.get("plugins"), "plugins") else {
            return;
        };
        for (key, value) in table.iter() {
            let name = key.get_ref().to_string();
            let Some((_, fields)) = self.table_at(doc, Some(value), &format!("plugins.{name}"))
            else {
                continue;
            };
            let mut path = None;
            for (field, value) in fields.iter() {
                if field.get_ref() == "path" {
                    path = self
                        .string(doc, value, "path")
                        .map(|p| (relative_to(&doc.source.path, &p), value.span()));
                } else {
                    self.error(
                        doc,
                        field.span(),
                        format!("unknown key `{}` in plugin `{name}`", field.get_ref()),
                    )
                    .help("a plugin has one key: path = \"target/release/libNAME.so\"");
                }
            }
            let Some((path, span)) = path else {
                if fields.get("path").is_none() {
                    self.error(doc, key.span(), format!("plugin `{name}` has no `path`"))
                        .help("add path = \"…/libNAME.so\", relative to this playbook");
                }
                continue;
            };
            if let Err(message) = registry.load_library(&name, &path) {
                self.error(doc, span, message).label("this library");
            }
        }
    }

    fn read_steps(
        &mut self,
        doc: &Document,
        hosts: &[Host],
        groups: &BTreeMap<String, Vec<String>>,
        registry: &Registry,
    ) -> (Vec<Step>, Vec<StepSpans>) {
        let mut steps = Vec::new();
        let mut all_spans = Vec::new();
        let Some((_, table)) = self.table_at(doc, doc.get("steps"), "steps") else {
            return (steps, all_spans);
        };
        for (key, value) in table.iter() {
            let id = key.get_ref().to_string();
            let Some((_, fields)) = self.table_at(doc, Some(value), &format!("steps.{id}")) else {
                continue;
            };
            if let Some((step, spans)) =
                self.read_step(doc, &id, key.span(), fields, hosts, groups, registry)
            {
                steps.push(step);
                all_spans.push(spans);
            }
        }
        (steps, all_spans)
    }

    #[allow(clippy::too_many_arguments)]
    fn read_step(
        &mut self,
        doc: &Document,
        id: &str,
        id_span: Range<usize>,
        fields: &DeTable<'static>,
        hosts: &[Host],
        groups: &BTreeMap<String, Vec<String>>,
        registry: &Registry,
    ) -> Option<(Step, StepSpans)> {
        let mut spans = StepSpans::default();
        let errors_before = self.diagnostics.len();
        let get = |key: &str| fields.get(key);
        let plugin_name = match get("plugin") {
            Some(value) => self.string(doc, value, "plugin").map(|p| (p, value.span())),
            None => Some((id.to_string(), id_span.clone())),
        };
        let plugin = plugin_name
            .as_ref()
            .and_then(|(name, span)| match registry.get(name) {
                Some(plugin) => Some(plugin),
                None => {
                    let message = if get("plugin").is_some() {
                        format!("unknown plugin `{name}`")
                    } else {
                        format!(
                            "step `{name}` names no plugin, and there is no plugin called `{name}`"
                        )
                    };
                    let diagnostic = Diagnostic::at(&doc.source, span.clone(), message)
                        .suggest(name, registry.names())
                        .help(format!(
                            "set plugin = \"…\" to one of: {} (or load one under [plugins.NAME])",
                            registry.names().collect::<Vec<_>>().join(", ")
                        ));
                    self.diagnostics.push(diagnostic);
                    None
                }
            });
        let targets = match get("on") {
            Some(value) => self.string_list(doc, value, "on"),
            None => vec![("all".to_string(), id_span.clone())],
        };
        let mut step_hosts = BTreeSet::new();
        for (target, span) in &targets {
            if target == "all" {
                step_hosts.extend(hosts.iter().map(|h| h.name.clone()));
            } else if let Some(members) = groups.get(target) {
                step_hosts.extend(members.iter().cloned());
            } else if hosts.iter().any(|h| &h.name == target) {
                step_hosts.insert(target.clone());
            } else {
                let candidates = hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .chain(groups.keys().map(String::as_str))
                    .chain(["all"]);
                let diagnostic = Diagnostic::at(
                    &doc.source,
                    span.clone(),
                    format!("unknown host or group `{target}`"),
                )
                .suggest(target, candidates)
                .help("`on` takes host names, group names, or \"all\"");
                self.diagnostics.push(diagnostic);
            }
        }
        let needs = get("needs")
            .map(|v| self.string_list(doc, v, "needs"))
            .unwrap_or_default();
        spans.needs = needs.iter().map(|(_, span)| span.clone()).collect();
        let wait = match get("wait") {
            None => Wait::Host,
            Some(value) => match self.string(doc, value, "wait").as_deref() {
                Some("host") | None => Wait::Host,
                Some("all") => Wait::All,
                Some(other) => {
                    self.error(doc, value.span(), format!("unknown wait `{other}`"))
                        .help("\"host\": after each need on the same host; \"all\": after each need on every host");
                    Wait::Host
                }
            },
        };
        let retries = get("retries")
            .and_then(|v| self.integer(doc, v, "retries", 0..101))
            .unwrap_or(0) as u32;
        let retry_delay = get("retry_delay")
            .and_then(|v| self.duration(doc, v, "retry_delay"))
            .unwrap_or(Duration::from_secs(5));
        let timeout = get("timeout").and_then(|v| self.duration(doc, v, "timeout"));
        let when = get("when").and_then(|v| {
            spans.when = Some(v.span());
            self.string(doc, v, "when")
        });
        let mut params = Params::default();
        for (key, value) in fields.iter() {
            let name = key.get_ref().as_ref();
            if STEP_KEYS.contains(&name) {
                continue;
            }
            spans
                .params
                .insert(name.to_string(), (key.span(), value.span()));
            let json = self.json(doc, value);
            params.0.insert(name.to_string(), json);
        }
        if let Some(plugin) = plugin {
            self.check_params(errors_before, doc, &id_span, &spans, &mut params, plugin);
        }
        if self.diagnostics.len() > errors_before {
            return None;
        }
        let step = Step {
            id: id.to_string(),
            plugin: plugin_name.map(|(name, _)| name).unwrap_or_default(),
            hosts: hosts
                .iter()
                .filter(|h| step_hosts.contains(&h.name))
                .map(|h| h.name.clone())
                .collect(),
            needs: needs.into_iter().map(|(need, _)| need).collect(),
            wait,
            retries,
            retry_delay,
            timeout,
            when,
            params,
        };
        Some((step, spans))
    }

    /// Checks parameters against the plugin's schema and its own validation; applies defaults.
    #[allow(clippy::too_many_arguments)]
    fn check_params(
        &mut self,
        errors_before: usize,
        doc: &Document,
        id_span: &Range<usize>,
        spans: &StepSpans,
        params: &mut Params,
        plugin: &crate::plugins::Entry,
    ) {
        let info = &plugin.info;
        for (name, value) in params.0.iter() {
            let (key_span, value_span) = spans.params[name].clone();
            match info.params.iter().find(|p| &p.name == name) {
                None => {
                    let candidates = info.params.iter().map(|p| p.name.as_str()).chain(STEP_KEYS);
                    let diagnostic = Diagnostic::at(
                        &doc.source,
                        key_span,
                        format!("unknown parameter `{name}` for plugin `{}`", info.name),
                    )
                    .suggest(name, candidates)
                    .help(format!(
                        "`graphrun plugins {}` lists its parameters",
                        info.name
                    ));
                    self.diagnostics.push(diagnostic);
                }
                Some(spec) if !spec.kind.accepts(value) => {
                    self.error(
                        doc,
                        value_span,
                        format!("parameter `{name}` must be {}", spec.kind.describe()),
                    )
                    .help(spec.doc.clone());
                }
                Some(_) => {}
            }
        }
        for spec in &info.params {
            if params.has(&spec.name) {
                continue;
            }
            if spec.required {
                self.error(
                    doc,
                    id_span.clone(),
                    format!("step is missing the required parameter `{}`", spec.name),
                )
                .help(format!("{}: {}", spec.name, spec.doc));
            } else if let Some(default) = &spec.default {
                params.0.insert(spec.name.clone(), default.clone());
            }
        }
        // The plugin's own checks assume well-typed, complete parameters.
        if self.diagnostics.len() > errors_before {
            return;
        }
        for error in plugin.plugin.validate(params) {
            let span = error
                .param
                .as_ref()
                .and_then(|p| spans.params.get(p))
                .map_or(id_span.clone(), |(key, _)| key.clone());
            self.error(
                doc,
                span,
                format!("plugin `{}`: {}", info.name, error.message),
            )
            .help(format!(
                "`graphrun plugins {}` documents every parameter",
                info.name
            ));
        }
    }
}

/// Adds the `[groups.*]` memberships to each host's own group list.
fn with_group_tables(mut hosts: Vec<Host>, groups: &BTreeMap<String, Vec<String>>) -> Vec<Host> {
    for host in &mut hosts {
        for (group, members) in groups {
            if members.contains(&host.name) && !host.groups.contains(group) {
                host.groups.push(group.clone());
            }
        }
    }
    hosts
}

/// Resolves `path` relative to the folder of `file`.
fn relative_to(file: &Path, path: &str) -> PathBuf {
    let expanded = expand_home(file, path);
    if expanded.is_absolute() {
        expanded
    } else {
        file.parent().unwrap_or(Path::new(".")).join(expanded)
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
