//! Local files that uploads read, checked at validation: a missing `source` would otherwise be
//! found on the first host, mid-run.
//!
//! Plans are data, so a step whose parameters are final (no templates) and whose plugin needs
//! no facts is planned once here, for its first host, and every upload's source is looked up.
//! Plugins that want probes first are left for the run.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use graphrun_plugin_api::{Op, PlanRequest, PlanResponse};

use super::check::StepSpans;
use super::{Diagnostic, Host, Source, Step};
use crate::plugins::Registry;

/// A diagnostic for every upload source that cannot be read.
pub(super) fn missing_sources(
    source: &Arc<Source>,
    steps: &[Step],
    spans: &[StepSpans],
    hosts: &[Host],
    registry: &Registry,
) -> Vec<Diagnostic> {
    let base = source.path.parent().unwrap_or(Path::new("."));
    let mut diagnostics = Vec::new();
    for (step, span) in steps.iter().zip(spans) {
        for (upload, problem) in unreadable_uploads(step, hosts, registry, base) {
            let message = format!("cannot read `{upload}`: {problem}");
            let diagnostic = match upload_span(step, span, &upload) {
                Some(at) => Diagnostic::at(source, at, message),
                None => Diagnostic::general(format!("step `{}`: {message}", step.id)),
            };
            diagnostics
                .push(diagnostic.help(
                    "an upload's source is a file on this machine, relative to the playbook",
                ));
        }
    }
    diagnostics
}

/// (source as written, why it cannot be read) for each upload of the step's plan.
fn unreadable_uploads(
    step: &Step,
    hosts: &[Host],
    registry: &Registry,
    base: &Path,
) -> Vec<(String, String)> {
    let (Some(entry), Some(host)) = (registry.get(&step.plugin), step.hosts.first()) else {
        return Vec::new();
    };
    let templated = step
        .params
        .0
        .keys()
        .any(|name| step.params.is_unrendered(name));
    if templated || entry.info.needs_facts {
        return Vec::new();
    }
    let Some(host) = hosts.iter().find(|h| &h.name == host) else {
        return Vec::new();
    };
    let request = PlanRequest {
        step: step.id.clone(),
        host: host.info(),
        params: step.params.clone(),
        facts: BTreeMap::new(),
        probes: BTreeMap::new(),
        fetch_dir: String::new(),
        playbook_dir: base.display().to_string(),
        inventory: if entry.info.needs_inventory {
            hosts.iter().map(Host::info).collect()
        } else {
            Vec::new()
        },
    };
    let Ok(PlanResponse::Plan(plan)) = entry.plugin.plan(&request) else {
        return Vec::new();
    };
    plan.ops
        .iter()
        .filter_map(|op| match op {
            Op::Upload { source, .. } => {
                let path = base.join(source);
                match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => None,
                    Ok(_) => Some((source.clone(), "not a file".to_string())),
                    Err(err) => Some((source.clone(), err.to_string())),
                }
            }
            _ => None,
        })
        .collect()
}

/// The value span of the parameter that holds `upload` as written, if one does.
fn upload_span(step: &Step, span: &StepSpans, upload: &str) -> Option<Range<usize>> {
    let (name, _) = step
        .params
        .0
        .iter()
        .find(|(_, value)| value.as_str() == Some(upload))?;
    span.params.get(name).map(|(_, value)| value.clone())
}
