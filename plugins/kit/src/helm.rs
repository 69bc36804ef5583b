//! Helm chart releases: `helm upgrade --install` planned only when the release differs.
//!
//! A chart step asks [`Release::probe`] first (one round trip: the host's Helm version, its
//! repositories, the release's chart and status, the values it was installed with), then
//! [`Release::plan`] gives the ops: the repository added, the values in a 0600 file, and the
//! upgrade only when the release is missing, not deployed, or its chart version or values
//! differ, so a second apply makes no new revision. Values never reach a command line (secret
//! values come from `{ env = … }` / `{ file = … }` parameters, which the engine redacts).
//!
//! ```
//! use graphrun_plugin_kit::helm::Release;
//!
//! let mut release = Release::new("cert-manager", "jetstack/cert-manager", "cert-manager");
//! release.version = Some("v1.21.1".into());
//! release.repository = Some(("jetstack", "https://charts.jetstack.io").into());
//! release.values = serde_json::json!({"crds": {"enabled": true}}).as_object().unwrap().clone();
//! release.wait = Some("5m".into());
//! release.validate().unwrap();
//! // plan: `release.probe()` in the first answer, then `release.plan(request, None)`.
//! ```

mod probe;

use graphrun_plugin_api::{Op, PlanRequest, PluginError, Probe, Run};
use serde_json::{Map, Value};

pub use probe::Installed;

/// Where values files live on the host (one per release, mode 0600, folder 0700).
pub const VALUES_DIR: &str = "/var/lib/graphrun/helm";

/// A Helm major version: their flags differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Major {
    /// Helm 3: `--wait`, `--atomic`.
    V3,
    /// Helm 4: `--wait=watcher` (a strategy), `--rollback-on-failure`.
    V4,
}

impl Major {
    /// The major of a version such as `v3.19.0` or `4.0.1`; `None` for anything else.
    pub fn of(version: &str) -> Option<Major> {
        match version.trim().trim_start_matches('v').split('.').next() {
            Some("3") => Some(Major::V3),
            Some("4") => Some(Major::V4),
            _ => None,
        }
    }
}

/// A chart repository, added under its name before charts are installed from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// The name charts are prefixed with (`jetstack` in `jetstack/cert-manager`).
    pub name: String,
    /// Its index URL.
    pub url: String,
}

impl Repository {
    /// `helm repo add --force-update` (a name bound to another URL is replaced). Plan it only
    /// when [`Installed::repositories`] lacks this name and URL.
    pub fn add(&self, helm: &str) -> Op {
        helm_op(
            helm,
            &["repo", "add", "--force-update", &self.name, &self.url],
        )
    }

    /// `helm repo update NAME`: a fresh index, so a newly pinned chart version is found.
    pub fn update(&self, helm: &str) -> Op {
        helm_op(helm, &["repo", "update", &self.name])
    }
}

/// A probe of the host's repositories alone (read by [`Installed::parse`]).
pub fn repositories_probe(name: &str, helm: &str) -> Probe {
    Probe::run(name, Run::Shell(probe::repositories_script(helm)))
}

impl<N: Into<String>, U: Into<String>> From<(N, U)> for Repository {
    fn from((name, url): (N, U)) -> Self {
        Repository {
            name: name.into(),
            url: url.into(),
        }
    }
}

/// One release of a chart in a namespace, as it should be.
#[derive(Clone, Debug, PartialEq)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// `REPO/CHART`, `oci://REGISTRY/PATH`, or an absolute path on the host.
    pub chart: String,
    /// Namespace, created when missing.
    pub namespace: String,
    /// Exact chart version; without it an installed release is upgraded only when its values
    /// change.
    pub version: Option<String>,
    /// The values, as `-f` reads them (written to a 0600 file as JSON).
    pub values: Map<String, Value>,
    /// The repository `chart` comes from, added (or its URL corrected) when the host lacks it.
    pub repository: Option<Repository>,
    /// Kubeconfig path on the host; Helm's default (`~/.kube/config`) when unset.
    pub kubeconfig: Option<String>,
    /// Wait until the release's resources are ready, for at most this long (`"5m"`).
    pub wait: Option<String>,
    /// Roll back a failed upgrade (`--atomic` in Helm 3, `--rollback-on-failure` in 4).
    pub rollback_on_failure: bool,
    /// The helm binary on the host.
    pub helm: String,
    /// Folder of the values file on the host.
    pub values_dir: String,
}

impl Release {
    /// A release with no values, no repository, no wait, `helm` from the PATH.
    pub fn new(name: &str, chart: &str, namespace: &str) -> Self {
        Release {
            name: name.into(),
            chart: chart.into(),
            namespace: namespace.into(),
            version: None,
            values: Map::new(),
            repository: None,
            kubeconfig: None,
            wait: None,
            rollback_on_failure: false,
            helm: "helm".into(),
            values_dir: VALUES_DIR.into(),
        }
    }

    /// Checks names, the chart reference, version and timeout, before any host is touched.
    pub fn validate(&self) -> Result<(), PluginError> {
        check_name("name", &self.name, 53, true)?;
        check_name("namespace", &self.namespace, 63, false)?;
        if let Some(version) = &self.version {
            let exact = !version.is_empty()
                && version
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".+-".contains(&b));
            if !exact {
                return Err(PluginError::param(
                    "version",
                    format!("`{version}` is not an exact chart version (such as \"1.2.3\"): a range would make every apply look like a change"),
                ));
            }
        }
        if let Some(timeout) = &self.wait {
            check_duration(timeout)?;
        }
        self.check_chart()
    }

    fn check_chart(&self) -> Result<(), PluginError> {
        let chart = &self.chart;
        let from_repository = !(chart.starts_with("oci://") || chart.starts_with('/'));
        match (&self.repository, chart.split_once('/')) {
            _ if chart.is_empty() => Err(PluginError::param("chart", "is empty")),
            (Some(repository), _) if !from_repository => Err(PluginError::param(
                "chart",
                format!("`{chart}` is not in a repository: remove the repository `{}` or name the chart `{}/CHART`", repository.name, repository.name),
            )),
            (Some(repository), prefix) if prefix.map(|(name, _)| name) != Some(repository.name.as_str()) => {
                Err(PluginError::param(
                    "chart",
                    format!("`{chart}` does not come from the repository `{}`: name it `{}/CHART`", repository.name, repository.name),
                ))
            }
            (None, None) if from_repository => Err(PluginError::param(
                "chart",
                format!("`{chart}` is neither REPOSITORY/CHART, oci://… nor an absolute path on the host"),
            )),
            _ => Ok(()),
        }
    }

    /// The name of this release's probe (unique per namespace and release).
    pub fn probe_name(&self) -> String {
        format!("helm-release:{}/{}", self.namespace, self.name)
    }

    /// The values file on the host.
    pub fn values_path(&self) -> String {
        format!("{}/{}.{}.json", self.values_dir, self.namespace, self.name)
    }

    /// The read-only probe: Helm's version, the repositories, the release and its values.
    pub fn probe(&self) -> Probe {
        Probe::run(&self.probe_name(), Run::Shell(probe::script(self)))
    }

    /// What the probe found ([`Installed::default`] when it did not run).
    pub fn installed(&self, request: &PlanRequest) -> Installed {
        Installed::parse(crate::probe::stdout(request, &self.probe_name()))
    }

    /// The ops that make the release so, after [`Release::probe`] ran. `major` is the Helm
    /// the host will have (a step that installs Helm knows it); otherwise the probe's.
    pub fn plan(
        &self,
        request: &PlanRequest,
        major: Option<Major>,
    ) -> Result<Vec<Op>, PluginError> {
        let installed = self.installed(request);
        let major = major.or(installed.major);
        let mut ops = Vec::new();
        if let Some(repository) = &self.repository {
            if installed.repositories.get(&repository.name) != Some(&repository.url) {
                ops.push(repository.add(&self.helm));
            }
        }
        ops.push(Op::directory(&self.values_dir).with_mode("0700"));
        let values = serde_json::to_string_pretty(&self.values).expect("JSON values serialize");
        ops.push(Op::file(&self.values_path(), &format!("{values}\n")).with_mode("0600"));
        if installed.is_current(self) {
            return Ok(ops);
        }
        if let Some(repository) = &self.repository {
            ops.push(repository.update(&self.helm));
        }
        ops.push(Op::command(Run::Argv(self.upgrade_argv(major)?)));
        Ok(ops)
    }

    /// `helm upgrade --install` with this release's flags for Helm `major`.
    pub fn upgrade_argv(&self, major: Option<Major>) -> Result<Vec<String>, PluginError> {
        let mut argv: Vec<String> = [&self.helm, "upgrade", "--install", &self.name, &self.chart]
            .map(String::from)
            .into();
        let mut push = |words: &[&str]| argv.extend(words.iter().map(|w| w.to_string()));
        push(&["--namespace", &self.namespace, "--create-namespace"]);
        if let Some(version) = &self.version {
            push(&["--version", version]);
        }
        push(&["-f", &self.values_path()]);
        if let Some(kubeconfig) = &self.kubeconfig {
            push(&["--kubeconfig", kubeconfig]);
        }
        if let Some(timeout) = &self.wait {
            // Helm 4's --wait takes a strategy; alone it means "watcher", as Helm 3's --wait.
            push(&[if major == Some(Major::V4) {
                "--wait=watcher"
            } else {
                "--wait"
            }]);
            push(&["--timeout", timeout]);
        }
        if self.rollback_on_failure {
            match major {
                Some(Major::V3) => push(&["--atomic"]),
                Some(Major::V4) => push(&["--rollback-on-failure"]),
                None => {
                    return Err(PluginError::new(format!(
                        "rolling back release `{}` on failure needs to know the Helm version (`--atomic` in Helm 3, `--rollback-on-failure` in 4), and helm is not on the host yet: install it in an earlier step",
                        self.name
                    )))
                }
            }
        }
        Ok(argv)
    }
}

/// A helm command that changes the host.
fn helm_op(helm: &str, words: &[&str]) -> Op {
    let mut argv = vec![helm.to_string()];
    argv.extend(words.iter().map(|w| w.to_string()));
    Op::command(Run::Argv(argv))
}

/// A release name (Helm: at most 53 characters, DNS-1123 with dots) or a namespace (a label).
fn check_name(param: &str, name: &str, max: usize, dots: bool) -> Result<(), PluginError> {
    if crate::names::is_dns1123(name, max, dots) {
        Ok(())
    } else {
        Err(PluginError::param(
            param,
            format!("`{name}` is not a valid {param}: lower-case letters, digits and `-`{}, at most {max} characters, starting and ending with a letter or digit", if dots { " or `.`" } else { "" }),
        ))
    }
}

/// A Go duration as Helm's `--timeout` reads it, such as `90s`, `5m` or `1h30m`.
fn check_duration(text: &str) -> Result<(), PluginError> {
    match duration_seconds(text) {
        Some(_) => Ok(()),
        None => Err(PluginError::param(
            "wait",
            format!("`{text}` is not a duration such as \"90s\", \"5m\" or \"1h30m\""),
        )),
    }
}

/// Seconds in a Go duration of hours, minutes and seconds (`1h30m`, `90s`); `None` for anything
/// else, and for zero.
pub fn duration_seconds(text: &str) -> Option<u64> {
    let (mut total, mut number) = (0u64, None::<u64>);
    for c in text.chars() {
        match (c, number) {
            ('0'..='9', _) => {
                number = Some(number.unwrap_or(0).checked_mul(10)? + u64::from(c as u8 - b'0'))
            }
            ('h' | 'm' | 's', Some(n)) => {
                let unit = match c {
                    'h' => 3600,
                    'm' => 60,
                    _ => 1,
                };
                total = total.checked_add(n.checked_mul(unit)?)?;
                number = None;
            }
            _ => return None,
        }
    }
    (number.is_none() && total > 0).then_some(total)
}

#[cfg(test)]
mod tests;
