//! The built-in `command` step: run a command on each host, guarded so re-runs are no-ops.

use graphrun_plugin_api::{
    Op, ParamKind, ParamSpec, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError,
    PluginInfo, Run,
};

/// The output a `capture = true` step fills with the command's trimmed stdout.
const STDOUT: &str = "stdout";

/// Runs `run` unless `creates` exists or `unless` succeeds; `changed = false` marks a check.
#[derive(Debug, Default)]
pub struct CommandPlugin;

impl Plugin for CommandPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "command".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Runs a command (a string under sh -c, or an argv), guarded by creates/unless"
                .into(),
            params: vec![
                ParamSpec::required(
                    "run",
                    ParamKind::Command,
                    "A string run by `sh -c`, or a list of words run as an argv",
                ),
                ParamSpec::optional(
                    "creates",
                    ParamKind::String,
                    "Skip when this path exists on the host",
                ),
                ParamSpec::optional(
                    "unless",
                    ParamKind::Command,
                    "Skip when this command succeeds (it must not change anything)",
                ),
                ParamSpec::optional(
                    "changed",
                    ParamKind::Bool,
                    "false for a read-only check: never counts as a change, and `plan` runs it",
                )
                .with_default(true.into()),
                ParamSpec::optional("env", ParamKind::StringMap, "Extra environment variables"),
                ParamSpec::optional("cwd", ParamKind::String, "Working directory"),
                ParamSpec::optional(
                    "capture",
                    ParamKind::Bool,
                    "true: keep the command's trimmed stdout as the output `stdout` (whenever it runs; a read-only check runs in `plan` too)",
                ),
            ],
            outputs: vec![STDOUT.into()],
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        command_op(params).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        Ok(Plan::ops(vec![command_op(&request.params)?]).into())
    }
}

fn command_op(params: &Params) -> Result<Op, PluginError> {
    let run = run_param(params, "run")?.ok_or_else(|| PluginError::param("run", "is required"))?;
    let mut op = Op::check(run);
    if let Op::Command {
        creates,
        unless,
        changes,
        env,
        cwd,
        ..
    } = &mut op
    {
        *creates = params.str("creates")?.map(str::to_string);
        *unless = run_param(params, "unless")?;
        *changes = params.flag_or("changed", true)?;
        *env = params.string_map("env")?;
        *cwd = params.str("cwd")?.map(str::to_string);
        if let Some(bad) = env.keys().find(|name| !valid_env_name(name)) {
            return Err(PluginError::param(
                "env",
                format!("`{bad}` is not a valid variable name"),
            ));
        }
    }
    if params.flag_or("capture", false)? {
        op = op.capturing(STDOUT);
    }
    Ok(op)
}

fn run_param(params: &Params, name: &str) -> Result<Option<Run>, PluginError> {
    match params.get(name) {
        None => Ok(None),
        Some(serde_json::Value::String(text)) => Ok(Some(Run::Shell(text.clone()))),
        Some(_) => {
            let argv = params.string_list(name)?;
            if argv.is_empty() {
                return Err(PluginError::param(name, "the argv is empty"));
            }
            Ok(Some(Run::Argv(argv)))
        }
    }
}

fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(feature = "export")]
graphrun_plugin_api::export_plugin!(CommandPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(params: serde_json::Value) -> Result<PlanResponse, PluginError> {
        let request = PlanRequest {
            params: serde_json::from_value(params).unwrap(),
            ..Default::default()
        };
        CommandPlugin.plan(&request)
    }

    #[test]
    fn argv_and_guards_become_one_op() {
        let response =
            plan(json!({"run": ["touch", "/tmp/x y"], "creates": "/tmp/x y", "env": {"A": "1"}}));
        let PlanResponse::Plan(plan) = response.unwrap() else {
            panic!("expected a plan")
        };
        assert_eq!(
            serde_json::to_value(&plan.ops).unwrap(),
            json!([{"op": "command", "run": ["touch", "/tmp/x y"], "creates": "/tmp/x y", "env": {"A": "1"}}])
        );
    }

    #[test]
    fn a_check_never_changes() {
        let PlanResponse::Plan(plan) = plan(json!({"run": "test -d /", "changed": false})).unwrap()
        else {
            panic!("expected a plan")
        };
        assert!(!plan.ops[0].may_change());
    }

    #[test]
    fn capture_keeps_stdout_as_the_output() {
        let PlanResponse::Plan(plan) = plan(json!({"run": "hostname", "capture": true})).unwrap()
        else {
            panic!("expected a plan")
        };
        assert_eq!(
            serde_json::to_value(&plan.ops[0]).unwrap()["capture"],
            json!(STDOUT)
        );
        assert!(CommandPlugin.info().outputs.contains(&STDOUT.to_string()));
    }

    #[test]
    fn bad_env_names_are_refused() {
        let errors = CommandPlugin.validate(
            &serde_json::from_value(json!({"run": "true", "env": {"A-B": "1"}})).unwrap(),
        );
        assert_eq!(errors[0].param.as_deref(), Some("env"));
    }
}
