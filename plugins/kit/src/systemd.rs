//! systemd: a unit file, enabled and started, restarted when its configuration changed, and a
//! health check that waits for the service to answer.

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Op, Run};

/// Where a unit graphrun writes lives.
pub fn unit_path(unit: &str) -> String {
    format!("/etc/systemd/system/{unit}")
}

/// The unit file, plus a restart when the file existed with other content (`current`, read by
/// a [`crate::probe::file`] probe): a new unit is started by [`enable_now`].
pub fn unit_file(unit: &str, content: &str, current: Option<&str>) -> Vec<Op> {
    let mut ops = vec![Op::file(&unit_path(unit), content).with_mode("0644")];
    if current.is_some_and(|current| current != content) {
        ops.push(restart(unit));
    }
    ops
}

/// `systemctl daemon-reload` and restart (a changed unit or configuration).
pub fn restart(unit: &str) -> Op {
    Op::command(Run::Shell(format!(
        "systemctl daemon-reload && systemctl restart {}",
        quote(unit)
    )))
}

/// Enabled at boot and running now, unless it already is both.
pub fn enable_now(unit: &str) -> Op {
    let unit = quote(unit);
    Op::command_unless(
        Run::Shell(format!(
            "systemctl daemon-reload && systemctl enable --now {unit}"
        )),
        Run::Shell(format!(
            "systemctl is-enabled --quiet {unit} && systemctl is-active --quiet {unit}"
        )),
    )
}

/// Never started, not even as a dependency (`systemctl mask`), unless masked already.
pub fn mask(unit: &str) -> Op {
    let unit = quote(unit);
    Op::command_unless(
        Run::Shell(format!("systemctl mask {unit}")),
        Run::Shell(format!(
            "[ \"$(systemctl is-enabled {unit} 2>/dev/null)\" = masked ]"
        )),
    )
}

/// A read-only check that retries `run` once a second for `seconds` and then fails with
/// `hint`; skipped while the unit is not enabled (in `plan`, before it is installed).
pub fn health_check(unit: &str, run: &str, seconds: u32, hint: &str) -> Op {
    Op::check(Run::Shell(format!(
        "systemctl is-enabled --quiet {unit} || exit 0\n\
         i=0\n\
         while [ $i -lt {seconds} ]; do\n  \
           {run} && exit 0\n  \
           i=$((i + 1)); sleep 1\n\
         done\n\
         echo {hint} >&2\n\
         exit 1",
        unit = quote(unit),
        hint = quote(hint),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_unit_is_restarted_a_new_one_is_not() {
        assert_eq!(unit_file("x.service", "a", None).len(), 1);
        assert_eq!(unit_file("x.service", "a", Some("a")).len(), 1);
        assert_eq!(
            unit_file("x.service", "a", Some("b"))[1],
            restart("x.service")
        );
    }
}
