//! Typed values of the playbook's own keys (strings, lists, integers, durations, booleans):
//! each refused with what was found, and numbers and durations range-checked where the user
//! can see them rather than found later as an overflow.

use std::ops::{Range, RangeInclusive};
use std::time::Duration;

use toml::de::DeValue;
use toml::Spanned;

use super::{Document, Loader};

impl Loader {
    pub(super) fn string(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
    ) -> Option<String> {
        match value.get_ref() {
            DeValue::String(s) => Some(s.to_string()),
            other => {
                self.error(
                    doc,
                    value.span(),
                    format!("`{what}` must be a string, found {}", a_kind(other)),
                );
                None
            }
        }
    }

    /// A string or a list of strings, each with its span.
    pub(super) fn string_list(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
    ) -> Vec<(String, Range<usize>)> {
        match value.get_ref() {
            DeValue::String(s) => vec![(s.to_string(), value.span())],
            DeValue::Array(items) => items
                .iter()
                .filter_map(|item| Some((self.string(doc, item, what)?, item.span())))
                .collect(),
            other => {
                self.error(
                    doc,
                    value.span(),
                    format!(
                        "`{what}` must be a string or a list of strings, found {}",
                        a_kind(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// A duration in `range`: a number of seconds or text such as "30s". Out-of-range values
    /// are refused here, where the user can see them, not found later as an overflow.
    pub(super) fn duration(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
        range: RangeInclusive<Duration>,
    ) -> Option<Duration> {
        let parsed = match value.get_ref() {
            // Too large for any range (rather than an overflow later); negative is too small.
            DeValue::Integer(_) => Ok(integer_value(value.get_ref())
                .map_or(Duration::MAX, |n| Duration::from_secs(n.max(0) as u64))),
            DeValue::String(s) => humantime::parse_duration(s)
                .map_err(|err| format!("`{what}`: `{s}` is not a duration ({err})")),
            other => Err(format!(
                "`{what}` must be a duration such as \"30s\", found {}",
                a_kind(other)
            )),
        };
        let (from, to) = (
            humantime::format_duration(*range.start()),
            humantime::format_duration(*range.end()),
        );
        match parsed {
            Ok(duration) if range.contains(&duration) => return Some(duration),
            Ok(_) => self.error(
                doc,
                value.span(),
                format!("`{what}` must be from {from} to {to}"),
            ),
            Err(message) => self.error(doc, value.span(), message),
        }
        .help("write durations such as \"30s\", \"5m\" or \"1h 30m\"");
        None
    }

    pub(super) fn integer(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
        range: Range<i64>,
    ) -> Option<i64> {
        let parsed = integer_value(value.get_ref());
        if let Some(n) = parsed.filter(|n| range.contains(n)) {
            return Some(n);
        }
        let found = match parsed {
            Some(n) => n.to_string(),
            None if matches!(value.get_ref(), DeValue::Integer(_)) => "a larger number".into(),
            None => a_kind(value.get_ref()),
        };
        self.error(
            doc,
            value.span(),
            format!(
                "`{what}` must be an integer from {} to {}, found {found}",
                range.start,
                range.end - 1
            ),
        );
        None
    }

    pub(super) fn boolean(
        &mut self,
        doc: &Document,
        value: &Spanned<DeValue<'static>>,
        what: &str,
    ) -> Option<bool> {
        match value.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.error(
                    doc,
                    value.span(),
                    format!("`{what}` must be true or false, found {}", a_kind(other)),
                );
                None
            }
        }
    }
}

/// An integer as written in TOML (any radix, `_` separators), if it fits an `i64`.
fn integer_value(value: &DeValue<'_>) -> Option<i64> {
    let DeValue::Integer(i) = value else {
        return None;
    };
    let digits = i.as_str().replace('_', "");
    let digits = ["0x", "0o", "0b"]
        .iter()
        .find_map(|prefix| digits.strip_prefix(prefix))
        .unwrap_or(&digits);
    i64::from_str_radix(digits, i.radix()).ok()
}

/// "a string", "an integer"…: what a value is, for "found …" in type errors.
pub(super) fn a_kind(value: &DeValue<'_>) -> String {
    let kind = value.type_str();
    let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {kind}")
}

impl Loader {
    /// Checks a step id, host name or group name (`what`: "a step id"…). Names become parts of node names (`step@host`),
    /// of `--limit`/`--only` lists, of graph ids and of folder names (`fetched/<host>/`), so
    /// only letters, digits, `-`, `_` and `.` are allowed (and not dots alone).
    pub(super) fn check_name(
        &mut self,
        doc: &Document,
        name: &str,
        span: Range<usize>,
        what: &str,
    ) -> bool {
        let allowed = |c: char| c.is_alphanumeric() || matches!(c, '-' | '_' | '.');
        let bad = name.chars().find(|c| !allowed(*c));
        if bad.is_none() && !name.chars().all(|c| c == '.') {
            return true;
        }
        let why = match bad {
            Some(c) => format!("{c:?} is not allowed in {what}"),
            None => format!("{what} needs a letter or digit"),
        };
        self.error(doc, span, format!("`{name}`: {why}"))
            .help("names use letters, digits, `-`, `_` and `.`: they appear in `step@host`, in --limit and --only lists, and in folder names");
        false
    }
}
