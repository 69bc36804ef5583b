//! The built-in `preflight` step: read-only checks before anything changes, every finding at
//! once. Findings named in `fail_on` fail the node; the others are warnings in the output.
//!
//! One round trip of probes reads sshd's effective settings, the SSH user's groups, swap, the
//! bridge netfilter sysctls, the host's clock, name resolution of the peers, listening TCP
//! ports, memory, disk and the OS; the plugin turns them into findings.

mod checks;

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{
    Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo, Run,
};
use graphrun_plugin_kit::params::{specs, Args, Param};
use serde_json::Value;

pub use checks::{Finding, FINDINGS};

const PARAMS: &[Param] = &[
    Param::optional("fail_on", ParamKind::StringList, "Findings that fail the node (the others are warnings): ssh_forwarding, docker_group, swap, br_netfilter, sysctl, clock, names, ports, memory, disk, os")
        .default_strings(&[]),
    Param::optional("peers", ParamKind::StringList, "Names every node must resolve (the other nodes), e.g. [\"master\", \"worker\"]")
        .default_strings(&[]),
    Param::optional("ports", ParamKind::Any, "TCP ports a control plane needs free (numbers or strings)")
        .default_strings(&["6443", "2379", "2380", "10250", "9345"]),
    Param::optional("min_memory_mb", ParamKind::Integer, "Least memory (MiB)").default_int(2048),
    Param::optional("min_disk_gb", ParamKind::Integer, "Least free space on / (GiB)").default_int(10),
    Param::optional("max_clock_skew_seconds", ParamKind::Integer, "Largest difference between the host's clock and the control machine's")
        .default_int(30),
];

/// The `preflight` step.
#[derive(Debug, Default)]
pub struct PreflightPlugin;

impl Plugin for PreflightPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "preflight".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Read-only checks before a cluster install, every finding at once; `fail_on` chooses the fatal ones".into(),
            params: specs(PARAMS),
            outputs: vec!["findings".into()],
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        checks::Limits::from_params(&Args::new(PARAMS, params))
            .err()
            .into_iter()
            .collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let limits = checks::Limits::from_params(&Args::new(PARAMS, &request.params))?;
        if request.probes.is_empty() {
            return Ok(PlanResponse::Probe {
                probes: checks::probes(&limits),
            });
        }
        // The control machine's clock, read as close to the probe as a plan can: the one input
        // a plugin takes from outside its request, because skew is relative to this machine.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(plan(&checks::findings(&limits, request, now), &limits).into())
    }
}

/// One read-only op that prints every finding and fails only for those in `fail_on`.
fn plan(findings: &[Finding], limits: &checks::Limits) -> Plan {
    let mut ops = Vec::new();
    if !findings.is_empty() {
        let lines: Vec<String> = findings
            .iter()
            .map(|f| {
                let level = if limits.fail_on.contains(&f.id.to_string()) {
                    "error"
                } else {
                    "warning"
                };
                format!("{level}: {}: {}", f.id, f.message)
            })
            .collect();
        let fatal = lines.iter().any(|l| l.starts_with("error"));
        ops.push(Op::check(Run::Shell(format!(
            "printf '%s\\n' {} >&2\nexit {}",
            lines.iter().map(|l| quote(l)).collect::<Vec<_>>().join(" "),
            u8::from(fatal)
        ))));
    }
    let mut plan = Plan::ops(ops);
    plan.outputs.insert(
        "findings".into(),
        Value::Array(findings.iter().map(|f| Value::from(f.id)).collect()),
    );
    plan
}

#[cfg(test)]
mod tests;
