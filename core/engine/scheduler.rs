//! The scheduler: walks the DAG, starting each node as soon as everything it needs is done.
//!
//! Nodes are scheduled by counting unfinished needs (not by one fixed topological order), so
//! every host moves on at its own pace. A failed node blocks only its dependents.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use petgraph::graph::NodeIndex;
use petgraph::Direction;
use tokio::task::JoinSet;

use super::dag::Dag;
use super::events::{Event, Mode, NodeStatus, Recap};
use super::node::{self, Outcome};
use super::run::{RunContext, RunOptions, RunSummary};
use super::state::{self, NodeRecord};

/// Where a node's time went: its own work, and the wait for a slot before it.
#[derive(Clone, Copy, Default)]
struct Timing {
    duration_ms: u64,
    queued_ms: u64,
}

pub(super) struct Scheduler<'a> {
    dag: &'a Dag,
    cx: &'a Arc<RunContext>,
    options: &'a RunOptions,
    waiting_on: Vec<usize>,
    /// Each node's host, as an index into `ready` and `busy`.
    host_of: Vec<usize>,
    /// Ready nodes per host.
    ready: Vec<VecDeque<usize>>,
    /// Hosts with ready nodes, in the order they got them (each once).
    ready_hosts: VecDeque<usize>,
    /// Nodes running per host.
    busy: Vec<usize>,
    /// Hosts with a node running.
    busy_hosts: usize,
    /// Hosts with an exclusive node running.
    exclusive_busy: Vec<bool>,
    status: Vec<Option<NodeStatus>>,
    ready_at: Vec<Option<Instant>>,
    started_at: Vec<Option<Instant>>,
    running: JoinSet<(usize, Outcome)>,
    /// The node each running task works on, to name it when the task panics.
    task_node: HashMap<tokio::task::Id, usize>,
    stop_launching: bool,
}

/// What a panicking task said, if it said it with text.
fn panic_message(err: tokio::task::JoinError) -> String {
    if !err.is_panic() {
        return err.to_string();
    }
    let payload = err.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

impl<'a> Scheduler<'a> {
    pub(super) fn new(dag: &'a Dag, cx: &'a Arc<RunContext>, options: &'a RunOptions) -> Self {
        let waiting_on: Vec<usize> = dag
            .graph
            .node_indices()
            .map(|ix| {
                dag.graph
                    .neighbors_directed(ix, Direction::Incoming)
                    .count()
            })
            .collect();
        let mut hosts: Vec<&str> = Vec::new();
        let host_of: Vec<usize> = dag
            .nodes
            .iter()
            .map(|n| match hosts.iter().position(|h| *h == n.host) {
                Some(index) => index,
                None => {
                    hosts.push(&n.host);
                    hosts.len() - 1
                }
            })
            .collect();
        let mut scheduler = Scheduler {
            dag,
            cx,
            options,
            waiting_on,
            ready: vec![VecDeque::new(); hosts.len()],
            ready_hosts: VecDeque::new(),
            busy: vec![0; hosts.len()],
            busy_hosts: 0,
            exclusive_busy: vec![false; hosts.len()],
            host_of,
            status: vec![None; dag.nodes.len()],
            ready_at: vec![None; dag.nodes.len()],
            started_at: vec![None; dag.nodes.len()],
            running: JoinSet::new(),
            task_node: HashMap::new(),
            stop_launching: false,
        };
        for node in 0..dag.nodes.len() {
            if scheduler.waiting_on[node] == 0 {
                scheduler.make_ready(node);
            }
        }
        scheduler
    }

    fn make_ready(&mut self, node: usize) {
        self.ready_at[node] = Some(Instant::now());
        let host = self.host_of[node];
        if self.ready[host].is_empty() {
            self.ready_hosts.push_back(host);
        }
        self.ready[host].push_back(node);
    }

    /// Starts what may start. `--parallel` bounds the hosts being worked on (like Ansible's
    /// forks); a busy host takes up to `--per-host` nodes, each in a shell of its own.
    /// Counting hosts rather than nodes keeps a slow host's queue from taking the slots of
    /// the others. An exclusive node waits while another one runs on its host; the nodes
    /// queued behind it may pass it meanwhile.
    fn launch_ready(&mut self) {
        for _ in 0..self.ready_hosts.len() {
            if self.stop_launching {
                return;
            }
            let host = self.ready_hosts.pop_front().expect("counted");
            let mut passed = VecDeque::new();
            while let Some(node) = self.ready[host].pop_front() {
                let busy = self.busy[host];
                let allowed = busy < self.options.per_host.max(1)
                    && (busy > 0 || self.busy_hosts < self.options.parallel.max(1));
                if !allowed {
                    self.ready[host].push_front(node);
                    break;
                }
                if self.is_exclusive(node) {
                    if self.exclusive_busy[host] {
                        passed.push_back(node);
                        continue;
                    }
                    self.exclusive_busy[host] = true;
                }
                if busy == 0 {
                    self.busy_hosts += 1;
                }
                self.busy[host] += 1;
                self.launch(node);
            }
            while let Some(node) = passed.pop_back() {
                self.ready[host].push_front(node);
            }
            if !self.ready[host].is_empty() {
                self.ready_hosts.push_back(host);
            }
        }
    }

    fn is_exclusive(&self, node: usize) -> bool {
        self.cx.playbook.steps[self.dag.nodes[node].step].exclusive
    }

    /// Runs until every node has ended or the run is interrupted (returns true then).
    pub(super) async fn run(&mut self, interrupt: impl Future<Output = ()>) -> bool {
        tokio::pin!(interrupt);
        loop {
            self.launch_ready();
            if self.running.is_empty() {
                return false;
            }
            tokio::select! {
                joined = self.running.join_next_with_id() => match joined {
                    Some(Ok((id, (node, outcome)))) => {
                        self.task_node.remove(&id);
                        self.finished(node, outcome);
                    }
                    // A panic is a bug in graphrun or a plugin: its node failed, and says so
                    // (it must never look like a node that was not started).
                    Some(Err(err)) => {
                        if let Some(node) = self.task_node.remove(&err.id()) {
                            let why = panic_message(err);
                            let outcome = Outcome::early(NodeStatus::Failed, Some(format!("graphrun bug: the node panicked: {why}")));
                            self.finished(node, Outcome { attempts: 1, ..outcome });
                        }
                    }
                    None => {}
                },
                _ = &mut interrupt => {
                    self.running.abort_all();
                    while self.running.join_next().await.is_some() {}
                    for node in 0..self.dag.nodes.len() {
                        if self.started_at[node].is_some() && self.status[node].is_none() {
                            let outcome = Outcome::early(NodeStatus::Interrupted, Some("interrupted (Ctrl-C)".into()));
                            self.finished(node, Outcome { attempts: 1, ..outcome });
                        }
                    }
                    return true;
                }
            }
        }
    }

    fn launch(&mut self, node: usize) {
        let spec = &self.dag.nodes[node];
        let name = self.dag.name(&self.cx.playbook, node);
        let cx = self.cx.clone();
        let (step, host) = (spec.step, spec.host.clone());
        self.started_at[node] = Some(Instant::now());
        if self.options.mode == Mode::Apply {
            let mut store = self.cx.state.lock().expect("state lock");
            if let Err(err) = store.started(&name) {
                eprintln!("graphrun: {err}");
            }
        }
        let task = self
            .running
            .spawn(async move { (node, node::run_node(cx, step, host, name).await) });
        self.task_node.insert(task.id(), node);
    }

    fn finished(&mut self, node: usize, outcome: Outcome) {
        let host = self.host_of[node];
        self.busy[host] -= 1;
        if self.busy[host] == 0 {
            self.busy_hosts -= 1;
        }
        if self.is_exclusive(node) {
            self.exclusive_busy[host] = false;
        }
        let name = self.dag.name(&self.cx.playbook, node);
        let spec = &self.dag.nodes[node];
        let timing = Timing {
            duration_ms: self.started_at[node].map_or(0, |t| t.elapsed().as_millis() as u64),
            queued_ms: match (self.ready_at[node], self.started_at[node]) {
                (Some(ready), Some(started)) => (started - ready).as_millis() as u64,
                _ => 0,
            },
        };
        self.status[node] = Some(outcome.status);
        if outcome.status.is_success() {
            self.cx
                .keep_outputs(spec.step, &spec.host, &outcome.outputs);
        }
        if self.options.mode == Mode::Apply {
            let status = if outcome.status == NodeStatus::Done {
                "ok"
            } else {
                outcome.status.word()
            };
            let mut store = self.cx.state.lock().expect("state lock");
            let journaled = store.record(
                name.clone(),
                NodeRecord {
                    status: status.to_string(),
                    input_hash: outcome.input_hash.clone(),
                    finished_at: state::now(),
                    outputs: outcome
                        .outputs
                        .iter()
                        .map(|(name, value)| (name.clone(), self.cx.redactor.redact_json(value)))
                        .collect(),
                    error: outcome.error.clone(),
                },
            );
            if let Err(err) = journaled.and_then(|()| store.save_soon()) {
                eprintln!("graphrun: {err}");
            }
        }
        self.announce(
            node,
            outcome.status,
            timing,
            outcome.attempts,
            outcome.error.clone(),
        );
        let dependents: Vec<NodeIndex> = self
            .dag
            .graph
            .neighbors_directed(NodeIndex::new(node), Direction::Outgoing)
            .collect();
        if outcome.status.is_success() {
            for dependent in dependents {
                let d = self.dag.graph[dependent];
                self.waiting_on[d] -= 1;
                if self.waiting_on[d] == 0 && self.status[d].is_none() {
                    self.make_ready(d);
                }
            }
        } else {
            if self.options.fail_fast {
                self.stop_launching = true;
            }
            if outcome.status != NodeStatus::Interrupted {
                self.block_descendants(node, &name);
            }
        }
    }

    /// Marks everything downstream of a failed node as blocked, naming the cause.
    fn block_descendants(&mut self, failed: usize, failed_name: &str) {
        let mut stack = vec![NodeIndex::new(failed)];
        while let Some(ix) = stack.pop() {
            for dependent in self.dag.graph.neighbors_directed(ix, Direction::Outgoing) {
                let d = self.dag.graph[dependent];
                if self.status[d].is_none() {
                    self.record_unrun(
                        d,
                        NodeStatus::Blocked,
                        format!("needs {failed_name}, which did not succeed"),
                    );
                    stack.push(dependent);
                }
            }
        }
    }

    /// Ends a node that never ran.
    fn record_unrun(&mut self, node: usize, status: NodeStatus, reason: String) {
        self.status[node] = Some(status);
        self.announce(node, status, Timing::default(), 0, Some(reason));
    }

    fn announce(
        &self,
        node: usize,
        status: NodeStatus,
        timing: Timing,
        attempts: u32,
        error: Option<String>,
    ) {
        let spec = &self.dag.nodes[node];
        self.cx.reporter.event(&Event::NodeFinished {
            node: self.dag.name(&self.cx.playbook, node),
            step: self.cx.playbook.steps[spec.step].id.clone(),
            host: spec.host.clone(),
            status,
            duration_ms: timing.duration_ms,
            queued_ms: timing.queued_ms,
            attempts,
            at_ms: self.cx.elapsed_ms(),
            error,
        });
    }

    pub(super) fn finish(&mut self, interrupted: bool) -> RunSummary {
        for node in 0..self.dag.nodes.len() {
            if self.status[node].is_none() {
                let reason = if interrupted {
                    "not started: the run was interrupted"
                } else {
                    "not started: --fail-fast stopped the run"
                };
                self.record_unrun(node, NodeStatus::Cancelled, reason.into());
            }
        }
        let mut recap: BTreeMap<String, Recap> = BTreeMap::new();
        let mut nodes = BTreeMap::new();
        for (index, status) in self.status.iter().enumerate() {
            let status = status.expect("every node has ended");
            let node = &self.dag.nodes[index];
            let row = recap.entry(node.host.clone()).or_default();
            row.add(status);
            let step = &self.cx.playbook.steps[node.step];
            if step.once {
                row.once.push(step.id.clone());
            }
            nodes.insert(self.dag.name(&self.cx.playbook, index), status);
        }
        let failed = nodes.values().any(|s| !s.is_success());
        let exit_code = if interrupted {
            130
        } else if failed {
            1
        } else {
            0
        };
        RunSummary {
            exit_code,
            recap,
            nodes,
        }
    }
}
