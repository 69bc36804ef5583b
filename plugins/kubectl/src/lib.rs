//! The built-in `kubectl` step: a pinned kubectl from the artifacts (dl.k8s.io's binary and its
//! `.sha256`, or the playbook's mirror), installed with mode 0755; the cluster's kubeconfig (a
//! file on the control machine, usually a cluster step's `kubeconfig` output) as
//! `~/.kube/config` (0600) of the configured user; `kubectl version --client`, and
//! `kubectl get nodes` when a cluster answers (output `nodes`: what it printed), with a warning
//! when kubectl is more than one minor version away from the API server (kubectl's supported
//! skew).
//!
//! Probes (one round trip): the OS (for the architecture) and the user's home.

mod cluster_check;

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{
    Attrs, Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo,
    Probe, Run,
};
use graphrun_plugin_kit::artifacts;
use graphrun_plugin_kit::kube_version::Version;
use graphrun_plugin_kit::os::{self, Os};
use graphrun_plugin_kit::params::{specs, Args, Param};
use graphrun_plugin_kit::probe;

const PROBE_USER: &str = "kubeconfig_user";

const PARAMS: &[Param] = &[
    Param::required("version", ParamKind::String, "kubectl version, e.g. \"1.34.5\": the API server's minor version or one away"),
    Param::optional("path", ParamKind::String, "Where the binary goes on the host").default_str("/usr/local/bin/kubectl"),
    Param::optional("kubeconfig", ParamKind::String, "The cluster's kubeconfig on the control machine (a cluster step's `kubeconfig` output), uploaded as ~/.kube/config with mode 0600"),
    Param::optional("user", ParamKind::String, "Whose ~/.kube/config: by default the user graphrun logs in as (the one sudo was called by, with `become`)"),
];

/// The `kubectl` step.
#[derive(Debug, Default)]
pub struct KubectlPlugin;

/// The step's parameters, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    version: String,
    path: String,
    kubeconfig: Option<String>,
    user: Option<String>,
}

impl Plugin for KubectlPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "kubectl".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Installs a pinned kubectl, puts the cluster's kubeconfig in ~/.kube/config (0600) and checks that the cluster answers".into(),
            params: specs(PARAMS),
            outputs: vec![cluster_check::OUTPUT.into()],
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        Config::from_params(params).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let config = Config::from_params(&request.params)?;
        let Some(os) = Os::of(request) else {
            let mut probes = vec![os::probe()];
            if config.kubeconfig.is_some() {
                probes.push(user_probe(config.user.as_deref()));
            }
            return Ok(PlanResponse::Probe { probes });
        };
        let download = artifacts::kubectl(&config.version, &os.arch)?;
        let mut ops = vec![
            download.to(&config.path).with_mode("0755"),
            // In `plan`, before the binary is there, there is nothing to ask.
            Op::check(Run::Shell(format!(
                "[ -x {path} ] || exit 0\n{path} version --client",
                path = quote(&config.path)
            ))),
        ];
        if let Some(kubeconfig) = &config.kubeconfig {
            let (user, home) = user_and_home(request, config.user.as_deref())?;
            let owner = |mode: &str| Attrs {
                mode: Some(mode.into()),
                owner: Some(user.clone()),
                group: None,
            };
            let dir = format!("{home}/.kube");
            let target = format!("{dir}/config");
            ops.push(Op::directory(&dir).with_attrs(owner("0700")));
            ops.push(Op::Upload {
                source: kubeconfig.clone(),
                path: target.clone(),
                sha256: None,
                attrs: owner("0600"),
            });
            let client = Version::parse(&config.version).map(|v| v.minor);
            ops.push(cluster_check::op(&config.path, &target, client));
        }
        Ok(Plan::ops(ops).into())
    }
}

impl Config {
    fn from_params(params: &Params) -> Result<Self, PluginError> {
        let args = Args::new(PARAMS, params);
        let version = args.required_str("version")?.to_string();
        if !args.is_unrendered("version") {
            // The URL pattern's own check (any architecture does to check the version).
            artifacts::kubectl(&version, "x86_64")?;
        }
        let path = args.required_str("path")?;
        if !path.starts_with('/') && !args.is_unrendered("path") {
            return Err(PluginError::param(
                "path",
                format!("`{path}` is not an absolute path on the host"),
            ));
        }
        Ok(Config {
            version,
            path: path.to_string(),
            kubeconfig: args.str("kubeconfig")?.map(str::to_string),
            user: args.str("user")?.map(str::to_string),
        })
    }
}

/// Prints `NAME:HOME` of the user (by default the login user, also under sudo).
fn user_probe(user: Option<&str>) -> Probe {
    let user = user.map_or_else(|| "\"${SUDO_USER:-$(id -un)}\"".to_string(), quote);
    Probe::run(
        PROBE_USER,
        Run::Shell(format!("getent passwd {user} | cut -d: -f1,6")),
    )
}

fn user_and_home(
    request: &PlanRequest,
    wanted: Option<&str>,
) -> Result<(String, String), PluginError> {
    let found = probe::stdout(request, PROBE_USER).trim();
    match found.split_once(':') {
        Some((user, home)) if home.starts_with('/') => Ok((user.into(), home.into())),
        _ => Err(PluginError::param(
            "user",
            format!(
                "{} has no user {} with a home folder to put ~/.kube/config in",
                request.host.name,
                wanted.map_or("to log in as".to_string(), |u| format!("`{u}`"))
            ),
        )),
    }
}

#[cfg(test)]
mod tests;
