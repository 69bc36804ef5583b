//! The DAG of (step, host) nodes: what runs where, and what each node waits for.

use petgraph::graph::{DiGraph, NodeIndex};

use crate::playbook::diagnostic::closest;
use crate::playbook::{Playbook, Wait};

/// One (step, host) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Index into `Playbook::steps`.
    pub step: usize,
    /// Host name.
    pub host: String,
}

/// The nodes of a run and their dependencies (edge a → b: b waits for a).
pub struct Dag {
    /// The graph; weights index into `nodes`.
    pub graph: DiGraph<usize, ()>,
    /// Nodes in playbook order (steps in file order, hosts in inventory order).
    pub nodes: Vec<Node>,
}

/// Which part of the playbook a run covers.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only these hosts (and groups); all when empty.
    pub limit: Vec<String>,
    /// Only these steps; all when empty.
    pub only: Vec<String>,
}

impl Dag {
    /// Expands the playbook's steps over their hosts (a `once` step over the first of them that
    /// the selection covers). Needs on nodes left out by the selection are dropped: the user
    /// asked to run a part, and answers for the rest.
    pub fn build(playbook: &Playbook, selection: &Selection) -> Result<Self, String> {
        let hosts_selected = selection_hosts(playbook, &selection.limit)?;
        for id in &selection.only {
            if playbook.step(id).is_none() {
                let ids = playbook.steps.iter().map(|s| s.id.as_str());
                return Err(format!(
                    "--only: there is no step `{id}`{}",
                    did_you_mean(id, ids)
                ));
            }
        }
        let mut graph = DiGraph::new();
        let mut nodes = Vec::new();
        let mut index: std::collections::HashMap<(usize, &str), NodeIndex> = Default::default();
        for (s, step) in playbook.steps.iter().enumerate() {
            if !selection.only.is_empty() && !selection.only.contains(&step.id) {
                continue;
            }
            let hosts = step.hosts.iter().filter(|h| hosts_selected.contains(h));
            let hosts: Vec<&String> = if step.once {
                hosts.take(1).collect()
            } else {
                hosts.collect()
            };
            for host in hosts {
                let ix = graph.add_node(nodes.len());
                nodes.push(Node {
                    step: s,
                    host: host.clone(),
                });
                index.insert((s, host.as_str()), ix);
            }
        }
        for (ix, node) in nodes.iter().enumerate() {
            let step = &playbook.steps[node.step];
            let target = NodeIndex::new(ix);
            for need in &step.needs {
                let n = playbook
                    .steps
                    .iter()
                    .position(|s| &s.id == need)
                    .expect("needs are validated");
                // A `once` need has one node, whichever host it ran on: every node waits for it.
                let sources: Vec<NodeIndex> = match step.wait {
                    _ if playbook.steps[n].once => (playbook.steps[n].hosts.iter())
                        .find_map(|h| index.get(&(n, h.as_str())).copied())
                        .into_iter()
                        .collect(),
                    Wait::Host => index
                        .get(&(n, node.host.as_str()))
                        .copied()
                        .into_iter()
                        .collect(),
                    Wait::All => playbook.steps[n]
                        .hosts
                        .iter()
                        .filter_map(|h| index.get(&(n, h.as_str())).copied())
                        .collect(),
                };
                for source in sources {
                    graph.add_edge(source, target, ());
                }
            }
        }
        Ok(Dag { graph, nodes })
    }

    /// `step@host`, the node's name in output and state.
    pub fn name(&self, playbook: &Playbook, node: usize) -> String {
        let node = &self.nodes[node];
        format!("{}@{}", playbook.steps[node.step].id, node.host)
    }
}

fn selection_hosts(playbook: &Playbook, limit: &[String]) -> Result<Vec<String>, String> {
    if limit.is_empty() {
        return Ok(playbook.hosts.iter().map(|h| h.name.clone()).collect());
    }
    let mut selected = Vec::new();
    for name in limit {
        if let Some(members) = playbook.groups.get(name) {
            selected.extend(members.iter().cloned());
        } else if playbook.host(name).is_some() {
            selected.push(name.clone());
        } else {
            let names = (playbook.hosts.iter().map(|h| h.name.as_str()))
                .chain(playbook.groups.keys().map(String::as_str));
            return Err(format!(
                "--limit: there is no host or group `{name}`{}",
                did_you_mean(name, names)
            ));
        }
    }
    Ok(selected)
}

/// "; did you mean `web`?" when a name is a likely typo of one of `names`.
fn did_you_mean<'a>(found: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    closest(found, names).map_or(String::new(), |best| format!("; did you mean `{best}`?"))
}
