//! Checks across steps: needs, cycles, `wait` consistency, and the names templates read.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use serde_json::Value;

use super::diagnostic::closest;
use super::filters;
use super::load::NO_HOSTS_HELP;
use super::template::{self, ROOTS};
use super::{Diagnostic, Host, Source, Step, Wait};
use crate::plugins::Registry;

/// Where a step's parts are in its file.
#[derive(Debug, Default)]
pub(super) struct StepSpans {
    pub needs: Vec<Range<usize>>,
    pub when: Option<Range<usize>>,
    /// Parameter name → (key span, value span).
    pub params: BTreeMap<String, (Range<usize>, Range<usize>)>,
}

/// What templates may refer to.
pub(super) struct Known<'a> {
    pub vars: &'a serde_json::Map<String, Value>,
    pub hosts: &'a [Host],
    pub groups: &'a BTreeMap<String, Vec<String>>,
    pub registry: &'a Registry,
}

pub(super) fn cross_references(
    source: &Arc<Source>,
    steps: &[Step],
    spans: &[StepSpans],
    known: &Known<'_>,
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    for (step, span) in steps.iter().zip(spans) {
        for (need, need_span) in step.needs.iter().zip(&span.needs) {
            if need == &step.id {
                diagnostics.push(
                    Diagnostic::at(
                        source,
                        need_span.clone(),
                        format!("step `{need}` needs itself"),
                    )
                    .help("remove it from `needs`"),
                );
            } else if !ids.contains(&need.as_str()) {
                diagnostics.push(
                    Diagnostic::at(
                        source,
                        need_span.clone(),
                        format!("unknown step `{need}` in `needs`"),
                    )
                    .suggest(need, ids.iter().copied())
                    .help(format!("steps in this playbook: {}", ids.join(", "))),
                );
            }
        }
    }
    if !diagnostics.is_empty() {
        return diagnostics;
    }
    if let Some(cycle) = find_cycle(steps) {
        let (first, second) = (&cycle[0], &cycle[1]);
        let index = steps
            .iter()
            .position(|s| &s.id == first)
            .expect("cycle steps exist");
        let need_index = steps[index]
            .needs
            .iter()
            .position(|n| n == second)
            .expect("cycle edge exists");
        diagnostics.push(
            Diagnostic::at(
                source,
                spans[index].needs[need_index].clone(),
                format!(
                    "steps depend on each other in a cycle: {}",
                    cycle.join(" → ")
                ),
            )
            .label("this need is part of the cycle")
            .help("remove one of these needs"),
        );
        return diagnostics;
    }
    for (step, span) in steps.iter().zip(spans) {
        if step.wait == Wait::Host {
            diagnostics.extend(check_same_host_needs(source, step, span, steps));
        }
        diagnostics.extend(check_templates(source, step, span, steps, known));
    }
    diagnostics
}

/// Returns a cycle as step ids `a, b, …, a`, if there is one.
fn find_cycle(steps: &[Step]) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit<'a>(
        id: &'a str,
        steps: &'a [Step],
        marks: &mut BTreeMap<&'a str, Mark>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match marks.get(id).copied().unwrap_or(Mark::New) {
            Mark::Done => return None,
            Mark::Active => {
                let start = path
                    .iter()
                    .position(|p| *p == id)
                    .expect("active steps are on the path");
                let mut cycle: Vec<String> = path[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(id.to_string());
                return Some(cycle);
            }
            Mark::New => {}
        }
        marks.insert(id, Mark::Active);
        path.push(id);
        let step = steps.iter().find(|s| s.id == id)?;
        for need in &step.needs {
            if let Some(cycle) = visit(need, steps, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(id, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    steps
        .iter()
        .find_map(|step| visit(&step.id, steps, &mut marks, &mut Vec::new()))
}

fn check_same_host_needs(
    source: &Arc<Source>,
    step: &Step,
    span: &StepSpans,
    steps: &[Step],
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    // A `once` step's node runs on its first host only.
    let hosts = if step.once {
        &step.hosts[..step.hosts.len().min(1)]
    } else {
        &step.hosts[..]
    };
    for (need, need_span) in step.needs.iter().zip(&span.needs) {
        let need = steps
            .iter()
            .find(|s| &s.id == need)
            .expect("needs were checked");
        // Every node waits for a `once` need's single node, wherever it runs.
        if need.once {
            continue;
        }
        let (need, need_hosts) = (&need.id, &need.hosts);
        if let Some(missing) = hosts.iter().find(|h| !need_hosts.contains(h)) {
            diagnostics.push(
                Diagnostic::at(source, need_span.clone(), format!("step `{}` runs on `{missing}`, where `{need}` does not run", step.id))
                    .label("waited for on the same host")
                    .help(format!("set wait = \"all\" to wait for `{need}` on every host it runs on, or run `{need}` on `{missing}` too")),
            );
        }
    }
    diagnostics
}

fn check_templates(
    source: &Arc<Source>,
    step: &Step,
    span: &StepSpans,
    steps: &[Step],
    known: &Known<'_>,
) -> Vec<Diagnostic> {
    let env = template::environment();
    let mut texts: Vec<(&str, Range<usize>, bool)> = Vec::new();
    if let (Some(when), Some(when_span)) = (&step.when, &span.when) {
        texts.push((when, when_span.clone(), true));
    }
    for (name, value) in &step.params.0 {
        if let Some((_, value_span)) = span.params.get(name) {
            collect_strings(value, &mut |text| {
                texts.push((text, value_span.clone(), false))
            });
        }
    }
    let waited_for = super::ancestors(step, steps);
    let mut diagnostics = Vec::new();
    for (text, text_span, expression) in texts {
        if !expression && !graphrun_plugin_api::params::is_template(text) {
            continue;
        }
        let names = match template::referenced_names(&env, text, expression) {
            Ok(names) => names,
            Err(err) => {
                diagnostics.push(
                    Diagnostic::at(source, text_span, format!("template error: {err}"))
                        .help("templates use minijinja syntax: {{ vars.name }}"),
                );
                continue;
            }
        };
        for name in names {
            if let Some((problem, suggestion)) = unknown_name(&name, &waited_for, steps, known) {
                let mut diagnostic = Diagnostic::at(source, text_span.clone(), format!("template reads `{name}`: {problem}")).help(
                    "templates can read vars.*, host.*, hosts.NAME.*, groups.NAME, facts.* and steps.ID.outputs.* of steps this one needs",
                );
                if let Some(best) = suggestion {
                    diagnostic = diagnostic.label(format!("did you mean `{best}`?"));
                }
                diagnostics.push(diagnostic);
            }
        }
        for unknown in filters::unknown(&env, text, expression) {
            let mut diagnostic = Diagnostic::at(
                source,
                text_span.clone(),
                format!(
                    "template uses an unknown {} `{}`",
                    unknown.kind, unknown.name
                ),
            )
            .help(match unknown.kind {
                "filter" => {
                    "filters are minijinja's built-ins (`default`, `lower`, `join`…) and `quote`"
                }
                _ => "tests are minijinja's built-ins (`defined`, `none`, `eq`…)",
            });
            if let Some(best) = unknown.suggestion {
                diagnostic = diagnostic.label(format!("did you mean `{best}`?"));
            }
            diagnostics.push(diagnostic);
        }
    }
    diagnostics
}

fn collect_strings<'a>(value: &'a Value, out: &mut dyn FnMut(&'a str)) {
    match value {
        Value::String(text) => out(text),
        Value::Array(items) => items.iter().for_each(|item| collect_strings(item, out)),
        Value::Object(map) => map.values().for_each(|item| collect_strings(item, out)),
        _ => {}
    }
}

/// Why a dotted name cannot be read (and a known name close to the wrong part), or `None` when
/// it can (or is only known at run time).
fn unknown_name(
    name: &str,
    waited_for: &BTreeSet<&str>,
    steps: &[Step],
    known: &Known<'_>,
) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = name.split('.').collect();
    // `vars.rot` → `vars.root`: the name with its wrong part replaced by the closest candidate.
    let near = |at: usize, candidates: Vec<&str>| {
        closest(parts[at], candidates).map(|best| {
            let mut fixed = parts[..=at].to_vec();
            fixed[at] = best;
            fixed.join(".")
        })
    };
    match parts.as_slice() {
        [root, ..] if !ROOTS.contains(root) => Some((
            format!("unknown name `{root}` (one of {})", ROOTS.join(", ")),
            near(0, ROOTS.to_vec()),
        )),
        ["vars", var, ..] if !known.vars.contains_key(*var) => Some((
            format!("no variable `{var}` in [vars]"),
            near(1, known.vars.keys().map(String::as_str).collect()),
        )),
        ["host", field, ..] if !HOST_FIELDS.contains(field) => Some((
            format!("hosts have no `{field}` ({})", HOST_FIELDS.join(", ")),
            near(1, HOST_FIELDS.to_vec()),
        )),
        ["hosts", host, ..] if !known.hosts.iter().any(|h| h.name == *host) => Some((
            if known.hosts.is_empty() {
                format!("no host `{host}`; {NO_HOSTS_HELP}")
            } else {
                format!("no host `{host}`")
            },
            near(1, known.hosts.iter().map(|h| h.name.as_str()).collect()),
        )),
        ["groups", group, ..] if !known.groups.contains_key(*group) => Some((
            format!("no group `{group}`"),
            near(1, known.groups.keys().map(String::as_str).collect()),
        )),
        ["steps", id, rest @ ..] => {
            let Some(step) = steps.iter().find(|s| s.id == *id) else {
                let ids = steps.iter().map(|s| s.id.as_str()).collect();
                return Some((format!("no step `{id}`"), near(1, ids)));
            };
            if !waited_for.contains(id) {
                return Some((
                    format!("step `{id}` is not among this step's needs, so its outputs may not exist yet"),
                    None,
                ));
            }
            match rest {
                ["outputs", output, ..] => {
                    let outputs = known
                        .registry
                        .get(&step.plugin)
                        .map(|p| p.info.outputs.clone())
                        .unwrap_or_default();
                    (!outputs.iter().any(|o| o == output)).then(|| {
                        let problem = format!(
                            "plugin `{}` has no output `{output}` (it has: {})",
                            step.plugin,
                            outputs.join(", ")
                        );
                        (
                            problem,
                            near(3, outputs.iter().map(String::as_str).collect()),
                        )
                    })
                }
                [] | ["outputs"] => None,
                [other, ..] => Some((format!("steps have `outputs`, not `{other}`"), None)),
            }
        }
        _ => None,
    }
}

/// What `host.*` holds.
const HOST_FIELDS: [&str; 4] = ["name", "address", "groups", "vars"];
