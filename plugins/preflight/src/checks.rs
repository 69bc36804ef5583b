//! The probes preflight runs and the findings it draws from them (pure: testable from recorded
//! probe output).

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{PlanRequest, PluginError, Probe, Run};
use graphrun_plugin_kit::os::{self, Os};
use graphrun_plugin_kit::params::Args;
use graphrun_plugin_kit::probe;
use serde_json::Value;

/// Every finding preflight can report, as `fail_on` names them.
pub const FINDINGS: [&str; 11] = [
    "ssh_forwarding",
    "docker_group",
    "swap",
    "br_netfilter",
    "sysctl",
    "clock",
    "names",
    "ports",
    "memory",
    "disk",
    "os",
];

/// Releases Kubernetes installers (RKE, RKE2) support.
const SUPPORTED: [(&str, &[&str]); 2] = [
    ("debian", &["11", "12", "13"]),
    ("ubuntu", &["20.04", "22.04", "24.04"]),
];

/// One problem found on the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// Its name in [`FINDINGS`].
    pub id: &'static str,
    /// What was found and what to do.
    pub message: String,
}

/// The step's parameters, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    pub fail_on: Vec<String>,
    pub peers: Vec<String>,
    pub ports: Vec<u16>,
    pub min_memory_mb: i64,
    pub min_disk_gb: i64,
    pub max_clock_skew: i64,
}

impl Limits {
    pub fn from_params(args: &Args) -> Result<Self, PluginError> {
        let fail_on = args.strings("fail_on")?;
        if let Some(bad) = fail_on.iter().find(|f| !FINDINGS.contains(&f.as_str())) {
            return Err(PluginError::param(
                "fail_on",
                format!("`{bad}` is not a finding: use {}", FINDINGS.join(", ")),
            ));
        }
        let peers = args.strings("peers")?;
        if let Some(bad) = peers.iter().find(|p| {
            p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        }) {
            return Err(PluginError::param(
                "peers",
                format!("`{bad}` is not a host name"),
            ));
        }
        let ports = match args.value("ports") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                })
                .collect::<Option<Vec<u16>>>(),
            _ => None,
        }
        .ok_or_else(|| PluginError::param("ports", "expected a list of port numbers"))?;
        let number = |name: &str| -> Result<i64, PluginError> {
            match args.int(name)? {
                Some(n) if n >= 0 => Ok(n),
                _ => Err(PluginError::param(name, "must be 0 or more")),
            }
        };
        Ok(Limits {
            fail_on,
            peers,
            ports,
            min_memory_mb: number("min_memory_mb")?,
            min_disk_gb: number("min_disk_gb")?,
            max_clock_skew: number("max_clock_skew_seconds")?,
        })
    }
}

fn shell(name: &str, script: String) -> Probe {
    Probe::run(name, Run::Shell(script))
}

/// Everything preflight reads, in one round trip.
pub fn probes(limits: &Limits) -> Vec<Probe> {
    let names = limits
        .peers
        .iter()
        .map(|p| {
            format!(
                "if getent hosts {p} >/dev/null; then echo {p} yes; else echo {p} no; fi",
                p = quote(p)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    vec![
        os::probe(),
        shell(
            "ssh_forwarding",
            "sshd -T 2>/dev/null | awk 'tolower($1) == \"allowtcpforwarding\" {print $2}'".into(),
        ),
        shell(
            "user",
            "u=${SUDO_USER:-$(id -un)}; echo \"$u\"; id -nG \"$u\"".into(),
        ),
        shell("swap", "tail -n +2 /proc/swaps".into()),
        shell(
            "sysctl",
            "for k in net/bridge/bridge-nf-call-iptables net/ipv4/ip_forward; do \
             printf '%s=%s\\n' \"$k\" \"$(cat /proc/sys/$k 2>/dev/null)\"; done"
                .into(),
        ),
        shell("clock", "date +%s".into()),
        shell("names", names),
        shell(
            "ports",
            "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null".into(),
        ),
        shell(
            "memory",
            "awk '/^MemTotal:/ {print $2}' /proc/meminfo".into(),
        ),
        shell("disk", "df -Pk / | awk 'NR == 2 {print $4}'".into()),
    ]
}

/// Listening TCP ports in `/proc/net/tcp{,6}` (state 0A).
fn listening(proc_net_tcp: &str) -> Vec<u16> {
    proc_net_tcp
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state) = (fields.get(1)?, fields.get(3)?);
            let port = local.rsplit_once(':')?.1;
            (*state == "0A").then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}

/// The findings from the probes' results; `now` is the control machine's clock (Unix seconds).
pub fn findings(limits: &Limits, request: &PlanRequest, now: u64) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut add = |id: &'static str, message: String| found.push(Finding { id, message });
    let out = |name: &str| probe::stdout(request, name).trim().to_string();

    if out("ssh_forwarding") == "no" {
        add("ssh_forwarding", "sshd has AllowTcpForwarding no: RKE tunnels the Docker socket over SSH (set it to yes in sshd_config)".into());
    }
    let user = out("user");
    let (name, groups) = user.split_once('\n').unwrap_or((user.as_str(), ""));
    if name != "root" && !groups.split_whitespace().any(|g| g == "docker") {
        add("docker_group", format!("SSH user `{name}` is not in the docker group (usermod -aG docker {name}, or the docker step's `users`)"));
    }
    let swap = out("swap");
    if !swap.is_empty() {
        let areas: Vec<&str> = swap
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        add(
            "swap",
            format!(
                "swap is on ({}): the kubelet refuses to start (the swap step turns it off)",
                areas.join(", ")
            ),
        );
    }
    let sysctl = out("sysctl");
    let value = |key: &str| {
        sysctl
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_default()
            .to_string()
    };
    if value("net/bridge/bridge-nf-call-iptables").is_empty() {
        add("br_netfilter", "br_netfilter is not loaded (no /proc/sys/net/bridge): the sysctl step with kubernetes = true loads it".into());
    } else if value("net/bridge/bridge-nf-call-iptables") != "1" {
        add("sysctl", "net.bridge.bridge-nf-call-iptables is not 1 (the sysctl step with kubernetes = true sets it)".into());
    }
    if value("net/ipv4/ip_forward") != "1" {
        add(
            "sysctl",
            "net.ipv4.ip_forward is not 1 (the sysctl step with kubernetes = true sets it)".into(),
        );
    }
    if let Ok(host_time) = out("clock").parse::<i64>() {
        let skew = host_time - i64::try_from(now).unwrap_or(i64::MAX);
        if skew.abs() > limits.max_clock_skew {
            add("clock", format!("the host's clock is {skew:+} s off the control machine's (more than {} s): certificates and etcd need synchronised clocks (NTP)", limits.max_clock_skew));
        }
    }
    let unresolved: Vec<String> = out("names")
        .lines()
        .filter_map(|l| l.strip_suffix(" no"))
        .map(str::to_string)
        .collect();
    if !unresolved.is_empty() {
        add(
            "names",
            format!(
                "cannot resolve {} (the dns step's hosts_entries)",
                unresolved.join(", ")
            ),
        );
    }
    let open = listening(&out("ports"));
    let mut taken: Vec<u16> = limits
        .ports
        .iter()
        .copied()
        .filter(|p| open.contains(p))
        .collect();
    taken.dedup();
    if !taken.is_empty() {
        let list: Vec<String> = taken.iter().map(u16::to_string).collect();
        add(
            "ports",
            format!(
                "TCP ports already in use: {} (a control plane needs them)",
                list.join(", ")
            ),
        );
    }
    if let Ok(kb) = out("memory").parse::<i64>() {
        if kb / 1024 < limits.min_memory_mb {
            add(
                "memory",
                format!(
                    "{} MiB of memory, less than {} MiB",
                    kb / 1024,
                    limits.min_memory_mb
                ),
            );
        }
    }
    if let Ok(kb) = out("disk").parse::<i64>() {
        if kb / (1024 * 1024) < limits.min_disk_gb {
            add(
                "disk",
                format!(
                    "{} GiB free on /, less than {} GiB",
                    kb / (1024 * 1024),
                    limits.min_disk_gb
                ),
            );
        }
    }
    let os = Os::of(request).unwrap_or_default();
    let supported = SUPPORTED
        .iter()
        .any(|(id, versions)| os.id == *id && versions.contains(&os.version.as_str()));
    if !supported {
        add("os", format!("{} is not a release the Kubernetes installers support (Debian 11-13, Ubuntu 20.04-24.04)", os.describe()));
    }
    found
}
