//! Names as Kubernetes checks them: host names (an Ingress rule's host, Rancher's hostname) and
//! object names, so a step refuses at validate what the API server would refuse mid-run.

use graphrun_plugin_api::PluginError;

/// A DNS name with at least two labels and a letter in the last (so not an address), such as
/// `rancher.example.com`; with `wildcard`, `*.example.com` too.
pub fn is_host_name(name: &str, wildcard: bool) -> bool {
    let name = match name.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        _ => name,
    };
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= 253
        && labels.len() > 1
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.bytes().any(|b| b.is_ascii_lowercase()))
}

/// An object name (a DNS-1123 subdomain of at most `max` characters: 253 for most kinds, 63 for
/// namespaces and Services): lower-case letters, digits, `-` and `.`, starting and ending with a
/// letter or digit. The error names parameter `param`.
pub fn check_object_name(param: &str, name: &str, max: usize) -> Result<(), PluginError> {
    if is_dns1123(name, max, true) {
        Ok(())
    } else {
        Err(PluginError::param(
            param,
            format!("`{name}` is not a Kubernetes name: at most {max} lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit"),
        ))
    }
}

/// Whether `name` has 1 to `max` lower-case letters, digits and `-` (and `.` with `dots`: a
/// DNS-1123 subdomain, else a label), starting and ending with a letter or digit.
pub(crate) fn is_dns1123(name: &str, max: usize, dots: bool) -> bool {
    let valid_char =
        |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.');
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (1..=max).contains(&name.len())
        && name.bytes().all(valid_char)
        && alnum(name.as_bytes().first())
        && alnum(name.as_bytes().last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_names_not_addresses() {
        assert!(is_host_name("rancher-demo.domain.test", false));
        assert!(is_host_name("*.apps.example.com", true));
        assert!(!is_host_name("*.apps.example.com", false));
        for bad in [
            "192.168.86.36",
            "localhost",
            "Rancher.example.com",
            "a..b",
            "-a.com",
            "",
        ] {
            assert!(!is_host_name(bad, true), "{bad}");
        }
    }

    #[test]
    fn object_names_follow_dns_1123() {
        assert!(check_object_name("name", "minio-console", 63).is_ok());
        assert!(check_object_name("name", "a.b-c", 253).is_ok());
        let error = check_object_name("name", "MinIO", 63).unwrap_err();
        assert_eq!(error.param.as_deref(), Some("name"));
        assert!(check_object_name("name", "-a", 63).is_err());
        assert!(check_object_name("name", &"a".repeat(64), 63).is_err());
    }
}
