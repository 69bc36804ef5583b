//! Reaching hosts: per host one master connection (SSH) and a pool of long-lived shells,
//! one per running node (local or over SSH), or simulated hosts.

mod master;
pub mod memory;
mod pool;
mod process;
pub mod script;
pub mod shell;
mod ssh;
pub mod upload;

use std::collections::HashMap;

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

/// A session on a host, checked out by one node (see [`Lease`]).
pub enum Session {
    /// A shell process (local or over ssh).
    Shell(Box<shell::ShellSession>),
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
            Session::Shell(session) => {
                let snippets = ops
                    .iter()
                    .enumerate()
                    .map(|(i, op)| script::compile(op, uploads.get(&i), diff))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(RunError::Invalid)?;
                session
                    .run(&snippets, check_mode)
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
mod tests;
