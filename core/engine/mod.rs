//! The engine: DAG expansion, scheduling, node execution, state, events.

pub mod dag;
pub mod diff;
pub mod events;
mod exec;
mod failure;
mod journal;
pub mod lock;
mod node;
pub mod redact;
pub mod run;
mod run_log;
mod scheduler;
pub mod state;
mod verbose;

pub use dag::{Dag, Selection};
pub use events::{
    Collector, Event, Mode, NodeStatus, OpStatus, Recap, Reporter, StepLinks, Transfer,
};
pub use run::{execute, RunOptions, RunSummary};
