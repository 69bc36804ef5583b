//! Typed access to a step's parameters.

use std::collections::BTreeMap;

use crate::PluginError;
use serde_json::Value;

/// Whether a string still holds template syntax (it is rendered before planning).
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// A step's parameters: the step table minus the engine's own keys, defaults applied.
///
/// During validation values may still be unrendered template strings; during planning they
/// are final.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Params(pub serde_json::Map<String, Value>);

impl Params {
    /// The raw value of a parameter.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// Whether the step sets `name`.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether `name` is a template string not rendered yet (skip semantic checks on it).
    pub fn is_unrendered(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::String(s)) if is_template(s))
    }

    /// An optional string parameter.
    pub fn str(&self, name: &str) -> Result<Option<&str>, PluginError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(name, "a string", other)),
        }
    }

    /// A string parameter the step must set.
    pub fn required_str(&self, name: &str) -> Result<&str, PluginError> {
        self.str(name)?
            .ok_or_else(|| PluginError::param(name, "is required"))
    }

    /// A path on the host the step must set. It must be absolute: a relative path would land
    /// in whatever folder the remote shell starts in. An unrendered template passes here and
    /// is checked again once rendered.
    pub fn host_path(&self, name: &str) -> Result<&str, PluginError> {
        let path = self.required_str(name)?;
        if path.starts_with('/') || is_template(path) {
            Ok(path)
        } else {
            Err(PluginError::param(
                name,
                format!("`{path}` is not an absolute path: a relative one would land in whatever folder the remote shell starts in"),
            ))
        }
    }

    /// A boolean parameter (`false` when absent).
    pub fn flag(&self, name: &str) -> Result<bool, PluginError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(wrong_type(name, "true or false", other)),
        }
    }

    /// A boolean parameter with its default.
    pub fn flag_or(&self, name: &str, default: bool) -> Result<bool, PluginError> {
        if self.has(name) {
            self.flag(name)
        } else {
            Ok(default)
        }
    }

    /// An optional integer parameter.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, PluginError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) if n.is_i64() => Ok(n.as_i64()),
            Some(other) => Err(wrong_type(name, "an integer", other)),
        }
    }

    /// A list of strings (empty when absent); a single string counts as a list of one.
    pub fn string_list(&self, name: &str) -> Result<Vec<String>, PluginError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong_type(name, "a list of strings", other)),
                })
                .collect(),
            Some(other) => Err(wrong_type(name, "a list of strings", other)),
        }
    }

    /// A table of strings (empty when absent).
    pub fn string_map(&self, name: &str) -> Result<BTreeMap<String, String>, PluginError> {
        match self.get(name) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(wrong_type(name, "a table of strings", other)),
                })
                .collect(),
            Some(other) => Err(wrong_type(name, "a table of strings", other)),
        }
    }

    /// A sub-table, for parameters such as `replace = { regex = …, with = … }`.
    pub fn table(&self, name: &str) -> Result<Option<Params>, PluginError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Params(map.clone()))),
            Some(other) => Err(wrong_type(name, "a table", other)),
        }
    }

    /// Fails when more than one, or (with `required`) none, of `names` is set; a flag set to
    /// `false` (such as a default) counts as not set.
    pub fn one_of<'a>(
        &self,
        names: &[&'a str],
        required: bool,
    ) -> Result<Option<&'a str>, PluginError> {
        let set: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| self.has(n) && self.get(n) != Some(&Value::Bool(false)))
            .collect();
        match set.as_slice() {
            [] if required => Err(PluginError::new(format!(
                "set one of {}",
                names
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
            [] => Ok(None),
            [one] => Ok(Some(one)),
            [first, second, ..] => Err(PluginError::param(
                second,
                format!("`{first}` and `{second}` cannot be used together: choose one"),
            )),
        }
    }
}

fn wrong_type(name: &str, expected: &str, found: &Value) -> PluginError {
    let found = match found {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a table",
    };
    PluginError::param(name, format!("expected {expected}, found {found}"))
}
