//! Steps, their plugins and parameters, and the custom plugin libraries a playbook loads.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use graphrun_plugin_api::Params;
use toml::de::DeTable;

use super::{expand_home, Document, Loader};
use crate::playbook::check::StepSpans;
use crate::playbook::diagnostic::closest;
use crate::playbook::{Diagnostic, Host, Step, Wait};
use crate::plugins::Registry;

/// Step keys the engine reads; every other key is a plugin parameter.
pub(super) const STEP_KEYS: [&str; 10] = [
    "plugin",
    "on",
    "needs",
    "wait",
    "retries",
    "retry_delay",
    "timeout",
    "when",
    "exclusive",
    "once",
];

/// Why a name is unknown when there are no hosts at all: the inventory was left out.
pub(crate) const NO_HOSTS_HELP: &str =
    "there are no hosts at all: pass the inventory with --inventory FILE, or add [hosts.NAME] tables";

/// The longest `retry_delay`.
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The longest step `timeout`.
const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

impl Loader {
    pub(super) fn load_plugins(&mut self, doc: &Document, registry: &mut Registry) {
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
                        .map(|p| (expand_home(&doc.source.path, &p), value.span()));
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

    pub(super) fn read_steps(
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
            if !self.check_name(doc, &id, key.span(), "a step id") {
                continue;
            }
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
    pub(super) fn read_step(
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
                .help(if hosts.is_empty() {
                    NO_HOSTS_HELP
                } else {
                    "`on` takes host names, group names, or \"all\""
                });
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
            .and_then(|v| self.duration(doc, v, "retry_delay", Duration::ZERO..=DAY))
            .unwrap_or(Duration::from_secs(5));
        let timeout = get("timeout")
            .and_then(|v| self.duration(doc, v, "timeout", Duration::from_millis(1)..=WEEK));
        // A plugin that takes a host-wide lock (apt, dpkg) makes all its steps exclusive.
        let exclusive = get("exclusive")
            .and_then(|v| self.boolean(doc, v, "exclusive"))
            .unwrap_or(false)
            || plugin.is_some_and(|p| p.info.exclusive);
        // Cluster-scoped plugins run once by default; a step may say otherwise either way.
        let once = get("once")
            .and_then(|v| self.boolean(doc, v, "once"))
            .unwrap_or(plugin.is_some_and(|p| p.info.once));
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
            exclusive,
            once,
            params,
        };
        Some((step, spans))
    }

    /// Checks parameters against the plugin's schema and its own validation; applies defaults.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn check_params(
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
                    let diagnostic = unknown_key(doc, key_span, name, &info.name, &info.params);
                    self.diagnostics.push(diagnostic);
                }
                Some(spec) if !spec.kind.accepts(value) => {
                    self.error(
                        doc,
                        value_span,
                        format!(
                            "parameter `{name}` must be {}, found {}",
                            spec.kind.describe(),
                            json_kind(value)
                        ),
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

/// An unknown key in a step: a step key (`needs`, `timeout`…) when it is close to one, else a
/// parameter of the plugin. Step keys come first: they are the same in every step.
fn unknown_key(
    doc: &Document,
    span: Range<usize>,
    name: &str,
    plugin: &str,
    params: &[graphrun_plugin_api::ParamSpec],
) -> Diagnostic {
    if let Some(step_key) = closest(name, STEP_KEYS) {
        return Diagnostic::at(&doc.source, span, format!("unknown step key `{name}`"))
            .label(format!("did you mean `{step_key}`?"))
            .help(format!(
                "step keys are {}; every other key is a parameter of plugin `{plugin}`",
                STEP_KEYS.join(", ")
            ));
    }
    Diagnostic::at(
        &doc.source,
        span,
        format!("unknown parameter `{name}` for plugin `{plugin}`"),
    )
    .suggest(name, params.iter().map(|p| p.name.as_str()))
    .help(format!("`graphrun plugins {plugin}` lists its parameters"))
}

/// "a string", "an integer"…: what a parameter value is, for "found …" in type errors.
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "nothing",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(n) if n.is_f64() => "a float",
        serde_json::Value::Number(_) => "an integer",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "a table",
    }
}
