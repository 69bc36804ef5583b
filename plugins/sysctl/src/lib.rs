//! The built-in `sysctl` step: kernel modules loaded now and at boot, sysctl settings persisted,
//! applied and read back. `kubernetes = true` adds what a Kubernetes node needs.
//!
//! Probes (one round trip): the OS, which modules are there, the live values. The plan loads
//! only missing modules and sets only differing values; the files under `/etc/modules-load.d`
//! and `/etc/sysctl.d` are written only when their content differs; a last read-only check
//! reads every live value back.

use std::collections::BTreeMap;

use graphrun_plugin_api::{
    Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo,
};
use graphrun_plugin_kit::params::{specs, Args, Param};
use graphrun_plugin_kit::{os, sysctl};
use serde_json::Value;

const PROBE_MODULES: &str = "modules";
const PROBE_VALUES: &str = "values";

const PARAMS: &[Param] = &[
    Param::optional("settings", ParamKind::Table, "Sysctl keys and values, e.g. { \"net.ipv4.ip_forward\" = 1, \"vm.max_map_count\" = 262144 }"),
    Param::optional("modules", ParamKind::StringList, "Kernel modules to load now and at boot, e.g. [\"br_netfilter\", \"overlay\"]; a module built into the kernel counts as loaded"),
    Param::optional("kubernetes", ParamKind::Bool, "Add the Kubernetes prerequisites: module br_netfilter, net.bridge.bridge-nf-call-iptables = 1, net.ipv4.ip_forward = 1")
        .default_bool(false),
    Param::optional("priority", ParamKind::Integer, "NN of /etc/sysctl.d/NN-graphrun.conf (files are read in name order; later wins)")
        .default_int(99),
];

/// What Kubernetes needs from every node's kernel.
const KUBERNETES_MODULES: [&str; 1] = ["br_netfilter"];
const KUBERNETES_SETTINGS: [(&str, &str); 2] = [
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.ipv4.ip_forward", "1"),
];

/// The `sysctl` step.
#[derive(Debug, Default)]
pub struct SysctlPlugin;

/// The step's parameters, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    settings: BTreeMap<String, String>,
    modules: Vec<String>,
    priority: u8,
}

impl Plugin for SysctlPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "sysctl".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Loads kernel modules and sets sysctl values, now and at boot, read back live"
                .into(),
            params: specs(PARAMS),
            outputs: vec!["changed_keys".into()],
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        Config::from_params(params).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let config = Config::from_params(&request.params)?;
        if request.probes.is_empty() {
            let keys: Vec<&String> = config.settings.keys().collect();
            return Ok(PlanResponse::Probe {
                probes: vec![
                    os::probe(),
                    sysctl::modules_probe(PROBE_MODULES, &config.modules),
                    sysctl::values_probe(PROBE_VALUES, &keys),
                ],
            });
        }
        plan(&config, request).map(PlanResponse::Plan)
    }
}

impl Config {
    fn from_params(params: &Params) -> Result<Self, PluginError> {
        let args = Args::new(PARAMS, params);
        let mut modules = args.strings("modules")?;
        let mut settings = BTreeMap::new();
        if args.flag("kubernetes")? {
            modules.extend(KUBERNETES_MODULES.map(String::from));
            settings.extend(KUBERNETES_SETTINGS.map(|(k, v)| (k.to_string(), v.to_string())));
        }
        for (key, value) in args.table("settings")?.unwrap_or_default().0 {
            if !sysctl::valid_key(&key) {
                return Err(PluginError::param(
                    "settings",
                    format!("`{key}` is not a sysctl key such as \"net.ipv4.ip_forward\""),
                ));
            }
            let value = match value {
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => u8::from(b).to_string(),
                Value::String(s) if !s.contains(['\n', '\r']) && !s.trim().is_empty() => s,
                _ => {
                    return Err(PluginError::param(
                        "settings",
                        format!("`{key}`: a value is a number, true/false or a one-line string"),
                    ))
                }
            };
            settings.insert(key, value);
        }
        if let Some(bad) = modules.iter().find(|m| !sysctl::valid_module(m)) {
            return Err(PluginError::param(
                "modules",
                format!("`{bad}` is not a kernel module name"),
            ));
        }
        modules.sort();
        modules.dedup();
        let priority = args.int("priority")?.unwrap_or(99);
        let priority = u8::try_from(priority)
            .ok()
            .filter(|p| *p < 100)
            .ok_or_else(|| PluginError::param("priority", "must be 0..99"))?;
        if settings.is_empty() && modules.is_empty() {
            return Err(PluginError::new(
                "nothing to do: set `settings`, `modules` or `kubernetes = true`",
            ));
        }
        Ok(Config {
            settings,
            modules,
            priority,
        })
    }
}

fn plan(config: &Config, request: &PlanRequest) -> Result<Plan, PluginError> {
    let loaded = request
        .probes
        .get(PROBE_MODULES)
        .map(sysctl::parse_modules)
        .unwrap_or_default();
    let live = request
        .probes
        .get(PROBE_VALUES)
        .map(sysctl::parse_values)
        .unwrap_or_default();
    let missing_modules: Vec<&String> = config
        .modules
        .iter()
        .filter(|m| !loaded.contains(m))
        .collect();
    let mut ops = Vec::new();
    if !config.modules.is_empty() {
        ops.push(
            Op::file(
                sysctl::MODULES_LOAD_PATH,
                &sysctl::modules_load_file(&config.modules),
            )
            .with_mode("0644"),
        );
    }
    ops.extend(missing_modules.iter().map(|m| sysctl::load_module(m)));
    let mut changed_keys = Vec::new();
    if !config.settings.is_empty() {
        ops.push(
            Op::file(
                &sysctl::sysctl_path(config.priority),
                &sysctl::sysctl_file(&config.settings),
            )
            .with_mode("0644"),
        );
        for (key, value) in &config.settings {
            match live.get(key) {
                Some(current) if *current == sysctl::normalize(value) => continue,
                // The key appears once its module is loaded (br_netfilter: net.bridge.*).
                None if missing_modules.is_empty() => {
                    return Err(PluginError::param(
                        "settings",
                        format!(
                            "host `{}` has no {}: its kernel lacks `{key}` (load the module that provides it with `modules`)",
                            request.host.name,
                            sysctl::proc_path(key)
                        ),
                    ))
                }
                _ => {}
            }
            changed_keys.push(Value::from(key.as_str()));
            ops.push(sysctl::set_value(key, value));
        }
        ops.push(sysctl::verify_values(&config.settings));
    }
    let mut plan = Plan::ops(ops);
    plan.outputs
        .insert("changed_keys".into(), Value::Array(changed_keys));
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use graphrun_plugin_kit::testkit::{self, assert_snapshot, render, Request, RECORDED};
    use serde_json::json;

    fn answer(
        modules: &'static str,
        values: &'static str,
    ) -> impl Fn(&graphrun_plugin_api::Probe) -> Option<graphrun_plugin_api::ProbeResult> {
        move |probe| match probe.name.as_str() {
            PROBE_MODULES => Some(testkit::ok(modules)),
            PROBE_VALUES => Some(testkit::ok(values)),
            _ => None,
        }
    }

    #[test]
    fn kubernetes_on_a_fresh_host_of_every_recorded_os() {
        for host in RECORDED {
            let plan = Request::new(json!({"kubernetes": true, "settings": {"vm.max_map_count": 262144}}))
                .host(&host)
                .plan(
                    &SysctlPlugin,
                    answer(
                        "br_netfilter no\n",
                        "net.bridge.bridge-nf-call-iptables\nnet.ipv4.ip_forward=0\nvm.max_map_count=65530\n",
                    ),
                )
                .unwrap();
            assert_snapshot(
                env!("CARGO_MANIFEST_DIR"),
                &format!("fresh-{}", host.name),
                &render(&plan),
            );
        }
    }

    #[test]
    fn a_host_already_set_gets_only_the_files_and_the_read_back() {
        let plan = Request::new(json!({"kubernetes": true}))
            .plan(
                &SysctlPlugin,
                answer(
                    "br_netfilter yes\n",
                    "net.bridge.bridge-nf-call-iptables=1\nnet.ipv4.ip_forward=1\n",
                ),
            )
            .unwrap();
        assert_eq!(plan.outputs["changed_keys"], json!([]));
        assert!(plan
            .ops
            .iter()
            .all(|op| !matches!(op, Op::Command { changes: true, .. })));
        assert_eq!(plan.ops.len(), 3, "{}", render(&plan));
    }

    #[test]
    fn a_key_the_kernel_lacks_is_a_clear_error() {
        let error = Request::new(json!({"settings": {"net.nope.x": 1}}))
            .plan(&SysctlPlugin, answer("", "net.nope.x\n"))
            .unwrap_err();
        assert!(
            error.message.contains("has no /proc/sys/net/nope/x"),
            "{error}"
        );
    }

    #[test]
    fn parameters_are_checked() {
        let error = |params| SysctlPlugin.validate(&serde_json::from_value(params).unwrap());
        assert!(error(json!({"kubernetes": true})).is_empty());
        assert_eq!(
            error(json!({}))[0].message,
            "nothing to do: set `settings`, `modules` or `kubernetes = true`"
        );
        assert_eq!(
            error(json!({"settings": {"a;b": 1}}))[0].param.as_deref(),
            Some("settings")
        );
        assert_eq!(
            error(json!({"settings": {"a.b": [1]}}))[0].param.as_deref(),
            Some("settings")
        );
        assert_eq!(
            error(json!({"modules": ["x y"]}))[0].param.as_deref(),
            Some("modules")
        );
        assert_eq!(
            error(json!({"modules": ["x"], "priority": 100}))[0]
                .param
                .as_deref(),
            Some("priority")
        );
    }
}
