//! Secrets never leave the process: every string bound for output, logs or state goes through
//! [`Redactor::redact`].

/// Replaces secret values with `***`.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for these secret values.
    pub fn new(secrets: &[String]) -> Self {
        let mut secrets: Vec<String> = secrets
            .iter()
            .filter(|s| !s.is_empty())
            .flat_map(|s| [s.clone(), json_escaped(s)])
            .collect();
        secrets.dedup();
        // Longest first, so a secret containing another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    /// The text with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }

    /// Redacts every string inside a JSON value.
    pub fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_json(v)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// A secret as it reads inside a JSON string: plugins write values files as JSON, where a `"`
/// or a backslash in a secret is escaped, and the plain form would not match.
fn json_escaped(secret: &str) -> String {
    let quoted = serde_json::to_string(secret).expect("a string serializes");
    quoted[1..quoted.len() - 1].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_is_hidden_in_json_too() {
        let secret = r#"pa"ss\word"#.to_string();
        let redactor = Redactor::new(std::slice::from_ref(&secret));
        let json = serde_json::json!({ "password": secret }).to_string();
        assert_eq!(redactor.redact(&json), r#"{"password":"***"}"#);
        assert_eq!(redactor.redact(&format!("x {secret} y")), "x *** y");
    }
}
