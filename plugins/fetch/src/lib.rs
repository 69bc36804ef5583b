//! The built-in `fetch` step: copy a file from each host to the control machine (mode 0600),
//! e.g. the kubeconfig a cluster installer wrote, for later steps to use.

use graphrun_plugin_api::{
    Op, ParamKind, ParamSpec, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError,
    PluginInfo,
};

/// Copies `path` from the host to `to` under graphrun's per-host fetch folder.
#[derive(Debug, Default)]
pub struct FetchPlugin;

impl Plugin for FetchPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "fetch".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Copies a file from the host to the control machine (mode 0600)".into(),
            params: vec![
                ParamSpec::required("path", ParamKind::String, "Path on the host"),
                ParamSpec::optional(
                    "to",
                    ParamKind::String,
                    "Local path; relative paths (default: the file's name) land in .graphrun/<playbook>/fetched/<host>/",
                ),
            ],
            outputs: vec!["local_path".into()],
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        target(params).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let path = request.params.required_str("path")?;
        let to = target(&request.params)?;
        let local = if to.starts_with('/') {
            to.clone()
        } else {
            format!("{}/{to}", request.fetch_dir)
        };
        let mut plan = Plan::ops(vec![Op::Fetch {
            path: path.into(),
            to,
        }]);
        plan.outputs.insert("local_path".into(), local.into());
        Ok(plan.into())
    }
}

fn target(params: &Params) -> Result<String, PluginError> {
    let path = params.host_path("path")?;
    match params.str("to")? {
        Some(to) => Ok(to.to_string()),
        None => path
            .rsplit('/')
            .next()
            .filter(|name| !name.is_empty())
            .map(str::to_string)
            .ok_or_else(|| PluginError::param("path", "names no file: set `to`")),
    }
}

#[cfg(feature = "export")]
graphrun_plugin_api::export_plugin!(FetchPlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fetches_into_the_hosts_folder_and_says_where() {
        let request = PlanRequest {
            params: serde_json::from_value(json!({"path": "/etc/rancher/rke2/rke2.yaml"})).unwrap(),
            fetch_dir: "/work/.graphrun/pb/fetched/master".into(),
            ..Default::default()
        };
        let PlanResponse::Plan(plan) = FetchPlugin.plan(&request).unwrap() else {
            panic!("expected a plan")
        };
        assert_eq!(
            plan.ops,
            vec![Op::Fetch {
                path: "/etc/rancher/rke2/rke2.yaml".into(),
                to: "rke2.yaml".into()
            }]
        );
        assert_eq!(
            plan.outputs["local_path"],
            json!("/work/.graphrun/pb/fetched/master/rke2.yaml")
        );
    }
}
