//! What a plugin tells the engine about itself: its parameters, outputs and needs.

use serde::{Deserialize, Serialize};

/// A plugin's self-description, used by validation and by `graphrun plugins NAME`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The name steps use in `plugin = "…"`.
    pub name: String,
    /// The plugin's own version (part of every node's input hash).
    pub version: String,
    /// One line: what the step does.
    pub summary: String,
    /// Every parameter the plugin accepts; any other key is a validation error.
    pub params: Vec<ParamSpec>,
    /// Names of the outputs the plugin's plans return (`steps.ID.outputs.NAME`).
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Whether plans need the host's gathered facts (`os_id`, `arch`, …); costs one round trip.
    #[serde(default)]
    pub needs_facts: bool,
    /// Whether plans need every host of the inventory ([`crate::PlanRequest::inventory`]).
    #[serde(default)]
    pub needs_inventory: bool,
    /// Whether the step's nodes must never run at the same time as another exclusive node on
    /// the same host (package managers hold a lock: two apt steps must not overlap).
    #[serde(default)]
    pub exclusive: bool,
    /// Whether a step of this plugin runs once, on the first host of its `on` list, instead of
    /// on every host (cluster-scoped work such as a chart or a Kubernetes object); a step's own
    /// `once` key overrides it.
    #[serde(default)]
    pub once: bool,
}

/// One parameter of a plugin.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// Key in the step table.
    pub name: String,
    /// Accepted value type.
    pub kind: ParamKind,
    /// Whether the step must set it.
    #[serde(default)]
    pub required: bool,
    /// Value used when the step does not set it (shown by `graphrun plugins NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// What it means, for `graphrun plugins NAME`.
    pub doc: String,
}

impl ParamSpec {
    /// An optional parameter without default.
    pub fn optional(name: &str, kind: ParamKind, doc: &str) -> Self {
        ParamSpec {
            name: name.to_string(),
            kind,
            required: false,
            default: None,
            doc: doc.to_string(),
        }
    }

    /// A parameter every step must set.
    pub fn required(name: &str, kind: ParamKind, doc: &str) -> Self {
        ParamSpec {
            required: true,
            ..Self::optional(name, kind, doc)
        }
    }

    /// Sets the default shown to users and applied by the engine.
    pub fn with_default(mut self, value: serde_json::Value) -> Self {
        self.default = Some(value);
        self
    }
}

/// Types a parameter can have. Template strings (`{{ … }}`) are accepted for every kind and
/// checked again once rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ParamKind {
    /// A string.
    String,
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Integer,
    /// A list of strings.
    StringList,
    /// A string (run by `sh -c`) or a list of strings (an argv).
    Command,
    /// A table of string values.
    StringMap,
    /// A table with keys the plugin documents.
    Table,
    /// Any TOML value.
    Any,
}

impl ParamKind {
    /// Whether a (JSON form of a TOML) value fits this kind.
    pub fn accepts(self, value: &serde_json::Value) -> bool {
        use serde_json::Value as V;
        let strings = |items: &Vec<V>| items.iter().all(V::is_string);
        match (self, value) {
            (ParamKind::Any, _) => true,
            (_, V::String(s)) if crate::params::is_template(s) => true,
            (ParamKind::String, V::String(_)) => true,
            (ParamKind::Bool, V::Bool(_)) => true,
            (ParamKind::Integer, V::Number(n)) => n.is_i64(),
            (ParamKind::StringList, V::Array(items)) => strings(items),
            (ParamKind::Command, V::String(_)) => true,
            (ParamKind::Command, V::Array(items)) => !items.is_empty() && strings(items),
            (ParamKind::StringMap, V::Object(map)) => map.values().all(V::is_string),
            (ParamKind::Table, V::Object(_)) => true,
            _ => false,
        }
    }

    /// How the kind reads in an error message or in `graphrun plugins NAME`.
    pub fn describe(self) -> &'static str {
        match self {
            ParamKind::String => "a string",
            ParamKind::Bool => "true or false",
            ParamKind::Integer => "an integer",
            ParamKind::StringList => "a list of strings",
            ParamKind::Command => "a command string or a list of strings",
            ParamKind::StringMap => "a table of strings",
            ParamKind::Table => "a table",
            ParamKind::Any => "any value",
        }
    }
}
