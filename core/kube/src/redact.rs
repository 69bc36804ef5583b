//! Secrets in objects, hidden before an object is shown (plan output, events, logs).

/// What a hidden value is shown as, as everywhere else in graphrun.
const HIDDEN: &str = "***";

/// `object` with the values of a Secret's `data` and `stringData` replaced by `***` (the keys
/// stay, so a plan still says which entries change). Other kinds are returned as they are.
pub fn redacted(object: &serde_json::Value) -> serde_json::Value {
    let mut shown = object.clone();
    if object["kind"] == "Secret" && object["apiVersion"] == "v1" {
        for field in ["data", "stringData"] {
            // `get_mut`: indexing would add the field as null when it is absent.
            if let Some(entries) = shown.get_mut(field).and_then(|v| v.as_object_mut()) {
                entries
                    .values_mut()
                    .for_each(|value| *value = HIDDEN.into());
            }
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_secrets_values_are_hidden_and_its_keys_kept() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"},
            "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "s3cr3t"}});
        let shown = redacted(&secret);
        assert_eq!(shown["data"], json!({"password": "***"}));
        assert_eq!(shown["stringData"], json!({"token": "***"}));
        assert_eq!(shown["metadata"], secret["metadata"]);
        assert!(!shown.to_string().contains("s3cr3t"));
    }

    #[test]
    fn a_secret_without_string_data_gets_none() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "Yg=="}});
        assert_eq!(redacted(&secret).get("stringData"), None);
    }

    #[test]
    fn other_kinds_are_shown_as_they_are() {
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"mode": "a"}});
        assert_eq!(redacted(&config), config);
    }
}
