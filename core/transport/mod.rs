//! Reaching hosts: per host one master connection (SSH) and a few long-lived shells that its
//! running nodes share (local or over SSH), or simulated hosts.

mod batch;
mod master;
pub mod memory;
mod pool;
mod process;
pub mod script;
pub mod shell;
mod ssh;
pub mod upload;

use std::collections::HashMap;
use std::sync::Arc;

use graphrun_plugin_api::Op;

pub use memory::{MemoryTransport, Simulated};
pub use pool::{Connections, Lease};
pub use shell::Frame;

/// How sessions are opened.
#[derive(Clone)]
pub enum Transport {
    /// Real hosts: the local shell or OpenSSH, per the host's connection settings.
    Real,
    /// Simulated hosts.
    Memory(MemoryTransport),
}

/// A node's session on a host (see [`Lease`]).
pub enum Session {
    /// The host's shells (local or over ssh), shared with its other running nodes.
    Shell(Arc<pool::Slot>),
    /// A simulated host.
    Memory(memory::MemorySession),
}

/// Why ops could not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunError {
    /// An op could not be turned into a command (a bug or bad data, not the host's fault).
    Invalid(String),
    /// The connection failed or was lost.
    Unreachable(String),
}

impl Session {
    /// Runs ops in order (stopping at the first failure); `uploads` holds the source bytes of
    /// each `Op::Upload`, by index; with `diff`, file ops report contents before and after
    /// (see [`script::parse_diff`]).
    pub async fn run(
        &self,
        ops: &[Op],
        uploads: &HashMap<usize, script::Arrival>,
        check_mode: bool,
        diff: bool,
    ) -> Result<Vec<Frame>, RunError> {
        match self {
            Session::Shell(slot) => {
                let snippets = ops
                    .iter()
                    .enumerate()
                    .map(|(i, op)| script::compile(op, uploads.get(&i), diff))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(RunError::Invalid)?;
                slot.run(&snippets, check_mode)
                    .await
                    .map_err(RunError::Unreachable)
            }
            Session::Memory(session) => Ok(session.run(ops, check_mode).await),
        }
    }
}

#[cfg(test)]
mod diff_tests;
#[cfg(test)]
mod pool_tests;
#[cfg(test)]
mod tests;
