//! The filter and test names a template uses (`x | quote`, `x is defined`), checked at
//! validation: minijinja looks them up only while rendering, which would be on a host, mid-run.

use minijinja::{Environment, ErrorKind};

/// Filters and tests people reach for, as candidates for "did you mean"; only those the
/// environment really has are suggested.
const COMMON_FILTERS: &[&str] = &[
    "quote",
    "default",
    "d",
    "lower",
    "upper",
    "title",
    "capitalize",
    "replace",
    "trim",
    "join",
    "split",
    "lines",
    "length",
    "count",
    "first",
    "last",
    "min",
    "max",
    "sort",
    "unique",
    "reverse",
    "list",
    "string",
    "int",
    "float",
    "bool",
    "round",
    "abs",
    "indent",
    "items",
    "dictsort",
    "map",
    "select",
    "reject",
    "selectattr",
    "rejectattr",
    "groupby",
    "batch",
    "slice",
    "sum",
    "format",
    "tojson",
    "urlencode",
    "escape",
    "safe",
    "attr",
    "chain",
    "zip",
];
const COMMON_TESTS: &[&str] = &[
    "defined",
    "undefined",
    "none",
    "true",
    "false",
    "boolean",
    "odd",
    "even",
    "divisibleby",
    "number",
    "integer",
    "float",
    "string",
    "sequence",
    "iterable",
    "mapping",
    "startingwith",
    "endingwith",
    "containing",
    "in",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "sameas",
    "lower",
    "upper",
];

/// A filter or test a template uses that the environment does not have.
#[derive(Debug, PartialEq, Eq)]
pub struct Unknown {
    /// "filter" or "test".
    pub kind: &'static str,
    /// The name as written.
    pub name: String,
    /// A known name close to it.
    pub suggestion: Option<&'static str>,
}

/// Every unknown filter and test name in `text` (a template, or a bare expression).
pub fn unknown(env: &Environment<'_>, text: &str, expression: bool) -> Vec<Unknown> {
    let mut found = Vec::new();
    for (kind, name) in used_names(text, expression) {
        let (probe, candidates) = match kind {
            "filter" => (format!("{{{{ 1 | {name} }}}}"), COMMON_FILTERS),
            _ => (format!("{{{{ 1 is {name} }}}}"), COMMON_TESTS),
        };
        if exists(env, &probe) {
            continue;
        }
        let known = candidates.iter().copied().filter(|c| {
            let probe = probe.replacen(name.as_str(), c, 1);
            exists(env, &probe)
        });
        found.push(Unknown {
            kind,
            suggestion: super::diagnostic::closest(&name, known),
            name,
        });
    }
    found
}

/// Whether rendering `probe` gets past the filter or test lookup (it may fail otherwise:
/// `1 | upper` is no concern here).
fn exists(env: &Environment<'_>, probe: &str) -> bool {
    match env.render_str(probe, ()) {
        Err(err) => !matches!(
            err.kind(),
            ErrorKind::UnknownFilter | ErrorKind::UnknownTest
        ),
        Ok(_) => true,
    }
}

/// ("filter" | "test", name) for each use, in order. Only the code inside `{{ }}` and
/// `{% %}` is read, and string literals are skipped.
fn used_names(text: &str, expression: bool) -> Vec<(&'static str, String)> {
    let code: Vec<&str> = if expression {
        vec![super::template::strip_braces(text)]
    } else {
        code_blocks(text)
    };
    let mut names = Vec::new();
    for block in code {
        let words = words(block);
        for (index, word) in words.iter().enumerate() {
            let next = |offset: usize| words.get(index + offset).map(String::as_str);
            match (word.as_str(), next(1), next(2)) {
                ("|", Some(name), _) if is_identifier(name) => names.push(("filter", name.into())),
                ("is", Some("not"), Some(name)) if is_identifier(name) => {
                    names.push(("test", name.into()))
                }
                ("is", Some(name), _) if is_identifier(name) && name != "not" => {
                    names.push(("test", name.into()))
                }
                _ => {}
            }
        }
    }
    names
}

/// The insides of `{{ … }}` and `{% … %}`.
fn code_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(['{']) {
        let after = &rest[start + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        let end = body.find(close).unwrap_or(body.len());
        blocks.push(&body[..end]);
        rest = &body[(end + close.len()).min(body.len())..];
    }
    blocks
}

/// Identifiers and `|`, in order; string literals and other symbols are left out.
fn words(code: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            while let Some(inner) = chars.next() {
                match inner {
                    '\\' => {
                        chars.next();
                    }
                    _ if inner == c => break,
                    _ => {}
                }
            }
        } else if c == '|' {
            words.push("|".to_string());
        } else if c.is_alphabetic() || c == '_' {
            let mut word = c.to_string();
            while let Some(&next) = chars.peek() {
                if next.is_alphanumeric() || next == '_' {
                    word.push(next);
                    chars.next();
                } else {
                    break;
                }
            }
            words.push(word);
        } else if c == '.' {
            // `x.is` is an attribute, not the `is` operator.
            while chars
                .peek()
                .is_some_and(|n| n.is_alphanumeric() || *n == '_')
            {
                chars.next();
            }
        }
    }
    words
}

fn is_identifier(word: &str) -> bool {
    word.starts_with(|c: char| c.is_alphabetic() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_filters_and_tests_outside_strings() {
        assert_eq!(
            used_names(
                "a {{ vars.x | qoute }} {% if y is not definde %}{{ '|x' ~ z | upper }}{% endif %}",
                false
            ),
            [
                ("filter", "qoute".to_string()),
                ("test", "definde".to_string()),
                ("filter", "upper".to_string())
            ]
        );
        assert_eq!(
            used_names("host.vars.ip is defined", true),
            [("test", "defined".to_string())]
        );
    }

    #[test]
    fn unknown_names_come_with_suggestions() {
        let env = crate::playbook::template::environment();
        assert_eq!(
            unknown(&env, "{{ vars.root | qoute }} {{ x | upper }}", false),
            [Unknown {
                kind: "filter",
                name: "qoute".into(),
                suggestion: Some("quote")
            }]
        );
        assert_eq!(
            unknown(&env, "x is defiend", true),
            [Unknown {
                kind: "test",
                name: "defiend".into(),
                suggestion: Some("defined")
            }]
        );
    }
}
