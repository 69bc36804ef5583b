//! Connection settings, hosts and groups, from the playbook and the inventory file.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use toml::de::{DeTable, DeValue};

use super::{expand_home, Document, Loader};
use crate::playbook::{Connection, ConnectionKind, Diagnostic, Host, HostKeyChecking};

pub(super) const CONNECTION_KEYS: [&str; 10] = [
    "connection",
    "user",
    "port",
    "identity_file",
    "known_hosts_file",
    "host_key_checking",
    "become",
    "become_password",
    "connect_timeout",
    "jump",
];
const HOST_KEYS: [&str; 3] = ["address", "groups", "vars"];

/// Connection settings as read, before defaults are applied.
#[derive(Default, Clone)]
pub(super) struct Settings {
    connection: Option<ConnectionKind>,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    known_hosts_file: Option<PathBuf>,
    host_key_checking: Option<HostKeyChecking>,
    become_root: Option<bool>,
    become_password: Option<String>,
    connect_timeout: Option<Duration>,
    jump: Option<String>,
}
impl Loader {
    pub(super) fn read_settings(
        &mut self,
        doc: &Document,
        table: &DeTable<'static>,
        allowed: &[&str],
        out: &mut Settings,
    ) {
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            match name {
                "connection" => {
                    out.connection = match self.string(doc, value, name).as_deref() {
                        Some("ssh") => Some(ConnectionKind::Ssh),
                        Some("local") => Some(ConnectionKind::Local),
                        Some(other) => {
                            self.error(doc, value.span(), format!("unknown connection `{other}`"))
                                .help("use \"ssh\" or \"local\"");
                            None
                        }
                        None => None,
                    }
                }
                "user" => out.user = self.string(doc, value, name),
                "port" => out.port = self.integer(doc, value, name, 1..65536).map(|p| p as u16),
                "identity_file" => {
                    out.identity_file = self
                        .string(doc, value, name)
                        .map(|p| expand_home(&doc.source.path, &p))
                }
                "known_hosts_file" => {
                    out.known_hosts_file = self
                        .string(doc, value, name)
                        .map(|p| expand_home(&doc.source.path, &p))
                }
                "host_key_checking" => {
                    out.host_key_checking = match self.string(doc, value, name).as_deref() {
                        Some("strict") => Some(HostKeyChecking::Strict),
                        Some("accept-new") => Some(HostKeyChecking::AcceptNew),
                        Some("off") => Some(HostKeyChecking::Off),
                        Some(other) => {
                            self.error(
                                doc,
                                value.span(),
                                format!("unknown host_key_checking `{other}`"),
                            )
                            .help("use \"strict\", \"accept-new\" or \"off\"");
                            None
                        }
                        None => None,
                    }
                }
                "become" => out.become_root = self.boolean(doc, value, name),
                "become_password" => {
                    out.become_password = match value.get_ref() {
                        DeValue::Table(table) => self.secret(doc, table),
                        _ => None,
                    };
                    if out.become_password.is_none() {
                        self.error(doc, value.span(), "`become_password` must be a secret reference")
                            .help("write { env = \"VARIABLE\" } or { file = \"path\" }: a password never sits in the playbook");
                    }
                }
                "connect_timeout" => {
                    // ssh counts whole seconds; beyond an hour a dead host looks like a hang.
                    let range = Duration::from_secs(1)..=Duration::from_secs(3600);
                    out.connect_timeout = self.duration(doc, value, name, range)
                }
                "jump" => out.jump = self.string(doc, value, name),
                _ if allowed.contains(&name) => {}
                _ => {
                    let mut keys: Vec<&str> = allowed.to_vec();
                    keys.extend(CONNECTION_KEYS.iter().filter(|k| !allowed.contains(*k)));
                    self.error(doc, key.span(), format!("unknown key `{name}`"))
                        .help(format!("allowed here: {}", keys.join(", ")))
                        .suggest(name, &keys);
                }
            }
        }
    }

    pub(super) fn read_hosts(&mut self, docs: &[&Document], defaults: &Settings) -> Vec<Host> {
        let mut hosts: Vec<Host> = Vec::new();
        for doc in docs {
            let Some((_, table)) = self.table_at(doc, doc.get("hosts"), "hosts") else {
                continue;
            };
            for (key, value) in table.iter() {
                let name = key.get_ref().to_string();
                if !self.check_name(doc, &name, key.span(), "a host name") {
                    continue;
                }
                if hosts.iter().any(|h| h.name == name) {
                    self.error(doc, key.span(), format!("host `{name}` is defined twice"))
                        .help("a host is defined once, in the playbook or in the inventory");
                    continue;
                }
                let Some((_, fields)) = self.table_at(doc, Some(value), &format!("hosts.{name}"))
                else {
                    continue;
                };
                if let Some(host) = self.read_host(doc, &name, key.span(), fields, defaults) {
                    hosts.push(host);
                }
            }
        }
        hosts
    }

    pub(super) fn read_host(
        &mut self,
        doc: &Document,
        name: &str,
        span: Range<usize>,
        fields: &DeTable<'static>,
        defaults: &Settings,
    ) -> Option<Host> {
        let mut settings = defaults.clone();
        self.read_settings(doc, fields, &HOST_KEYS, &mut settings);
        let address = fields
            .get("address")
            .and_then(|v| self.string(doc, v, "address"));
        let groups = fields
            .get("groups")
            .map(|v| {
                self.string_list(doc, v, "groups")
                    .into_iter()
                    .map(|(g, _)| g)
                    .collect()
            })
            .unwrap_or_default();
        let vars = match fields.get("vars") {
            Some(value) => match self.json(doc, value) {
                Value::Object(map) => map,
                _ => {
                    self.error(doc, value.span(), "`vars` must be a table");
                    Default::default()
                }
            },
            None => Default::default(),
        };
        let kind = settings.connection.unwrap_or(match address.as_deref() {
            Some("localhost") => ConnectionKind::Local,
            _ => ConnectionKind::Ssh,
        });
        let address = match (address, kind) {
            (Some(address), _) => address,
            (None, ConnectionKind::Local) => "localhost".to_string(),
            (None, ConnectionKind::Ssh) => {
                self.error(doc, span, format!("host `{name}` has no `address`"))
                    .help("add address = \"IP or DNS name\", or connection = \"local\" for this machine");
                return None;
            }
        };
        Some(Host {
            name: name.to_string(),
            address,
            groups,
            vars,
            connection: Connection {
                kind,
                user: settings.user,
                port: settings.port,
                identity_file: settings.identity_file,
                known_hosts_file: settings.known_hosts_file,
                host_key_checking: settings
                    .host_key_checking
                    .unwrap_or(HostKeyChecking::AcceptNew),
                become_root: settings.become_root.unwrap_or(false),
                become_password: settings.become_password,
                connect_timeout: settings.connect_timeout.unwrap_or(Duration::from_secs(10)),
                jump: settings.jump,
            },
        })
    }

    pub(super) fn read_groups(
        &mut self,
        docs: &[&Document],
        hosts: &[Host],
    ) -> BTreeMap<String, Vec<String>> {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for host in hosts {
            for group in &host.groups {
                groups
                    .entry(group.clone())
                    .or_default()
                    .push(host.name.clone());
            }
        }
        for doc in docs {
            let Some((_, table)) = self.table_at(doc, doc.get("groups"), "groups") else {
                continue;
            };
            for (key, value) in table.iter() {
                let group = key.get_ref().to_string();
                if !self.check_name(doc, &group, key.span(), "a group name") {
                    continue;
                }
                let Some((_, fields)) = self.table_at(doc, Some(value), &format!("groups.{group}"))
                else {
                    continue;
                };
                for (field, value) in fields.iter() {
                    if field.get_ref() != "hosts" {
                        self.error(
                            doc,
                            field.span(),
                            format!("unknown key `{}` in group `{group}`", field.get_ref()),
                        )
                        .help("a group has one key: hosts = [\"name\", …]");
                        continue;
                    }
                    for (member, span) in self.string_list(doc, value, "hosts") {
                        if !hosts.iter().any(|h| h.name == member) {
                            let diagnostic = Diagnostic::at(
                                &doc.source,
                                span,
                                format!("unknown host `{member}` in group `{group}`"),
                            )
                            .suggest(&member, hosts.iter().map(|h| h.name.as_str()));
                            self.diagnostics.push(diagnostic);
                            continue;
                        }
                        let members = groups.entry(group.clone()).or_default();
                        if !members.contains(&member) {
                            members.push(member);
                        }
                    }
                }
            }
        }
        groups
    }
}

/// Adds the `[groups.*]` memberships to each host's own group list.
pub(super) fn with_group_tables(
    mut hosts: Vec<Host>,
    groups: &BTreeMap<String, Vec<String>>,
) -> Vec<Host> {
    for host in &mut hosts {
        for (group, members) in groups {
            if members.contains(&host.name) && !host.groups.contains(group) {
                host.groups.push(group.clone());
            }
        }
    }
    hosts
}
