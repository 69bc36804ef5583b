//! Kubernetes data that ops and probes carry: which object, and what to wait for.
//!
//! Plain serde types (as `kube-core` carries types without a client): a plugin names objects and
//! conditions, and the engine talks to the API server from the control machine with the
//! kubeconfig the op names (a cluster step's `kubeconfig` output).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Op, Probe, ProbeQuery};

/// Names one Kubernetes object. `namespace` is `None` for cluster-scoped kinds, and for
/// namespaced kinds means the kubeconfig's namespace (as kubectl does).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KubeRef {
    /// `v1`, `apps/v1`, `apiextensions.k8s.io/v1`, …
    pub api_version: String,
    /// `Deployment`, `Node`, `CustomResourceDefinition`, …
    pub kind: String,
    /// Namespace of a namespaced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl KubeRef {
    /// A cluster-scoped object, or a namespaced one in the kubeconfig's namespace.
    pub fn new(api_version: &str, kind: &str, name: &str) -> Self {
        KubeRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: None,
            name: name.to_string(),
        }
    }

    /// The same object in `namespace`.
    pub fn in_namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_string());
        self
    }

    /// The object a manifest describes (its `apiVersion`, `kind`, `metadata.namespace` and
    /// `metadata.name`), or `None` when one of the three required fields is missing.
    pub fn of(object: &serde_json::Value) -> Option<Self> {
        let text = |value: &serde_json::Value| {
            value
                .as_str()
                .filter(|text| !text.is_empty())
                .map(str::to_string)
        };
        Some(KubeRef {
            api_version: text(&object["apiVersion"])?,
            kind: text(&object["kind"])?,
            namespace: text(&object["metadata"]["namespace"]),
            name: text(&object["metadata"]["name"])?,
        })
    }
}

impl fmt::Display for KubeRef {
    /// `Deployment demo/web`, `Node n1`: the kind as manifests spell it, then the name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// What a [`crate::Op::KubeWait`] waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "until", rename_all = "kebab-case")]
pub enum Wait {
    /// The object's `.status.conditions[type == condition].status` is `"True"`: a node
    /// `Ready`, a Deployment `Available`, a CRD `Established`.
    Condition {
        /// The condition's type.
        condition: String,
    },
    /// A Deployment's rollout is complete: every replica updated, available, and observed.
    Rollout,
}

impl Wait {
    /// Waits until the condition of this type is `"True"`.
    pub fn condition(condition: &str) -> Self {
        Wait::Condition {
            condition: condition.to_string(),
        }
    }
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wait::Condition { condition } => write!(f, "{condition}"),
            Wait::Rollout => f.write_str("rollout complete"),
        }
    }
}

impl Op {
    /// Server-side apply of `object` (field manager `graphrun`) to the cluster of `kubeconfig`.
    pub fn kube_apply(kubeconfig: &str, object: serde_json::Value) -> Self {
        Op::KubeApply {
            kubeconfig: kubeconfig.to_string(),
            object,
            dry_run: false,
        }
    }

    /// Waits at most `timeout` (whole seconds, at least one) until `target` reaches `wait`.
    pub fn kube_wait(
        kubeconfig: &str,
        target: KubeRef,
        wait: Wait,
        timeout: std::time::Duration,
    ) -> Self {
        Op::KubeWait {
            kubeconfig: kubeconfig.to_string(),
            target,
            wait,
            timeout_secs: timeout.as_secs().max(1),
        }
    }

    /// The summary line of a Kubernetes op.
    pub(crate) fn kube_summary(&self) -> String {
        match self {
            Op::KubeApply {
                object, dry_run, ..
            } => {
                let name = KubeRef::of(object)
                    .map_or_else(|| "an object without a name".to_string(), |r| r.to_string());
                let dry = if *dry_run { " (dry run)" } else { "" };
                format!("apply {name}{dry}")
            }
            Op::KubeWait {
                target,
                wait,
                timeout_secs,
                ..
            } => format!("wait for {target}: {wait} (at most {timeout_secs}s)"),
            other => unreachable!("not a Kubernetes op: {other:?}"),
        }
    }
}

impl Probe {
    /// Reads `target` from the cluster: exit code 0 and the object as JSON in stdout when it
    /// exists, exit code 1 and empty stdout when it does not.
    pub fn kube_get(name: &str, kubeconfig: &str, target: KubeRef) -> Self {
        Probe {
            name: name.to_string(),
            query: ProbeQuery::KubeGet {
                kubeconfig: kubeconfig.to_string(),
                target,
            },
        }
    }

    /// Asks the cluster its version: the server's `/version` JSON (`gitVersion`, `major`,
    /// `minor`, …) in stdout.
    pub fn kube_version(name: &str, kubeconfig: &str) -> Self {
        Probe {
            name: name.to_string(),
            query: ProbeQuery::KubeVersion {
                kubeconfig: kubeconfig.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_manifest_names_its_object() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo"}});
        let web = KubeRef::of(&deployment).unwrap();
        assert_eq!(
            web,
            KubeRef::new("apps/v1", "Deployment", "web").in_namespace("demo")
        );
        assert_eq!(web.to_string(), "Deployment demo/web");
        assert_eq!(KubeRef::new("v1", "Node", "n1").to_string(), "Node n1");
        assert_eq!(KubeRef::of(&json!({"kind": "Node"})), None);
    }

    #[test]
    fn waits_read_as_json_tagged_by_until() {
        let ready = serde_json::to_value(Wait::condition("Ready")).unwrap();
        assert_eq!(ready, json!({"until": "condition", "condition": "Ready"}));
        let rollout: Wait = serde_json::from_value(json!({"until": "rollout"})).unwrap();
        assert_eq!(rollout, Wait::Rollout);
        assert_eq!(Wait::condition("Available").to_string(), "Available");
    }

    #[test]
    fn kubernetes_ops_target_the_cluster_and_say_what_they_do() {
        let web = KubeRef::new("apps/v1", "Deployment", "web").in_namespace("demo");
        let wait = Op::kube_wait(
            "/k/config",
            web,
            Wait::Rollout,
            std::time::Duration::from_secs(90),
        );
        assert_eq!(wait.target(), crate::op::Target::Cluster);
        assert!(!wait.may_change());
        assert_eq!(
            wait.summary(),
            "wait for Deployment demo/web: rollout complete (at most 90s)"
        );
        let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}});
        let apply = Op::kube_apply("/k/config", object);
        assert!(apply.may_change());
        assert_eq!(apply.summary(), "apply Namespace demo");
        let json = serde_json::to_value(&apply).unwrap();
        assert_eq!(json["op"], "kube-apply");
        assert_eq!(serde_json::from_value::<Op>(json).unwrap(), apply);
    }

    #[test]
    fn probes_keep_the_shell_form_on_the_wire_and_add_kube_ones() {
        let shell = Probe::run("os", crate::Run::Shell("cat /etc/os-release".into()));
        let json = serde_json::to_value(&shell).unwrap();
        assert_eq!(json, json!({"name": "os", "run": "cat /etc/os-release"}));
        assert_eq!(serde_json::from_value::<Probe>(json).unwrap(), shell);

        let get = Probe::kube_get("ns", "/k/config", KubeRef::new("v1", "Namespace", "demo"));
        let json = serde_json::to_value(&get).unwrap();
        assert_eq!(json["kube-get"]["target"]["kind"], "Namespace");
        assert_eq!(serde_json::from_value::<Probe>(json).unwrap(), get);
        let version = Probe::kube_version("v", "/k/config");
        let json = serde_json::to_value(&version).unwrap();
        assert_eq!(serde_json::from_value::<Probe>(json).unwrap(), version);
    }
}
