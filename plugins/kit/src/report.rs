//! What a step tells the user beside its changes.

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Op, Run};

/// A read-only check that prints `warning: MESSAGE` to stderr: the engine lists it under the
/// recap (a warning never fails the step).
pub fn warning(message: &str) -> Op {
    Op::check(Run::Shell(format!(
        "echo {} >&2",
        quote(&format!("warning: {message}"))
    )))
}
