//! Checks of `replace = { regex, with }` that catch silent data loss before a host is touched.
//!
//! The rewrite runs as `sed -E`, so `with` uses sed's syntax: `\1`…`\9` for groups, `&` for the
//! whole match. Rust, Python's `re.sub` docs and most editors write a group as `$1`, which sed
//! would insert literally (`# $1` replacing a swap line of `/etc/fstab` loses the line), so
//! `$1` and `${1}` are refused with the fix; `\$` writes a literal `$`.

use graphrun_plugin_api::PluginError;

/// Refuses a `with` that would not mean what it says for the given `regex`.
pub fn check(regex: &str, with: &str) -> Result<(), PluginError> {
    let groups = count_groups(regex);
    let mut chars = with.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                None => return Err(error("ends with a lone `\\`: write `\\\\` for a backslash")),
                Some(d @ '1'..='9') if d.to_digit(10).unwrap_or(0) as usize > groups => {
                    return Err(error(format!(
                        "refers to group \\{d} but the regex has {groups} group{}: groups are \
                         the parts of `regex` in parentheses",
                        if groups == 1 { "" } else { "s" }
                    )));
                }
                Some(_) => {}
            },
            '$' if chars
                .peek()
                .is_some_and(|n| n.is_ascii_digit() || *n == '{') =>
            {
                let mut reference = String::from("$");
                while let Some(n) =
                    chars.next_if(|n| n.is_ascii_alphanumeric() || "{}".contains(*n))
                {
                    reference.push(n);
                }
                let group: String = reference.chars().filter(char::is_ascii_digit).collect();
                let group = if group.is_empty() { "1".into() } else { group };
                return Err(error(format!(
                    "`{reference}` is not a group reference here (it would be written literally): \
                     write `\\{group}`; `replace` uses sed's syntax: `\\1`…`\\9` for groups, `&` \
                     for the whole match, `\\$` for a literal `$`"
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

fn error(message: impl std::fmt::Display) -> PluginError {
    PluginError::param("replace", format!("`with` {message}"))
}

/// Groups in a POSIX ERE: `(` outside bracket expressions, not escaped.
fn count_groups(regex: &str) -> usize {
    let mut groups = 0;
    let mut chars = regex.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '(' => groups += 1,
            '[' => {
                // `]` right after `[` or `[^` is a member, not the end.
                chars.next_if_eq(&'^');
                chars.next_if_eq(&']');
                while let Some(m) = chars.next() {
                    match m {
                        ']' => break,
                        // `[:alpha:]`, `[=e=]`, `[.-.]` inside a bracket expression.
                        '[' if chars.peek().is_some_and(|k| ":=.".contains(*k)) => {
                            let kind = chars.next().unwrap_or(':');
                            while let Some(k) = chars.next() {
                                if k == kind && chars.next_if_eq(&']').is_some() {
                                    break;
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sed_references_are_accepted() {
        assert_eq!(check("^(/swap.*)$", "# \\1"), Ok(()));
        assert_eq!(
            check("^(a)(b)$", "\\2\\1 & \\& \\\\ \\$1 costs $ 5"),
            Ok(())
        );
        assert_eq!(check("x", "$HOME"), Ok(()));
    }

    #[test]
    fn dollar_references_are_refused_with_the_sed_form() {
        for (with, fix) in [("# $1", "\\1"), ("${2}x", "\\2"), ("$0", "\\0")] {
            let err = check("^(a)(b)$", with).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("replace"));
            assert!(
                err.message.contains(&format!("write `{fix}`")),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn a_reference_beyond_the_groups_is_refused() {
        let err = check("^[(]x\\(y\\)[[:space:]]$", "\\1").unwrap_err();
        assert!(
            err.message.contains("the regex has 0 groups"),
            "{}",
            err.message
        );
        assert_eq!(check("^([]a(])(b)$", "\\2"), Ok(()));
        assert!(check("x", "a\\").is_err());
    }
}
