//! What can go wrong talking to a cluster, each with the object and what to do.

use std::path::PathBuf;
use std::time::Duration;

use crate::ObjectRef;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot use kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },

    #[error(
        "object is not a Kubernetes object: {0} (it needs apiVersion, kind and metadata.name)"
    )]
    NotAnObject(String),

    #[error("the cluster does not serve {kind} in {api_version} (a typo, or its CRD is not installed yet?)")]
    UnknownKind { api_version: String, kind: String },

    #[error("{action} {object}: {message}")]
    Api {
        action: &'static str,
        object: Box<ObjectRef>,
        message: String,
    },

    #[error("{object}: waited {}s for {waiting_for}; last seen: {last}", waited.as_secs())]
    Timeout {
        object: Box<ObjectRef>,
        /// "Available to be True", "the rollout to complete".
        waiting_for: String,
        waited: Duration,
        /// What was seen last: the condition's status, reason and message, or what is missing.
        last: String,
    },

    #[error("{object}: gave up waiting for {waiting_for}: {why}")]
    Failed {
        object: Box<ObjectRef>,
        waiting_for: String,
        why: String,
    },

    #[error("cannot read the server's version: {0}")]
    Version(String),

    #[error("{object}: waiting for a rollout works for Deployments only")]
    NoRollout { object: Box<ObjectRef> },
}

impl Error {
    /// An API failure: the server's own message when it sent one (it says what to fix).
    pub(crate) fn api(action: &'static str, object: &ObjectRef, error: kube::Error) -> Self {
        let message = match error {
            kube::Error::Api(status) => status.message.clone(),
            other => other.to_string(),
        };
        Error::Api {
            action,
            object: Box::new(object.clone()),
            message,
        }
    }
}
