//! Kubernetes versions: the server's (its `/version` answer) and the ranges charts and add-ons
//! support (a chart's `kubeVersion`, such as `< 1.37.0-0`), so a step refuses at plan time a
//! cluster it cannot serve instead of failing half-way through an install.
//!
//! ```
//! use graphrun_plugin_kit::kube_version::{Range, Version};
//!
//! let server = Version::from_server(r#"{"major": "1", "minor": "34", "gitVersion": "v1.34.4"}"#).unwrap();
//! assert_eq!(server.to_string(), "1.34.4");
//! assert!(Range::parse(">= 1.22.0-0, < 1.37.0-0").unwrap().contains(server));
//! ```

use std::fmt;

/// A Kubernetes version, `major.minor.patch` (pre-release and build suffixes dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Always 1 so far.
    pub major: u32,
    /// The release line: 34 in 1.34.4.
    pub minor: u32,
    /// The patch release.
    pub patch: u32,
}

impl Version {
    /// A version from `v1.34.4`, `1.34`, `1.34.4-rke2r1`, `v1.32.6+rke2r1`, `1.37.0-0`.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.trim();
        let text = text.strip_prefix('v').unwrap_or(text);
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let number = |part: Option<&str>| part.and_then(|p| p.parse::<u32>().ok());
        let major = number(parts.next())?;
        let minor = number(parts.next())?;
        let patch = match parts.next() {
            None => 0,
            found => number(found)?,
        };
        parts.next().is_none().then_some(Version {
            major,
            minor,
            patch,
        })
    }

    /// The version in the API server's `/version` answer (what `kubectl version -o json` shows as
    /// `serverVersion`, and what the engine's Kubernetes version probe prints): its
    /// `gitVersion`, which carries the patch release.
    pub fn from_server(json: &str) -> Option<Version> {
        let answer: serde_json::Value = serde_json::from_str(json).ok()?;
        let answer = answer.get("serverVersion").unwrap_or(&answer);
        Version::parse(answer["gitVersion"].as_str()?)
    }

    /// `1.34`: the release line, as support tables name it.
    pub fn line(self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// A version range as Helm reads a chart's `kubeVersion`: comparisons joined by `,` or spaces
/// (all must hold), alternatives joined by `||`. The operators are `>=`, `>`, `<=`, `<`, `=`,
/// `!=`; a `-0` suffix (include pre-releases) changes nothing for a released server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Range {
    text: String,
    alternatives: Vec<Vec<(Operator, Version)>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    AtLeast,
    Above,
    AtMost,
    Below,
    Equal,
    NotEqual,
}

impl Range {
    /// Reads a range; the error says which part could not be read.
    pub fn parse(text: &str) -> Result<Range, String> {
        let alternatives = text
            .split("||")
            .map(|alternative| {
                let words = alternative.replace(',', " ");
                let mut words = words.split_whitespace().peekable();
                let mut all = Vec::new();
                while let Some(word) = words.next() {
                    // `>= 1.22` (operator and version apart) or `>=1.22`.
                    let (operator, version) = split_operator(word);
                    let version = match version {
                        "" => words.next().unwrap_or_default(),
                        version => version,
                    };
                    let parsed = Version::parse(version)
                        .ok_or_else(|| format!("`{word} {version}` is not a version comparison"))?;
                    all.push((operator, parsed));
                }
                if all.is_empty() {
                    return Err("an empty alternative".to_string());
                }
                Ok(all)
            })
            .collect::<Result<_, String>>()
            .map_err(|why| format!("cannot read the version range `{text}`: {why}"))?;
        Ok(Range {
            text: text.trim().to_string(),
            alternatives,
        })
    }

    /// Whether `version` is in the range.
    pub fn contains(&self, version: Version) -> bool {
        self.alternatives.iter().any(|all| {
            all.iter().all(|(operator, bound)| match operator {
                Operator::AtLeast => version >= *bound,
                Operator::Above => version > *bound,
                Operator::AtMost => version <= *bound,
                Operator::Below => version < *bound,
                Operator::Equal => version == *bound,
                Operator::NotEqual => version != *bound,
            })
        })
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn split_operator(word: &str) -> (Operator, &str) {
    for (prefix, operator) in [
        (">=", Operator::AtLeast),
        ("<=", Operator::AtMost),
        ("!=", Operator::NotEqual),
        (">", Operator::Above),
        ("<", Operator::Below),
        ("=", Operator::Equal),
    ] {
        if let Some(rest) = word.strip_prefix(prefix) {
            return (operator, rest);
        }
    }
    (Operator::Equal, word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn versions_are_read_as_distributions_spell_them() {
        assert_eq!(version("v1.34.4").to_string(), "1.34.4");
        assert_eq!(version("1.32.6+rke2r1").to_string(), "1.32.6");
        assert_eq!(version("v1.32.5-rancher1-1").line(), "1.32");
        assert_eq!(version("1.36").to_string(), "1.36.0");
        assert_eq!(Version::parse("one.two"), None);
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert_eq!(Version::parse(""), None);
    }

    #[test]
    fn the_server_version_comes_from_git_version() {
        let answer =
            r#"{"major":"1","minor":"34","gitVersion":"v1.34.4","platform":"linux/amd64"}"#;
        assert_eq!(Version::from_server(answer), Some(version("1.34.4")));
        let kubectl = r#"{"clientVersion": {"gitVersion": "v1.34.5"}, "serverVersion": {"gitVersion": "v1.32.6"}}"#;
        assert_eq!(Version::from_server(kubectl), Some(version("1.32.6")));
        assert_eq!(Version::from_server("not json"), None);
    }

    #[test]
    fn chart_ranges_hold_as_helm_reads_them() {
        let rancher = Range::parse("< 1.37.0-0").unwrap();
        assert!(rancher.contains(version("1.36.9")));
        assert!(!rancher.contains(version("1.37.0")));
        let cert_manager = Range::parse(">= 1.22.0-0").unwrap();
        assert!(cert_manager.contains(version("1.34.4")));
        assert!(!cert_manager.contains(version("1.21.14")));
        let both = Range::parse(">=1.25.0-0, <1.33.0-0 || = 1.20.1").unwrap();
        assert!(both.contains(version("1.32.6")));
        assert!(both.contains(version("1.20.1")));
        assert!(!both.contains(version("1.33.0")));
        assert_eq!(both.to_string(), ">=1.25.0-0, <1.33.0-0 || = 1.20.1");
    }

    #[test]
    fn an_unreadable_range_says_what_it_could_not_read() {
        let error = Range::parse("~1.x").unwrap_err();
        assert!(
            error.contains("cannot read the version range `~1.x`"),
            "{error}"
        );
        assert!(Range::parse(">= 1.2 ||").is_err());
    }
}
