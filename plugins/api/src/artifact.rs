//! Artifacts: files the control machine downloads, verifies and uploads to hosts (binaries,
//! release tarballs). A plugin names only the upstream URL and where the checksum comes from;
//! the engine maps the URL to the playbook's mirror or local folder, caches the file once per
//! run and uploads it only to hosts whose copy differs.
//!
//! ```
//! use graphrun_plugin_api::{Checksum, Op};
//!
//! let kubectl = "https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl";
//! let op = Op::artifact(
//!     kubectl,
//!     Checksum::file(&format!("{kubectl}.sha256"), "kubectl"),
//!     "/usr/local/bin/kubectl",
//! )
//! .with_mode("0755");
//! assert_eq!(
//!     op.summary(),
//!     "artifact https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl → /usr/local/bin/kubectl \
//!      (sha256 from https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl.sha256, mode 0755)"
//! );
//! ```

use serde::{Deserialize, Serialize};

use crate::{Attrs, Op};

/// Where an artifact's expected sha256 comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Checksum {
    /// The sha256 itself, 64 hexadecimal digits (pinned in the plugin or the playbook).
    Sha256(String),
    /// A checksum file published with the release: `sha256sum` lines (`HASH  NAME`), of which
    /// the one for `entry` counts, or a lone hash (as dl.k8s.io's `.sha256` files hold).
    File {
        /// The checksum file's upstream URL (fetched through the same mirror as the artifact).
        url: String,
        /// The artifact's file name as the checksum file lists it.
        entry: String,
    },
}

impl Checksum {
    /// A pinned sha256 (hex).
    pub fn sha256(hex: &str) -> Self {
        Checksum::Sha256(hex.to_string())
    }

    /// A checksum file at `url` whose line for `entry` holds the sha256.
    pub fn file(url: &str, entry: &str) -> Self {
        Checksum::File {
            url: url.to_string(),
            entry: entry.to_string(),
        }
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Checksum::Sha256(hex) => write!(f, "sha256 {hex}"),
            Checksum::File { url, .. } => write!(f, "sha256 from {url}"),
        }
    }
}

impl Op {
    /// The file at the upstream `url`, verified by `checksum`, at `path` on the host.
    pub fn artifact(url: &str, checksum: Checksum, path: &str) -> Self {
        Op::Artifact {
            url: url.to_string(),
            checksum,
            path: path.to_string(),
            attrs: Attrs::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_artifact_travels_as_json_with_its_checksum_source() {
        let op = Op::artifact(
            "https://get.helm.sh/helm-v3.16.0-linux-amd64.tar.gz",
            Checksum::file(
                "https://get.helm.sh/helm-v3.16.0-linux-amd64.tar.gz.sha256sum",
                "helm-v3.16.0-linux-amd64.tar.gz",
            ),
            "/opt/helm.tar.gz",
        )
        .with_mode("0644");
        let json = serde_json::to_value(&op).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "op": "artifact",
                "url": "https://get.helm.sh/helm-v3.16.0-linux-amd64.tar.gz",
                "checksum": {"file": {
                    "url": "https://get.helm.sh/helm-v3.16.0-linux-amd64.tar.gz.sha256sum",
                    "entry": "helm-v3.16.0-linux-amd64.tar.gz",
                }},
                "path": "/opt/helm.tar.gz",
                "mode": "0644",
            })
        );
        assert_eq!(serde_json::from_value::<Op>(json).unwrap(), op);
        let pinned = Op::artifact("https://x.test/a", Checksum::sha256("ab12"), "/a");
        assert_eq!(
            serde_json::to_value(&pinned).unwrap()["checksum"],
            serde_json::json!({"sha256": "ab12"})
        );
        assert_eq!(
            pinned.summary(),
            "artifact https://x.test/a → /a (sha256 ab12)"
        );
        assert!(pinned.may_change());
    }
}
