//! Local files that uploads read, checked at validation: a missing `source` (or an artifact
//! missing from an air-gapped site's `[artifacts] dir`) would otherwise be found on the first
//! host, mid-run.
//!
//! Plans are data, so a step whose parameters are final (no templates) and whose plugin needs
//! no facts is planned once here, for its first host, and every upload's source is looked up.
//! Plugins that want probes first are left for the run.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use graphrun_plugin_api::{Checksum, Op, PlanRequest, PlanResponse};

use super::check::StepSpans;
use super::{Diagnostic, Host, Source, Step};
use crate::artifacts::location::Location;
use crate::artifacts::Settings;
use crate::plugins::Registry;

const SOURCE_HELP: &str = "an upload's source is a file on this machine, relative to the playbook";
const FOLDER_HELP: &str = "an air-gapped site's [artifacts] `dir` holds each artifact and its \
                           checksum file as HOST/PATH of their upstream URLs";

/// A diagnostic for every upload source that cannot be read.
pub(super) fn missing_sources(
    source: &Arc<Source>,
    steps: &[Step],
    spans: &[StepSpans],
    hosts: &[Host],
    registry: &Registry,
    artifacts: &Settings,
) -> Vec<Diagnostic> {
    let base = source.path.parent().unwrap_or(Path::new("."));
    let mut diagnostics = Vec::new();
    for (step, span) in steps.iter().zip(spans) {
        for (upload, problem, help) in unreadable_uploads(step, hosts, registry, base, artifacts) {
            let message = format!("cannot read `{upload}`: {problem}");
            let diagnostic = match upload_span(step, span, &upload) {
                Some(at) => Diagnostic::at(source, at, message),
                None => Diagnostic::general(format!("step `{}`: {message}", step.id)),
            };
            diagnostics.push(diagnostic.help(help));
        }
    }
    diagnostics
}

/// (source as written, why it cannot be read, what to do) for each upload of the step's plan,
/// and each artifact (and checksum file) of an air-gapped site that its folder lacks.
fn unreadable_uploads(
    step: &Step,
    hosts: &[Host],
    registry: &Registry,
    base: &Path,
    artifacts: &Settings,
) -> Vec<(String, String, &'static str)> {
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
    let mut found = Vec::new();
    for op in &plan.ops {
        match op {
            Op::Upload { source, .. } => {
                let problem = match std::fs::metadata(base.join(source)) {
                    Ok(meta) if meta.is_file() => continue,
                    Ok(_) => "not a file".to_string(),
                    Err(err) => err.to_string(),
                };
                found.push((source.clone(), problem, SOURCE_HELP));
            }
            Op::Artifact { url, checksum, .. } if artifacts.dir.is_some() => {
                let sums = match checksum {
                    Checksum::File { url, .. } => Some(url),
                    Checksum::Sha256(_) => None,
                };
                for url in std::iter::once(url).chain(sums) {
                    let problem = match artifacts.locate(url) {
                        Ok(Location::Local(path)) if path.is_file() => continue,
                        Ok(Location::Local(path)) => {
                            format!("not in the artifacts folder ({})", path.display())
                        }
                        Ok(Location::Remote(_)) => continue,
                        Err(err) => err,
                    };
                    found.push((url.clone(), problem, FOLDER_HELP));
                }
            }
            _ => {}
        }
    }
    found
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
