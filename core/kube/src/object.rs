//! Which object: the four fields that name one, taken from a manifest or written by hand.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Names one object. `namespace` is `None` for cluster-scoped kinds, and for namespaced kinds
/// means the kubeconfig's namespace (as kubectl does).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// The reference of a manifest: its apiVersion, kind, metadata.namespace and metadata.name.
    pub fn of(object: &serde_json::Value) -> Result<Self, Error> {
        let text = |value: &serde_json::Value, field: &str| {
            value
                .as_str()
                .filter(|text| !text.is_empty())
                .map(str::to_string)
                .ok_or_else(|| Error::NotAnObject(format!("{field} is missing or not a string")))
        };
        Ok(ObjectRef {
            api_version: text(&object["apiVersion"], "apiVersion")?,
            kind: text(&object["kind"], "kind")?,
            namespace: object["metadata"]["namespace"].as_str().map(str::to_string),
            name: text(&object["metadata"]["name"], "metadata.name")?,
        })
    }

    /// (group, version): "apps/v1" → ("apps", "v1"); "v1" → ("", "v1").
    pub(crate) fn group_version(&self) -> (&str, &str) {
        self.api_version
            .split_once('/')
            .unwrap_or(("", self.api_version.as_str()))
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (group, _) = self.group_version();
        let kind = self.kind.to_lowercase();
        let kind = if group.is_empty() {
            kind
        } else {
            format!("{kind}.{group}")
        };
        match &self.namespace {
            Some(namespace) => write!(f, "{kind}/{} in namespace {namespace}", self.name),
            None => write!(f, "{kind}/{}", self.name),
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
            "metadata": {"name": "web", "namespace": "demo"}, "spec": {}});
        let object = ObjectRef::of(&deployment).unwrap();
        assert_eq!(
            object,
            ObjectRef::new("apps/v1", "Deployment", Some("demo"), "web")
        );
        assert_eq!(object.group_version(), ("apps", "v1"));
        assert_eq!(object.to_string(), "deployment.apps/web in namespace demo");

        let node =
            ObjectRef::of(&json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}));
        let node = node.unwrap();
        assert_eq!(node.group_version(), ("", "v1"));
        assert_eq!(node.to_string(), "node/n1");
    }

    #[test]
    fn a_manifest_without_a_name_is_refused_with_the_missing_field() {
        let error =
            ObjectRef::of(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}))
                .unwrap_err();
        assert!(
            error.to_string().contains("metadata.name is missing"),
            "{error}"
        );
        let error = ObjectRef::of(&json!({"kind": "ConfigMap"})).unwrap_err();
        assert!(
            error.to_string().contains("apiVersion is missing"),
            "{error}"
        );
    }
}
