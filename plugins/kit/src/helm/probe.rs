//! The release probe: one shell script printing four sections, and what they say.

use std::collections::BTreeMap;

use graphrun_plugin_api::shell::{join, quote};
use serde_json::{Map, Value};

use super::{Major, Release};

/// Starts each section of the probe's output (no JSON line starts so).
const SECTION: &str = "#graphrun:";

/// What the host has, as the probe printed it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Installed {
    /// The host's Helm (`None`: not installed, or not on the PATH).
    pub major: Option<Major>,
    /// Repositories by name: their URLs.
    pub repositories: BTreeMap<String, String>,
    /// The release's chart (`NAME-VERSION`) and status, when it exists.
    pub release: Option<(String, String)>,
    /// The values it was installed with (`helm get values`: the user-supplied ones).
    pub values: Map<String, Value>,
}

/// The release probe's script. Every part may fail (no helm, no cluster, no release): its
/// section is then empty, and the release counts as missing (the upgrade then says why it
/// cannot run).
pub(super) fn script(release: &Release) -> String {
    let helm = quote(&release.helm);
    let mut target = vec!["--namespace".to_string(), release.namespace.clone()];
    if let Some(kubeconfig) = &release.kubeconfig {
        target.extend(["--kubeconfig".to_string(), kubeconfig.clone()]);
    }
    let target = join(&target);
    let filter = quote(&format!("^{}$", release.name.replace('.', "\\.")));
    let name = quote(&release.name);
    sections(&[
        (
            "version",
            format!("{helm} version --template '{{{{.Version}}}}'"),
        ),
        ("repositories", format!("{helm} repo list -o json")),
        (
            "release",
            format!("{helm} list {target} --filter {filter} --deployed --failed --pending -o json"),
        ),
        (
            "values",
            format!("{helm} get values {name} {target} -o json"),
        ),
    ])
}

/// The script of a probe of the repositories alone.
pub(super) fn repositories_script(helm: &str) -> String {
    sections(&[("repositories", format!("{} repo list -o json", quote(helm)))])
}

/// Each command's output under its section line; the script always succeeds.
fn sections(commands: &[(&str, String)]) -> String {
    commands
        .iter()
        .map(|(section, command)| {
            format!("echo '{SECTION}{section}'\n{command} 2>/dev/null; echo\n")
        })
        .collect::<String>()
        + "exit 0"
}

impl Installed {
    /// Reads the probe's output (empty: nothing known, so everything is planned).
    pub fn parse(stdout: &str) -> Self {
        let mut sections: BTreeMap<&str, String> = BTreeMap::new();
        let mut current = None;
        for line in stdout.lines() {
            if let Some(name) = line.strip_prefix(SECTION) {
                current = Some(name);
            } else if let Some(name) = current {
                sections.entry(name).or_default().push_str(line);
            }
        }
        let json = |name: &str| -> Value {
            sections
                .get(name)
                .and_then(|text| serde_json::from_str(text.trim()).ok())
                .unwrap_or(Value::Null)
        };
        let repositories = match json("repositories") {
            Value::Array(items) => items
                .iter()
                .filter_map(|item| {
                    Some((item["name"].as_str()?.into(), item["url"].as_str()?.into()))
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let release = json("release").as_array().and_then(|items| {
            let item = items.first()?;
            Some((
                item["chart"].as_str()?.into(),
                item["status"].as_str()?.into(),
            ))
        });
        let values = match json("values") {
            Value::Object(values) => values,
            _ => Map::new(),
        };
        Installed {
            major: sections.get("version").and_then(|v| Major::of(v)),
            repositories,
            release,
            values,
        }
    }

    /// Whether `release` is deployed with its chart version and values: nothing to do.
    pub fn is_current(&self, release: &Release) -> bool {
        let Some((chart, status)) = &self.release else {
            return false;
        };
        let version_matches = release
            .version
            .as_ref()
            .map_or(true, |version| chart.ends_with(&format!("-{version}")));
        status == "deployed"
            && version_matches
            && same(
                &Value::Object(self.values.clone()),
                &Value::Object(release.values.clone()),
            )
    }
}

/// Equal values, numbers compared by value: Helm reads `2.0` back as `2`.
fn same(installed: &Value, wanted: &Value) -> bool {
    match (installed, wanted) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(key, a)| b.get(key).is_some_and(|b| same(a, b)))
        }
        _ => installed == wanted,
    }
}
