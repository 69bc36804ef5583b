//! Quoting for POSIX `sh`: the one place where a value becomes shell text.

/// Quotes `value` so that `sh` reads it back as exactly one word, byte for byte.
///
/// Every value that reaches a shell command line goes through here: `'; touch /tmp/pwned #`
/// and `$(id)` arrive at the host literally.
///
/// ```
/// assert_eq!(graphrun_plugin_api::shell::quote("a b"), "'a b'");
/// assert_eq!(graphrun_plugin_api::shell::quote("it's"), r#"'it'\''s'"#);
/// assert_eq!(graphrun_plugin_api::shell::quote("/etc/hosts"), "/etc/hosts");
/// ```
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b));
    if plain {
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Quotes every word of an argv and joins them with spaces.
pub fn join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|word| quote(word.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips_through_sh() {
        let nasty = [
            "'; touch /tmp/pwned #",
            "$(id)",
            "`id`",
            "a\nb",
            "",
            "-n",
            "*",
            "x'y\"z\\",
        ];
        for word in nasty {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(word)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word);
        }
    }
}
