//! The built-in `helm` step: a pinned Helm 3 or Helm 4 from the artifacts (get.helm.sh's release
//! tarball and its `.sha256sum`, or the playbook's mirror), the binary extracted only when the
//! host's Helm is another version; chart repositories (name → URL); and optionally chart
//! releases (`charts`), each installed or upgraded only when its chart version or values differ
//! (the kit's [`graphrun_plugin_kit::helm`], which the add-on steps use too).
//!
//! Probes (one round trip): the OS (for the architecture), the repositories, each release.

mod charts;
mod install;

use std::collections::BTreeMap;

use graphrun_plugin_api::{
    ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo,
};
use graphrun_plugin_kit::helm::{self, Installed, Major, Release, Repository};
use graphrun_plugin_kit::os::{self, Os};
use graphrun_plugin_kit::params::{specs, Args, Param};
use graphrun_plugin_kit::probe;

const PROBE_REPOSITORIES: &str = "helm_repositories";

const PARAMS: &[Param] = &[
    Param::required("version", ParamKind::String, "Helm version, 3.x or 4.x, e.g. \"3.19.0\" (their flags differ: graphrun uses the right ones)"),
    Param::optional("path", ParamKind::String, "Where the binary goes on the host").default_str("/usr/local/bin/helm"),
    Param::optional("repositories", ParamKind::StringMap, "Chart repositories, name = URL (charts from them are named NAME/CHART)"),
    Param::optional("charts", ParamKind::Table, "Releases by name: { chart, namespace, version, values, wait, rollback_on_failure } (see the README); give such a step `once = true` when it runs on several hosts"),
    Param::optional("host_kubeconfig", ParamKind::String, "Kubeconfig on the host for the releases (default: the user's ~/.kube/config, as the kubectl step puts it)"),
];

/// The `helm` step.
#[derive(Debug, Default)]
pub struct HelmPlugin;

/// The step's parameters, checked.
#[derive(Debug, Clone, PartialEq)]
struct Config {
    version: String,
    path: String,
    repositories: Vec<Repository>,
    releases: Vec<Release>,
}

impl Plugin for HelmPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "helm".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Installs a pinned Helm 3 or 4, adds chart repositories, and installs or upgrades chart releases only when they differ".into(),
            params: specs(PARAMS),
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        Config::from_params(params).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let config = Config::from_params(&request.params)?;
        let Some(os) = Os::of(request) else {
            let mut probes = vec![
                os::probe(),
                helm::repositories_probe(PROBE_REPOSITORIES, &config.path),
            ];
            probes.extend(config.releases.iter().map(Release::probe));
            return Ok(PlanResponse::Probe { probes });
        };
        let mut ops = install::ops(&config.version, &config.path, &os.arch)?;
        let present = Installed::parse(probe::stdout(request, PROBE_REPOSITORIES)).repositories;
        for repository in &config.repositories {
            if present.get(&repository.name) != Some(&repository.url) {
                ops.push(repository.add(&config.path));
            }
        }
        let major = Major::of(&config.version);
        for release in &config.releases {
            for op in release.plan(request, major)? {
                // Releases share the values folder and repositories: each op once.
                if !ops.contains(&op) {
                    ops.push(op);
                }
            }
        }
        Ok(Plan::ops(ops).into())
    }
}

impl Config {
    fn from_params(params: &Params) -> Result<Self, PluginError> {
        let args = Args::new(PARAMS, params);
        let version = args.required_str("version")?.to_string();
        if !args.is_unrendered("version") {
            install::check_version(&version)?;
        }
        let path = args.required_str("path")?.to_string();
        if !path.starts_with('/') && !args.is_unrendered("path") {
            return Err(PluginError::param(
                "path",
                format!("`{path}` is not an absolute path on the host"),
            ));
        }
        let repositories = repositories(args.string_map("repositories")?)?;
        let kubeconfig = args.str("host_kubeconfig")?;
        let releases = match args.table("charts")? {
            Some(table) => charts::releases(&table, &repositories, &path, kubeconfig)?,
            None => Vec::new(),
        };
        Ok(Config {
            version,
            path,
            repositories,
            releases,
        })
    }
}

fn repositories(map: BTreeMap<String, String>) -> Result<Vec<Repository>, PluginError> {
    map.into_iter()
        .map(|(name, url)| {
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !name_ok {
                return Err(PluginError::param(
                    "repositories",
                    format!("`{name}` is not a repository name (letters, digits, `-`, `_`, `.`)"),
                ));
            }
            let scheme = url.starts_with("http://") || url.starts_with("https://");
            if !scheme && !graphrun_plugin_api::params::is_template(&url) {
                return Err(PluginError::param(
                    "repositories",
                    format!("`{url}` (repository `{name}`) is not an http:// or https:// URL (OCI registries need no repository: name the chart oci://…)"),
                ));
            }
            Ok(Repository { name, url })
        })
        .collect()
}

#[cfg(test)]
mod tests;
