//! Kernel modules (loaded now and at boot via modules-load.d) and sysctl settings (persisted in
//! sysctl.d, applied, live values read back).

use std::collections::BTreeMap;

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Op, Probe, ProbeResult, Run};

/// Modules loaded at boot by systemd-modules-load.
pub const MODULES_LOAD_PATH: &str = "/etc/modules-load.d/graphrun.conf";

/// The sysctl.d file for `priority` (`99-graphrun.conf` is read after the distribution's).
pub fn sysctl_path(priority: u8) -> String {
    format!("/etc/sysctl.d/{priority:02}-graphrun.conf")
}

/// The `/proc/sys` file of a key (`net.ipv4.ip_forward` → `/proc/sys/net/ipv4/ip_forward`).
pub fn proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// Whether `key` looks like a sysctl key (letters, digits, `_`, `-`, dots between parts).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Whether `name` looks like a kernel module name.
pub fn valid_module(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Values compare as the kernel prints them: words separated by single spaces.
pub fn normalize(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Content of [`MODULES_LOAD_PATH`].
pub fn modules_load_file(modules: &[String]) -> String {
    let mut text = String::from("# Managed by graphrun; changes are overwritten.\n");
    for module in modules {
        text.push_str(module);
        text.push('\n');
    }
    text
}

/// Content of the sysctl.d file.
pub fn sysctl_file(settings: &BTreeMap<String, String>) -> String {
    let mut text = String::from("# Managed by graphrun; changes are overwritten.\n");
    for (key, value) in settings {
        text.push_str(&format!("{key} = {value}\n"));
    }
    text
}

/// The shell test "module NAME is there": `/sys/module/NAME` (loaded, or built in with
/// parameters), the kernel's `modules.builtin`, or what the module provides. Containers and some
/// kernels show neither of the first two for a built-in module (a bridge with br_netfilter built
/// in shows only `/proc/sys/net/bridge`), and `modprobe` would fail there for nothing.
pub fn module_present(module: &str) -> String {
    let m = quote(module);
    let mut test = format!(
        "[ -d /sys/module/{m} ] || grep -qsF {ko} \"/lib/modules/$(uname -r)/modules.builtin\"",
        ko = quote(&format!("/{module}.ko"))
    );
    match module {
        "br_netfilter" => test.push_str(" || [ -d /proc/sys/net/bridge ]"),
        "overlay" => test.push_str(" || grep -qw overlay /proc/filesystems"),
        _ => {}
    }
    test
}

/// A probe printing `NAME yes|no` per module ([`module_present`]).
pub fn modules_probe(name: &str, modules: &[String]) -> Probe {
    let script = modules
        .iter()
        .map(|m| {
            format!(
                "if {}; then echo {m} yes; else echo {m} no; fi",
                module_present(m),
                m = quote(m)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Probe::run(name, Run::Shell(script))
}

/// Modules a [`modules_probe`] found loaded.
pub fn parse_modules(result: &ProbeResult) -> Vec<String> {
    result
        .stdout
        .lines()
        .filter_map(|line| line.strip_suffix(" yes"))
        .map(str::to_string)
        .collect()
}

/// A probe printing `KEY=VALUE` per key (live values), only `KEY` for a key the kernel lacks.
pub fn values_probe(name: &str, keys: &[&String]) -> Probe {
    let script = keys
        .iter()
        .map(|key| {
            format!(
                "if [ -r {p} ]; then printf '%s=%s\\n' {k} \"$(cat {p})\"; else echo {k}; fi",
                k = quote(key),
                p = quote(&proc_path(key))
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Probe::run(name, Run::Shell(script))
}

/// Live values from a [`values_probe`], normalized.
pub fn parse_values(result: &ProbeResult) -> BTreeMap<String, String> {
    result
        .stdout
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), normalize(v)))
        .collect()
}

/// Loads a module unless it is there already ([`module_present`]).
pub fn load_module(module: &str) -> Op {
    Op::command_unless(
        Run::Shell(format!("modprobe {}", quote(module))),
        Run::Shell(module_present(module)),
    )
}

/// Sets a live value unless it already has it.
pub fn set_value(key: &str, value: &str) -> Op {
    let path = quote(&proc_path(key));
    let value = normalize(value);
    Op::command_unless(
        Run::Shell(format!("sysctl -q -w {}", quote(&format!("{key}={value}")))),
        Run::Shell(format!(
            "[ \"$(tr -s ' \\t' '  ' <{path})\" = {} ]",
            quote(&value)
        )),
    )
}

/// A read-only check that every live value is what `settings` say (read back after applying).
pub fn verify_values(settings: &BTreeMap<String, String>) -> Op {
    let script = settings
        .iter()
        .map(|(key, value)| {
            format!(
                "v=$(tr -s ' \\t' '  ' <{p}) && [ \"$v\" = {want} ] || {{ echo \"{k} is '$v', not '\"{want}\"'\" >&2; ok=1; }}",
                p = quote(&proc_path(key)),
                want = quote(&normalize(value)),
                k = key,
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    Op::check(Run::Shell(format!("ok=0\n{script}\nexit $ok")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_modules_and_values() {
        assert_eq!(
            proc_path("net.bridge.bridge-nf-call-iptables"),
            "/proc/sys/net/bridge/bridge-nf-call-iptables"
        );
        assert!(valid_key("net.ipv4.ip_forward"));
        assert!(!valid_key("net..x") && !valid_key("a;b") && !valid_key(""));
        assert!(valid_module("br_netfilter") && !valid_module("x y"));
        assert_eq!(normalize("1024\t65535\n"), "1024 65535");
    }

    #[test]
    fn set_value_guard_and_verify_run_in_sh() {
        // A value this machine has: /proc/sys/kernel/ostype is "Linux".
        let run = |op: Op| -> bool {
            let Op::Command { unless, run, .. } = op else {
                panic!()
            };
            let text = unless.unwrap_or(run).to_shell();
            std::process::Command::new("sh")
                .arg("-c")
                .arg(text)
                .status()
                .unwrap()
                .success()
        };
        assert!(run(set_value("kernel.ostype", "Linux")));
        assert!(!run(set_value("kernel.ostype", "BSD")));
        let settings = BTreeMap::from([("kernel.ostype".to_string(), "Linux".to_string())]);
        assert!(run(verify_values(&settings)));
    }
}
