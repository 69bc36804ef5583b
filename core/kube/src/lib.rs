//! graphrun's Kubernetes client side, on the `kube` crate: connect with a kubeconfig, apply an
//! object server-side (field manager `graphrun`), wait for a condition (node Ready, Deployment
//! Available, CRD Established, ...) or a Deployment's rollout with a timeout, read an object, hide
//! a Secret's values before an object is shown.
//!
//! Objects are plain JSON (`serde_json::Value`), as a plan carries them; their kind is resolved
//! through API discovery, so custom resources work like built-in ones. The engine's cluster
//! executor (`core/engine/exec/cluster.rs`, the `kubernetes` feature) carries out Kubernetes ops
//! and probes with it.

mod cluster;
mod error;
mod object;
mod redact;
mod rollout;
mod wait;

pub use cluster::{Applied, Cluster, FIELD_MANAGER};
pub use error::Error;
pub use object::ObjectRef;
pub use redact::redacted;
pub use wait::{Condition, Progress};
