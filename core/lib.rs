//! graphrun: turns bare Linux servers into a cluster (or any multi-host setup) from one TOML
//! playbook. The playbook becomes a DAG of (step, host) nodes; each node's plugin plans ops
//! (pure data); the engine runs them in long-lived shells, a few per host, locally or over one
//! SSH connection per host.
//!
//! Layout: [`playbook`] (load and validate), [`engine`] (DAG, scheduler, state, events),
//! [`artifacts`] (downloads and the cache on the control machine),
//! [`transport`] (local, SSH, simulated hosts), [`plugins`] (built-in and loaded plugins),
//! [`output`] (progress, recap, JSON), [`cli`].

pub mod artifacts;
pub mod cli;
pub mod engine;
pub mod limits;
pub mod output;
pub mod playbook;
pub mod plugins;
pub mod transport;
