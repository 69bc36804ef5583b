//! RKE1's nodes: from the step's `nodes` parameter (as cluster.yml lists them) or from the
//! inventory's `controlplane`, `etcd` and `worker` groups, checked with RKE's own rules so a
//! mistake shows at `validate` (or before `rke up`), not in RKE's log on the master.

use std::collections::BTreeSet;

use graphrun_plugin_api::{HostInfo, PluginError};
use graphrun_plugin_kit::names;
use serde_json::Value;

use crate::cluster_yml::Node;

/// RKE's node roles; with node sources from the inventory, the groups of these names.
pub const ROLES: [&str; 3] = ["controlplane", "etcd", "worker"];

/// The keys a table of `nodes` may have (yaml tags of RKE's `RKEConfigNode`).
const NODE_KEYS: [&str; 6] = [
    "address",
    "user",
    "role",
    "hostname_override",
    "internal_address",
    "port",
];

/// A node and how error messages name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Labelled {
    /// `node 2 of nodes` or `host worker`.
    pub label: String,
    /// The node as cluster.yml lists it.
    pub node: Node,
}

/// Reads the `nodes` parameter: a list of tables with RKE's node keys; `role` is a list or a
/// single string, `port` a number or a string.
pub fn from_param(value: &Value) -> Result<Vec<Labelled>, PluginError> {
    let Value::Array(items) = value else {
        return Err(nodes_error("must be a list of tables such as { address = \"10.0.0.1\", user = \"ubuntu\", role = [\"controlplane\", \"etcd\"] }"));
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let label = format!("node {} of `nodes`", index + 1);
            let Value::Object(table) = item else {
                return Err(nodes_error(format!("{label} is not a table")));
            };
            if let Some(key) = table.keys().find(|k| !NODE_KEYS.contains(&k.as_str())) {
                return Err(nodes_error(format!(
                    "{label}: unknown key `{key}` (a node has {})",
                    NODE_KEYS.join(", ")
                )));
            }
            let text = |key: &str| -> Result<Option<String>, PluginError> {
                match table.get(key) {
                    None => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(Value::Number(n)) if key == "port" => Ok(Some(n.to_string())),
                    Some(_) => Err(nodes_error(format!("{label}: `{key}` must be a string"))),
                }
            };
            let role = match table.get("role") {
                None => Vec::new(),
                Some(Value::String(role)) => vec![role.clone()],
                Some(Value::Array(roles)) if roles.iter().all(Value::is_string) => roles
                    .iter()
                    .filter_map(|r| r.as_str().map(str::to_string))
                    .collect(),
                Some(_) => {
                    return Err(nodes_error(format!(
                        "{label}: `role` must be a list of strings"
                    )))
                }
            };
            Ok(Labelled {
                node: Node {
                    address: text("address")?.unwrap_or_default(),
                    user: text("user")?.unwrap_or_default(),
                    role,
                    hostname_override: text("hostname_override")?,
                    internal_address: text("internal_address")?,
                    port: text("port")?,
                },
                label,
            })
        })
        .collect()
}

/// Every inventory host in one of the role groups, roles in RKE's order, named after the host.
pub fn from_inventory(hosts: &[HostInfo]) -> Vec<Labelled> {
    hosts
        .iter()
        .filter_map(|host| {
            let role: Vec<String> = ROLES
                .iter()
                .filter(|role| host.groups.iter().any(|g| g == *role))
                .map(|role| role.to_string())
                .collect();
            (!role.is_empty()).then(|| Labelled {
                label: format!("host `{}`", host.name),
                node: Node {
                    address: host.address.clone(),
                    user: host.user.clone().unwrap_or_default(),
                    role,
                    hostname_override: Some(host.name.clone()),
                    internal_address: None,
                    port: None,
                },
            })
        })
        .collect()
}

/// RKE's checks of the node list (`validateDuplicateNodes`, `validateHostsOptions`, the host
/// counts), every problem at once, each with what to do.
pub fn check(nodes: &[Labelled]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut addresses = BTreeSet::new();
    let mut names = BTreeSet::new();
    for Labelled { label, node } in nodes {
        if node.address.is_empty() {
            problems.push(format!(
                "address for {label} is not provided: set `address`"
            ));
        } else if !addresses.insert(node.address.as_str()) {
            problems.push(format!(
                "the cluster can't have duplicate node {}: {label} repeats an address",
                node.address
            ));
        }
        if let Some(name) = &node.hostname_override {
            if !names.insert(name.as_str()) {
                problems.push(format!(
                    "the cluster can't have duplicate node {name}: {label} repeats a hostname_override"
                ));
            }
            if let Err(invalid) = names::check_object_name("nodes", name, 253) {
                problems.push(format!(
                    "hostname_override for {label}: {}",
                    invalid.message
                ));
            }
        }
        if node.user.is_empty() {
            problems.push(format!(
                "user for {label} is not provided: set `user` (the SSH user RKE logs in as, in the docker group)"
            ));
        }
        if node.role.is_empty() {
            problems.push(format!(
                "role for {label} is not provided: set `role` to some of {}",
                ROLES.join(", ")
            ));
        }
        for role in node.role.iter().filter(|r| !ROLES.contains(&r.as_str())) {
            problems.push(format!(
                "role `{role}` for {label} is not recognized: RKE knows {}",
                ROLES.join(", ")
            ));
        }
    }
    for (role, what) in [("etcd", "etcd"), ("controlplane", "control plane")] {
        if !nodes.iter().any(|n| n.node.role.iter().any(|r| r == role)) {
            problems.push(format!(
                "the cluster must have at least one {what} host: give one or more nodes the role `{role}`"
            ));
        }
    }
    problems
}

fn nodes_error(message: impl Into<String>) -> PluginError {
    PluginError::param("nodes", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inventory_hosts_outside_the_role_groups_are_not_nodes() {
        let host = |name: &str, groups: &[&str]| HostInfo {
            name: name.into(),
            address: format!("10.0.0.{}", name.len()),
            user: Some("ubuntu".into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        };
        let nodes = from_inventory(&[
            host("master", &["etcd", "gpu", "controlplane"]),
            host("bastion", &["jump"]),
        ]);
        assert_eq!(nodes.len(), 1);
        assert_eq!(nodes[0].node.role, ["controlplane", "etcd"]);
        assert_eq!(nodes[0].node.hostname_override.as_deref(), Some("master"));
    }

    #[test]
    fn a_single_role_string_and_a_numeric_port_are_read() {
        let nodes =
            from_param(&json!([{"address": "a", "user": "u", "role": "worker", "port": 2222}]))
                .unwrap();
        assert_eq!(nodes[0].node.role, ["worker"]);
        assert_eq!(nodes[0].node.port.as_deref(), Some("2222"));
    }
}
