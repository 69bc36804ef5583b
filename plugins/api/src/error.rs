//! The error a plugin returns.

use serde::{Deserialize, Serialize};

/// Why a plugin refused parameters or could not plan.
///
/// When `param` names a parameter, the engine points the user at that key in the playbook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginError {
    /// The parameter at fault, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

impl PluginError {
    /// An error about one parameter.
    pub fn param(name: &str, message: impl Into<String>) -> Self {
        PluginError {
            param: Some(name.to_string()),
            message: message.into(),
        }
    }

    /// An error about the step as a whole.
    pub fn new(message: impl Into<String>) -> Self {
        PluginError {
            param: None,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PluginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.param {
            Some(param) => write!(f, "parameter `{param}`: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PluginError {}
