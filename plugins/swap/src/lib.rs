//! The built-in `swap` step: swap off now and after reboots, as Kubernetes requires.
//!
//! Probes (one round trip): the OS, active swap areas, the swap lines of the fstab, systemd's
//! swap units. Then, only for what is there: `swapoff -a`; swap lines of the fstab commented
//! out (every other byte untouched; the engine keeps one backup, `/etc/fstab.graphrun.bak`); swap units masked; a read-only check that
//! `swapon --show` lists nothing.

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{
    Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo, Probe,
    Run,
};
use graphrun_plugin_kit::params::{specs, Args, Param};
use graphrun_plugin_kit::{os, probe, systemd};

const PROBE_ACTIVE: &str = "active";
const PROBE_FSTAB: &str = "fstab_swap";
const PROBE_UNITS: &str = "units";

/// An fstab entry of type swap that is not commented out (POSIX ERE, fields split by blanks).
const SWAP_LINE: &str = "^([[:space:]]*)([^#[:space:]][^[:space:]]*[[:space:]]+[^[:space:]]+[[:space:]]+swap([[:space:]].*)?)$";
/// The entry, commented out, its indentation kept.
const COMMENTED: &str = "\\1# \\2";

const PARAMS: &[Param] = &[
    Param::optional(
        "fstab",
        ParamKind::String,
        "The fstab whose swap lines are commented out",
    )
    .default_str("/etc/fstab"),
    Param::optional(
        "mask_units",
        ParamKind::Bool,
        "Mask systemd's .swap units too, so nothing turns swap back on",
    )
    .default_bool(true),
];

/// The `swap` step.
#[derive(Debug, Default)]
pub struct SwapPlugin;

impl Plugin for SwapPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "swap".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Turns swap off now and for good: swapoff, fstab lines commented out, swap units masked".into(),
            params: specs(PARAMS),
            outputs: vec![],
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        fstab(params).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let fstab = fstab(&request.params)?;
        let mask_units = Args::new(PARAMS, &request.params).flag("mask_units")?;
        if request.probes.is_empty() {
            return Ok(PlanResponse::Probe {
                probes: probes(fstab),
            });
        }
        let os = os::Os::of(request).unwrap_or_default();
        let mut ops = Vec::new();
        if !probe::stdout(request, PROBE_ACTIVE).trim().is_empty() {
            ops.push(Op::command(Run::Shell("swapoff -a".into())));
        }
        if !probe::stdout(request, PROBE_FSTAB).trim().is_empty() {
            ops.push(Op::replace(fstab, SWAP_LINE, COMMENTED));
        }
        if mask_units && os.systemd {
            ops.extend(
                probe::stdout(request, PROBE_UNITS)
                    .split_whitespace()
                    .filter(|unit| unit.ends_with(".swap"))
                    .map(systemd::mask),
            );
        }
        ops.push(Op::check(Run::Shell(
            "active=$(swapon --show --noheadings 2>/dev/null || tail -n +2 /proc/swaps)\n\
             [ -z \"$active\" ] || { echo \"swap still on: $active\" >&2; exit 1; }"
                .into(),
        )));
        Ok(Plan::ops(ops).into())
    }
}

fn fstab(params: &Params) -> Result<&str, PluginError> {
    let path = Args::new(PARAMS, params).required_str("fstab")?;
    if !path.starts_with('/') && !params.is_unrendered("fstab") {
        return Err(PluginError::param(
            "fstab",
            format!("`{path}` is not an absolute path"),
        ));
    }
    Ok(path)
}

fn probes(fstab: &str) -> Vec<Probe> {
    vec![
        os::probe(),
        Probe::run(PROBE_ACTIVE, Run::Shell("tail -n +2 /proc/swaps".into())),
        Probe::run(PROBE_FSTAB, Run::Shell(format!(
                "grep -E {} {} 2>/dev/null || true",
                quote(SWAP_LINE),
                quote(fstab)
            ))),
        Probe::run(PROBE_UNITS, Run::Shell(
                "systemctl list-units --type=swap --all --plain --no-legend 2>/dev/null | awk '{print $1}'; \
                 systemctl list-unit-files --type=swap --no-legend 2>/dev/null | awk '$2 != \"masked\" {print $1}'"
                    .into(),
            )),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use graphrun_plugin_kit::testkit::{self, assert_snapshot, render, Request, RECORDED};
    use serde_json::json;

    #[test]
    fn a_host_with_swap_of_every_recorded_os() {
        for host in RECORDED {
            let plan = Request::new(json!({}))
                .host(&host)
                .plan(&SwapPlugin, |probe| match probe.name.as_str() {
                    PROBE_ACTIVE => Some(testkit::ok("/swap.img file 2097148 0 -2\n")),
                    PROBE_FSTAB => Some(testkit::ok("/swap.img\tnone\tswap\tsw\t0\t0\n")),
                    PROBE_UNITS => Some(testkit::ok("swap.img.swap\n")),
                    _ => None,
                })
                .unwrap();
            assert_snapshot(
                env!("CARGO_MANIFEST_DIR"),
                &format!("swap-on-{}", host.name),
                &render(&plan),
            );
        }
    }

    #[test]
    fn without_swap_only_the_check_remains() {
        let plan = Request::new(json!({}))
            .host(&testkit::DEBIAN_12)
            .plan(&SwapPlugin, |_| None)
            .unwrap();
        assert_eq!(plan.ops.len(), 1);
        assert!(!plan.ops[0].may_change());
    }

    #[test]
    fn the_swap_line_pattern_matches_only_active_swap_entries() {
        let fstab = "UUID=1 / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\n# /dev/sdb1 none swap sw 0 0\n  /swap.img\tnone\tswap\tsw\t0\t0\n/dev/sdc1 /swapdata ext4 defaults 0 2\n";
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf '%s' {} | sed -E {}",
                quote(fstab),
                quote(&format!("s\u{1}{SWAP_LINE}\u{1}{COMMENTED}\u{1}"))
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "UUID=1 / ext4 defaults 0 1\n# /dev/sda2 none swap sw 0 0\n# /dev/sdb1 none swap sw 0 0\n  # /swap.img\tnone\tswap\tsw\t0\t0\n/dev/sdc1 /swapdata ext4 defaults 0 2\n"
        );
    }

    #[test]
    fn the_fstab_path_is_checked() {
        let errors =
            SwapPlugin.validate(&serde_json::from_value(json!({"fstab": "fstab"})).unwrap());
        assert_eq!(errors[0].param.as_deref(), Some("fstab"));
    }
}
