//! Parameters declared once: one table gives the [`ParamSpec`]s that validation and
//! `graphrun plugins NAME` show, the defaults, and the typed reading of a step's values.
//!
//! ```
//! use graphrun_plugin_kit::params::{Args, Param};
//! use graphrun_plugin_api::{ParamKind, Params};
//!
//! const PARAMS: &[Param] = &[
//!     Param::required("path", ParamKind::String, "Path on the host"),
//!     Param::optional("mode", ParamKind::String, "Octal mode").default_str("0644"),
//! ];
//! let params: Params = serde_json::from_value(serde_json::json!({"path": "/etc/motd"})).unwrap();
//! let args = Args::new(PARAMS, &params);
//! assert_eq!(args.required_str("path").unwrap(), "/etc/motd");
//! assert_eq!(args.str("mode").unwrap(), Some("0644"));
//! ```

use std::collections::BTreeMap;

use graphrun_plugin_api::{ParamKind, ParamSpec, Params, PluginError};
use serde_json::Value;

/// A default value, in a form a `const` table can hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DefaultValue {
    /// No default.
    None,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(&'static str),
    /// A list of strings.
    Strings(&'static [&'static str]),
}

impl DefaultValue {
    fn value(self) -> Option<Value> {
        match self {
            DefaultValue::None => None,
            DefaultValue::Bool(b) => Some(b.into()),
            DefaultValue::Int(i) => Some(i.into()),
            DefaultValue::Str(s) => Some(s.into()),
            DefaultValue::Strings(items) => Some(items.iter().map(|s| Value::from(*s)).collect()),
        }
    }
}

/// One declared parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Param {
    /// Key in the step table.
    pub name: &'static str,
    /// Accepted type.
    pub kind: ParamKind,
    /// Whether the step must set it.
    pub required: bool,
    /// Value used when the step does not set it.
    pub default: DefaultValue,
    /// What it means, for `graphrun plugins NAME`.
    pub doc: &'static str,
}

impl Param {
    /// A parameter the step must set.
    pub const fn required(name: &'static str, kind: ParamKind, doc: &'static str) -> Self {
        Param {
            name,
            kind,
            required: true,
            default: DefaultValue::None,
            doc,
        }
    }

    /// An optional parameter (no default unless one is added).
    pub const fn optional(name: &'static str, kind: ParamKind, doc: &'static str) -> Self {
        Param {
            required: false,
            ..Param::required(name, kind, doc)
        }
    }

    /// With a boolean default.
    pub const fn default_bool(mut self, value: bool) -> Self {
        self.default = DefaultValue::Bool(value);
        self
    }

    /// With an integer default.
    pub const fn default_int(mut self, value: i64) -> Self {
        self.default = DefaultValue::Int(value);
        self
    }

    /// With a string default.
    pub const fn default_str(mut self, value: &'static str) -> Self {
        self.default = DefaultValue::Str(value);
        self
    }

    /// With a default list of strings.
    pub const fn default_strings(mut self, value: &'static [&'static str]) -> Self {
        self.default = DefaultValue::Strings(value);
        self
    }

    /// The spec shown by validation and `graphrun plugins NAME`.
    pub fn spec(&self) -> ParamSpec {
        let spec = if self.required {
            ParamSpec::required(self.name, self.kind, self.doc)
        } else {
            ParamSpec::optional(self.name, self.kind, self.doc)
        };
        match self.default.value() {
            Some(value) => spec.with_default(value),
            None => spec,
        }
    }
}

/// `mode` for plugins that write files (read with [`graphrun_plugin_api::attrs_from`]).
pub const MODE: Param = Param::optional("mode", ParamKind::String, "Octal mode, e.g. \"0644\"");
/// `owner` for plugins that write files.
pub const OWNER: Param = Param::optional("owner", ParamKind::String, "Owning user");
/// `group` for plugins that write files.
pub const GROUP: Param = Param::optional("group", ParamKind::String, "Owning group");

/// The specs of a whole table, for [`graphrun_plugin_api::PluginInfo::params`].
pub fn specs(table: &[Param]) -> Vec<ParamSpec> {
    table.iter().map(Param::spec).collect()
}

/// A step's values read through its declared table: defaults come from the table, types are
/// checked against it. Reading a name the table does not declare is a bug in the plugin and
/// panics (each plugin's tests read every parameter).
#[derive(Clone, Copy, Debug)]
pub struct Args<'a> {
    table: &'a [Param],
    params: &'a Params,
}

impl<'a> Args<'a> {
    /// Reads `params` through `table`.
    pub fn new(table: &'a [Param], params: &'a Params) -> Self {
        Args { table, params }
    }

    fn declared(&self, name: &str) -> &Param {
        self.table
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("parameter `{name}` is not declared"))
    }

    /// The step's value, else the declared default.
    pub fn value(&self, name: &str) -> Option<Value> {
        self.params
            .get(name)
            .cloned()
            .or_else(|| self.declared(name).default.value())
    }

    /// Whether the step sets `name` itself.
    pub fn has(&self, name: &str) -> bool {
        self.declared(name);
        self.params.has(name)
    }

    /// Whether `name` has a value other than its default (the engine fills in defaults, so a
    /// parameter that only goes with some others is "used" only when it differs).
    pub fn is_set(&self, name: &str) -> bool {
        self.params
            .get(name)
            .is_some_and(|value| Some(value) != self.declared(name).default.value().as_ref())
    }

    /// Whether `name` is a template not rendered yet (validation skips checks of its value).
    pub fn is_unrendered(&self, name: &str) -> bool {
        self.declared(name);
        self.params.is_unrendered(name)
    }

    /// Whether any declared parameter is a template not rendered yet: steps whose checks read
    /// several parameters together skip them all at validate, and run them at plan.
    pub fn any_unrendered(&self) -> bool {
        self.table
            .iter()
            .any(|param| self.params.is_unrendered(param.name))
    }

    /// A string, or the default.
    pub fn str(&self, name: &str) -> Result<Option<&'a str>, PluginError> {
        match (self.params.str(name)?, self.declared(name).default) {
            (Some(value), _) => Ok(Some(value)),
            (None, DefaultValue::Str(value)) => Ok(Some(value)),
            (None, _) => Ok(None),
        }
    }

    /// A string the step must set (or that has a default).
    pub fn required_str(&self, name: &str) -> Result<&'a str, PluginError> {
        self.str(name)?
            .ok_or_else(|| PluginError::param(name, "is required"))
    }

    /// A boolean, or the default (`false` without one).
    pub fn flag(&self, name: &str) -> Result<bool, PluginError> {
        match self.declared(name).default {
            DefaultValue::Bool(default) => self.params.flag_or(name, default),
            _ => self.params.flag(name),
        }
    }

    /// An integer, or the default.
    pub fn int(&self, name: &str) -> Result<Option<i64>, PluginError> {
        match (self.params.integer(name)?, self.declared(name).default) {
            (Some(value), _) => Ok(Some(value)),
            (None, DefaultValue::Int(value)) => Ok(Some(value)),
            (None, _) => Ok(None),
        }
    }

    /// A list of strings (a single string is a list of one), or the default.
    pub fn strings(&self, name: &str) -> Result<Vec<String>, PluginError> {
        match self.declared(name).default {
            DefaultValue::Strings(items) if !self.params.has(name) => {
                Ok(items.iter().map(|s| s.to_string()).collect())
            }
            _ => self.params.string_list(name),
        }
    }

    /// A table of strings (empty when absent).
    pub fn string_map(&self, name: &str) -> Result<BTreeMap<String, String>, PluginError> {
        self.declared(name);
        self.params.string_map(name)
    }

    /// A sub-table (absent when not set).
    pub fn table(&self, name: &str) -> Result<Option<Params>, PluginError> {
        self.declared(name);
        self.params.table(name)
    }

    /// The first of `names` the step sets (a flag set to `false` counts as not set); an error
    /// when it sets more than one, or (with `required`) none.
    pub fn one_of<'n>(
        &self,
        names: &[&'n str],
        required: bool,
    ) -> Result<Option<&'n str>, PluginError> {
        for name in names {
            self.declared(name);
        }
        self.params.one_of(names, required)
    }

    /// A string that must be one of `choices` (or a template, during validation).
    pub fn choice(&self, name: &str, choices: &[&'a str]) -> Result<Option<&'a str>, PluginError> {
        let Some(value) = self.str(name)? else {
            return Ok(None);
        };
        if choices.contains(&value) || self.is_unrendered(name) {
            return Ok(Some(value));
        }
        Err(PluginError::param(
            name,
            format!(
                "`{value}` is not one of {}",
                choices
                    .iter()
                    .map(|c| format!("\"{c}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TABLE: &[Param] = &[
        Param::required("path", ParamKind::String, "a path"),
        Param::optional("mode", ParamKind::String, "a mode").default_str("0644"),
        Param::optional("force", ParamKind::Bool, "force").default_bool(true),
        Param::optional("size", ParamKind::Integer, "size").default_int(3),
        Param::optional("names", ParamKind::StringList, "names").default_strings(&["a", "b"]),
        Param::optional("kind", ParamKind::String, "kind"),
    ];

    fn params(value: serde_json::Value) -> Params {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn specs_carry_kind_requirement_and_default() {
        let specs = specs(TABLE);
        assert!(specs[0].required && specs[0].default.is_none());
        assert_eq!(specs[1].default, Some(json!("0644")));
        assert_eq!(specs[2].default, Some(json!(true)));
        assert_eq!(specs[3].default, Some(json!(3)));
        assert_eq!(specs[4].default, Some(json!(["a", "b"])));
        assert_eq!(specs[4].kind, ParamKind::StringList);
    }

    #[test]
    fn reading_applies_the_declared_defaults() {
        let empty = params(json!({}));
        let args = Args::new(TABLE, &empty);
        assert_eq!(args.str("mode").unwrap(), Some("0644"));
        assert!(args.flag("force").unwrap());
        assert_eq!(args.int("size").unwrap(), Some(3));
        assert_eq!(args.strings("names").unwrap(), ["a", "b"]);
        assert_eq!(args.str("kind").unwrap(), None);
        assert_eq!(
            args.required_str("path").unwrap_err().param.as_deref(),
            Some("path")
        );

        let set = params(json!({"mode": "0600", "force": false, "size": 9, "names": "x"}));
        let args = Args::new(TABLE, &set);
        assert_eq!(args.str("mode").unwrap(), Some("0600"));
        assert!(!args.flag("force").unwrap());
        assert_eq!(args.int("size").unwrap(), Some(9));
        assert_eq!(args.strings("names").unwrap(), ["x"]);
    }

    #[test]
    fn choices_and_types_are_checked() {
        let set = params(json!({"kind": "b", "size": "x"}));
        let args = Args::new(TABLE, &set);
        assert_eq!(args.choice("kind", &["a", "b"]).unwrap(), Some("b"));
        let error = args.choice("kind", &["a"]).unwrap_err();
        assert_eq!(error.message, "`b` is not one of \"a\"");
        assert!(args.int("size").is_err());
    }

    #[test]
    #[should_panic(expected = "parameter `nope` is not declared")]
    fn reading_an_undeclared_name_is_a_bug() {
        let empty = params(json!({}));
        let _ = Args::new(TABLE, &empty).str("nope");
    }
}
