//! The playbook: what to run, where, in which order. Loaded from TOML, fully validated before any
//! host is touched.

mod check;
pub mod diagnostic;
mod filters;
mod load;
pub mod template;
mod uploads;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use graphrun_plugin_api::{HostInfo, Params};

pub use diagnostic::{Diagnostic, Severity, Source};
pub use load::load;

/// A validated playbook (plus inventory).
#[derive(Debug, Clone)]
pub struct Playbook {
    /// Path of the playbook file.
    pub path: PathBuf,
    /// Free variables (`vars.*`), secrets resolved.
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Hosts in file order.
    pub hosts: Vec<Host>,
    /// Group name → host names.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Steps in file order.
    pub steps: Vec<Step>,
    /// Where artifacts come from and are cached (`[artifacts]`).
    pub artifacts: crate::artifacts::Settings,
    /// Every secret value, to be redacted from all output.
    pub secrets: Vec<String>,
    /// Problems that do not stop a run (printed before it).
    pub warnings: Vec<Diagnostic>,
}

impl Playbook {
    /// The folder relative paths in the playbook are resolved from.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// A host by name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// A step by id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }
}

/// The ids of every step `step` waits for, directly or through other steps.
pub fn ancestors<'a>(step: &'a Step, steps: &'a [Step]) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&str> = step.needs.iter().map(String::as_str).collect();
    while let Some(id) = stack.pop() {
        if seen.insert(id) {
            if let Some(need) = steps.iter().find(|s| s.id == id) {
                stack.extend(need.needs.iter().map(String::as_str));
            }
        }
    }
    seen
}

/// A server (or the control machine itself).
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// Inventory name.
    pub name: String,
    /// Address or DNS name.
    pub address: String,
    /// Groups, from the host's `groups` and the `[groups.*]` tables.
    pub groups: Vec<String>,
    /// Host variables (`host.vars.*`).
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// How to reach it.
    pub connection: Connection,
}

impl Host {
    /// The host as plugins see it.
    pub fn info(&self) -> HostInfo {
        HostInfo {
            name: self.name.clone(),
            address: self.address.clone(),
            user: self.connection.user.clone(),
            groups: self.groups.clone(),
            vars: self.vars.clone(),
        }
    }
}

/// How the engine reaches a host.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    /// SSH or the control machine itself.
    pub kind: ConnectionKind,
    /// Login user.
    pub user: Option<String>,
    /// SSH port.
    pub port: Option<u16>,
    /// Private key file.
    pub identity_file: Option<PathBuf>,
    /// known_hosts file to verify and record host keys in.
    pub known_hosts_file: Option<PathBuf>,
    /// Host key policy.
    pub host_key_checking: HostKeyChecking,
    /// Run ops through sudo.
    pub become_root: bool,
    /// sudo password (a secret), if sudo needs one.
    pub become_password: Option<String>,
    /// Give up connecting after this long.
    pub connect_timeout: Duration,
    /// Bastion, `user@host:port`.
    pub jump: Option<String>,
}

/// Transport to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    /// OpenSSH.
    Ssh,
    /// The control machine itself.
    Local,
}

/// What to do with a host key that is not in known_hosts yet, or has changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeyChecking {
    /// Only keys already in known_hosts.
    Strict,
    /// Trust on first use; a changed key is always refused.
    AcceptNew,
    /// No checking at all (warned about).
    Off,
}

/// One step of the playbook: a plugin applied to some hosts.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Table key.
    pub id: String,
    /// Plugin name.
    pub plugin: String,
    /// Target host names, in inventory order.
    pub hosts: Vec<String>,
    /// Step ids that must be done first.
    pub needs: Vec<String>,
    /// Whether needs are awaited on the same host or on every host.
    pub wait: Wait,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// Pause between attempts.
    pub retry_delay: Duration,
    /// Limit for one attempt.
    pub timeout: Option<Duration>,
    /// Template expression; the node is skipped when it is false.
    pub when: Option<String>,
    /// Its nodes never run at the same time as another exclusive node on the same host.
    pub exclusive: bool,
    /// One node only, on the first of `hosts` that the run covers (cluster-scoped work).
    pub once: bool,
    /// Plugin parameters, templates unrendered, defaults applied.
    pub params: Params,
}

/// How a step waits for its needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// After each need on the same host (hosts pipeline independently).
    Host,
    /// After each need on every host it runs on.
    All,
}
