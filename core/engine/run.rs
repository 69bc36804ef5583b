//! The scheduler: walks the DAG, starting each node as soon as everything it needs is done.
//!
//! Nodes are scheduled by counting unfinished needs (not by one fixed topological order), so
//! every host moves on at its own pace. A failed node blocks only its dependents.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use petgraph::graph::NodeIndex;
use petgraph::Direction;
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use super::dag::{Dag, Selection};
use super::events::{Event, Mode, NodeStatus, Recap, Reporter};
use super::node::{self, Outcome};
use super::redact::Redactor;
use super::state::{self, NodeRecord, StateStore};
use crate::playbook::{template, Playbook};
use crate::plugins::Registry;
use crate::transport::{Connections, Frame, Transport};
use graphrun_plugin_api::{HostInfo, Op, Run};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// apply or plan.
    pub mode: Mode,
    /// Hosts worked on at once (like Ansible's forks).
    pub parallel: usize,
    /// Nodes running at once on one host (they share its shell; more means deeper pipelining).
    pub per_host: usize,
    /// Stop starting nodes after the first failure.
    pub fail_fast: bool,
    /// Ignore the state file's record of earlier runs.
    pub fresh: bool,
    /// Part of the playbook to run.
    pub selection: Selection,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            mode: Mode::Apply,
            parallel: 64,
            per_host: 16,
            fail_fast: false,
            fresh: false,
            selection: Selection::default(),
        }
    }
}

/// What a run ended with.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// 0 all fine, 1 a node failed, 130 interrupted.
    pub exit_code: i32,
    /// Counts per host.
    pub recap: BTreeMap<String, Recap>,
    /// Final status of every node, by `step@host`.
    pub nodes: BTreeMap<String, NodeStatus>,
}

/// A host's facts, or why they could not be gathered.
type FactsResult = Result<BTreeMap<String, String>, String>;

/// The outputs one step's nodes produced.
#[derive(Default)]
struct StepOutputs {
    by_host: HashMap<String, BTreeMap<String, serde_json::Value>>,
    first: Option<BTreeMap<String, serde_json::Value>>,
}

/// Everything nodes share during a run.
pub struct RunContext {
    pub(super) playbook: Arc<Playbook>,
    pub(super) registry: Arc<Registry>,
    pub(super) connections: Arc<Connections>,
    pub(super) mode: Mode,
    pub(super) redactor: Redactor,
    pub(super) env: minijinja::Environment<'static>,
    pub(super) reporter: Arc<dyn Reporter>,
    shared: minijinja::Value,
    facts: HashMap<String, OnceCell<FactsResult>>,
    outputs: Mutex<HashMap<usize, StepOutputs>>,
    /// Per step, every step it waits for, directly or not.
    ancestors: Vec<Vec<usize>>,
    host_infos: HashMap<String, HostInfo>,
    state: Mutex<StateStore>,
    log: Option<RunLog>,
    data_dir: PathBuf,
}

impl RunContext {
    /// The host's gathered facts (one round trip, once per run).
    pub(super) async fn facts(&self, host: &str) -> Result<BTreeMap<String, String>, String> {
        let cell = self.facts.get(host).expect("hosts are known");
        cell.get_or_init(|| async {
            let session = self.connections.session(host).await?;
            let op = Op::check(Run::Shell(node::FACTS_SCRIPT.to_string()));
            let frames = session
                .run(&[op], &HashMap::new(), false)
                .await
                .map_err(|e| format!("{e:?}"))?;
            Ok(frames
                .first()
                .map(|f| node::parse_facts(&f.stdout))
                .unwrap_or_default())
        })
        .await
        .clone()
    }

    /// The template context of a node. `steps.ID.outputs` holds, for each step this one
    /// needs (directly or not), the outputs of the same host's node, or else those of the
    /// first host whose node of that step produced outputs.
    pub(super) fn template_context(
        &self,
        step: usize,
        host: &str,
        facts: &BTreeMap<String, String>,
    ) -> minijinja::Value {
        let outputs = self.outputs.lock().expect("outputs lock");
        let mut steps = BTreeMap::new();
        for need in &self.ancestors[step] {
            if let Some(produced) = outputs.get(need) {
                if let Some(found) = produced.by_host.get(host).or(produced.first.as_ref()) {
                    steps.insert(
                        self.playbook.steps[*need].id.as_str(),
                        serde_json::json!({ "outputs": found }),
                    );
                }
            }
        }
        minijinja::context! {
            host => minijinja::Value::from_serialize(self.host_info(host)),
            facts => minijinja::Value::from_serialize(facts),
            steps => minijinja::Value::from_serialize(&steps),
            ..self.shared.clone()
        }
    }

    /// Keeps a node's outputs for the templates of later nodes (only non-empty ones).
    fn keep_outputs(&self, step: usize, host: &str, outputs: &BTreeMap<String, serde_json::Value>) {
        if outputs.is_empty() {
            return;
        }
        let mut all = self.outputs.lock().expect("outputs lock");
        let produced = all.entry(step).or_default();
        produced.first.get_or_insert_with(|| outputs.clone());
        produced.by_host.insert(host.to_string(), outputs.clone());
    }

    pub(super) fn host_info(&self, host: &str) -> HostInfo {
        self.host_infos[host].clone()
    }

    pub(super) fn fetch_dir(&self, host: &str) -> PathBuf {
        self.data_dir.join("fetched").join(host)
    }

    pub(super) fn resumable(&self, node: &str, input_hash: &str) -> Option<NodeRecord> {
        self.state
            .lock()
            .expect("state lock")
            .resumable(node, input_hash)
            .cloned()
    }

    pub(super) fn log_op(
        &self,
        node: &str,
        op: &Op,
        frame: &Frame,
        status: super::events::OpStatus,
    ) {
        if let Some(log) = &self.log {
            log.write(&self.redactor, node, op, frame, status);
        }
    }
}

/// Per-run log: `.graphrun/<playbook>/runs/<run id>/ops.log`, every op of every node with its
/// output, secrets redacted. One file per run keeps large runs cheap (no file per host).
struct RunLog {
    file: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl RunLog {
    fn create(path: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        Ok(RunLog {
            file: Mutex::new(std::io::BufWriter::new(file)),
        })
    }

    fn write(
        &self,
        redactor: &Redactor,
        node: &str,
        op: &Op,
        frame: &Frame,
        status: super::events::OpStatus,
    ) {
        let mut text = format!(
            "== {} {node} {:?} exit={} :: {}\n",
            state::now(),
            status,
            frame.exit_code.map_or("-".into(), |c| c.to_string()),
            op.summary()
        );
        // A fetched file's content is not log material.
        let stdout = if matches!(op, Op::Fetch { .. }) {
            &[][..]
        } else {
            &frame.stdout[..]
        };
        for (name, bytes) in [("stdout", stdout), ("stderr", &frame.stderr[..])] {
            if !bytes.is_empty() {
                text.push_str(&format!(
                    "-- {name}\n{}\n",
                    String::from_utf8_lossy(bytes).trim_end()
                ));
            }
        }
        let _ = self
            .file
            .lock()
            .expect("log lock")
            .write_all(redactor.redact(&text).as_bytes());
    }

    fn flush(&self) {
        let _ = self.file.lock().expect("log lock").flush();
    }
}

/// Runs (or plans) a playbook. `interrupt` resolves on Ctrl-C: no new node starts, running
/// nodes are stopped and recorded as interrupted, state is saved.
pub async fn execute(
    playbook: Playbook,
    registry: Arc<Registry>,
    transport: Transport,
    options: RunOptions,
    reporter: Arc<dyn Reporter>,
    interrupt: impl Future<Output = ()>,
) -> Result<RunSummary, String> {
    let started = Instant::now();
    let playbook = Arc::new(playbook);
    let dag = Dag::build(&playbook, &options.selection)?;
    let data_dir = state::playbook_dir(&playbook.path);
    let store = StateStore::open(&playbook.path, options.fresh)?;
    let run_id = humantime::format_rfc3339_millis(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    let log = if options.mode == Mode::Apply {
        let dir = data_dir.join("runs").join(&run_id);
        state::private_dir(&dir)
            .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        let path = dir.join("ops.log");
        Some(
            RunLog::create(&path)
                .map_err(|err| format!("cannot create {}: {err}", path.display()))?,
        )
    } else {
        None
    };
    let used_hosts: Vec<_> = playbook
        .hosts
        .iter()
        .filter(|h| dag.nodes.iter().any(|n| n.host == h.name))
        .cloned()
        .collect();
    let connections = Arc::new(Connections::new(transport, &used_hosts));
    let shared = minijinja::context! {
        vars => minijinja::Value::from_serialize(&playbook.vars),
        hosts => minijinja::Value::from_serialize(
            playbook.hosts.iter().map(|h| (h.name.clone(), node::host_info(h))).collect::<BTreeMap<_, _>>()
        ),
        groups => minijinja::Value::from_serialize(&playbook.groups),
    };
    let cx = Arc::new(RunContext {
        facts: used_hosts
            .iter()
            .map(|h| (h.name.clone(), OnceCell::new()))
            .collect(),
        playbook: playbook.clone(),
        registry,
        connections: connections.clone(),
        mode: options.mode,
        redactor: Redactor::new(&playbook.secrets),
        env: template::environment(),
        reporter: reporter.clone(),
        shared,
        outputs: Mutex::new(HashMap::new()),
        ancestors: ancestors(&playbook),
        host_infos: playbook
            .hosts
            .iter()
            .map(|h| (h.name.clone(), node::host_info(h)))
            .collect(),
        state: Mutex::new(store),
        log,
        data_dir,
    });
    let mut per_host_nodes: BTreeMap<String, usize> = BTreeMap::new();
    for node in &dag.nodes {
        *per_host_nodes.entry(node.host.clone()).or_default() += 1;
    }
    reporter.event(&Event::RunStarted {
        run_id,
        playbook: playbook.path.display().to_string(),
        mode: options.mode,
        hosts: per_host_nodes,
    });
    {
        let connections = connections.clone();
        let parallel = options.parallel.max(used_hosts.len().min(64));
        tokio::spawn(async move { connections.warm_up(parallel).await });
    }
    let mut scheduler = Scheduler::new(&dag, &cx, &options);
    let interrupted = scheduler.run(interrupt).await;
    let summary = scheduler.finish(interrupted, started);
    cx.connections.close(interrupted).await;
    if let Some(log) = &cx.log {
        log.flush();
    }
    let complete = options.mode == Mode::Apply
        && summary.exit_code == 0
        && options.selection.limit.is_empty()
        && options.selection.only.is_empty();
    if options.mode == Mode::Apply {
        let mut store = cx.state.lock().expect("state lock");
        store.set_complete(complete);
        store.save()?;
    }
    reporter.event(&Event::RunFinished {
        exit_code: summary.exit_code,
        duration_ms: started.elapsed().as_millis() as u64,
        recap: summary.recap.clone(),
    });
    Ok(summary)
}

/// Per step, the indexes of every step it waits for, directly or not.
fn ancestors(playbook: &Playbook) -> Vec<Vec<usize>> {
    let index = |id: &str| {
        playbook
            .steps
            .iter()
            .position(|s| s.id == id)
            .expect("needs are validated")
    };
    playbook
        .steps
        .iter()
        .map(|step| {
            let mut seen: Vec<usize> = Vec::new();
            let mut stack: Vec<usize> = step.needs.iter().map(|n| index(n)).collect();
            while let Some(need) = stack.pop() {
                if !seen.contains(&need) {
                    seen.push(need);
                    stack.extend(playbook.steps[need].needs.iter().map(|n| index(n)));
                }
            }
            seen
        })
        .collect()
}

struct Scheduler<'a> {
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
    status: Vec<Option<NodeStatus>>,
    started_at: Vec<Option<Instant>>,
    running: JoinSet<(usize, Outcome)>,
    stop_launching: bool,
}

impl<'a> Scheduler<'a> {
    fn new(dag: &'a Dag, cx: &'a Arc<RunContext>, options: &'a RunOptions) -> Self {
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
            host_of,
            status: vec![None; dag.nodes.len()],
            started_at: vec![None; dag.nodes.len()],
            running: JoinSet::new(),
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
        let host = self.host_of[node];
        if self.ready[host].is_empty() {
            self.ready_hosts.push_back(host);
        }
        self.ready[host].push_back(node);
    }

    /// Starts what may start. `--parallel` bounds the hosts being worked on (like Ansible's
    /// forks); a busy host takes up to `--per-host` nodes, which pipeline through its shell.
    /// Counting hosts rather than nodes keeps a slow host's queue from taking the slots of
    /// the others.
    fn launch_ready(&mut self) {
        for _ in 0..self.ready_hosts.len() {
            if self.stop_launching {
                return;
            }
            let host = self.ready_hosts.pop_front().expect("counted");
            while let Some(&node) = self.ready[host].front() {
                let busy = self.busy[host];
                let allowed = busy < self.options.per_host.max(1)
                    && (busy > 0 || self.busy_hosts < self.options.parallel.max(1));
                if !allowed {
                    break;
                }
                self.ready[host].pop_front();
                if busy == 0 {
                    self.busy_hosts += 1;
                }
                self.busy[host] += 1;
                self.launch(node);
            }
            if !self.ready[host].is_empty() {
                self.ready_hosts.push_back(host);
            }
        }
    }

    /// Runs until every node has ended or the run is interrupted (returns true then).
    async fn run(&mut self, interrupt: impl Future<Output = ()>) -> bool {
        tokio::pin!(interrupt);
        loop {
            self.launch_ready();
            if self.running.is_empty() {
                return false;
            }
            tokio::select! {
                joined = self.running.join_next() => {
                    if let Some(Ok((node, outcome))) = joined {
                        self.finished(node, outcome);
                    }
                }
                _ = &mut interrupt => {
                    self.running.abort_all();
                    while self.running.join_next().await.is_some() {}
                    for node in 0..self.dag.nodes.len() {
                        if self.started_at[node].is_some() && self.status[node].is_none() {
                            let outcome = Outcome { status: NodeStatus::Interrupted, error: Some("interrupted (Ctrl-C)".into()), outputs: BTreeMap::new(), input_hash: String::new(), attempts: 1 };
                            self.finished(node, outcome);
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
        self.running
            .spawn(async move { (node, node::run_node(cx, step, host, name).await) });
    }

    fn finished(&mut self, node: usize, outcome: Outcome) {
        let host = self.host_of[node];
        self.busy[host] -= 1;
        if self.busy[host] == 0 {
            self.busy_hosts -= 1;
        }
        let name = self.dag.name(&self.cx.playbook, node);
        let spec = &self.dag.nodes[node];
        let duration = self.started_at[node].map_or(0, |t| t.elapsed().as_millis() as u64);
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
            store.record(
                name.clone(),
                NodeRecord {
                    status: status.to_string(),
                    input_hash: outcome.input_hash.clone(),
                    finished_at: state::now(),
                    outputs: self
                        .cx
                        .redactor
                        .redact_json(&serde_json::Value::Object(
                            outcome.outputs.clone().into_iter().collect(),
                        ))
                        .as_object()
                        .map(|m| m.clone().into_iter().collect())
                        .unwrap_or_default(),
                    error: outcome.error.clone(),
                },
            );
            if let Err(err) = store.save_soon() {
                eprintln!("graphrun: {err}");
            }
        }
        self.cx.reporter.event(&Event::NodeFinished {
            node: name.clone(),
            step: self.cx.playbook.steps[spec.step].id.clone(),
            host: spec.host.clone(),
            status: outcome.status,
            duration_ms: duration,
            attempts: outcome.attempts,
            error: outcome.error.clone(),
        });
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
                    let outcome = Outcome {
                        status: NodeStatus::Blocked,
                        error: Some(format!("needs {failed_name}, which did not succeed")),
                        outputs: BTreeMap::new(),
                        input_hash: String::new(),
                        attempts: 0,
                    };
                    self.record_unrun(d, outcome);
                    stack.push(dependent);
                }
            }
        }
    }

    fn record_unrun(&mut self, node: usize, outcome: Outcome) {
        let name = self.dag.name(&self.cx.playbook, node);
        let spec = &self.dag.nodes[node];
        self.status[node] = Some(outcome.status);
        self.cx.reporter.event(&Event::NodeFinished {
            node: name,
            step: self.cx.playbook.steps[spec.step].id.clone(),
            host: spec.host.clone(),
            status: outcome.status,
            duration_ms: 0,
            attempts: 0,
            error: outcome.error,
        });
    }

    fn finish(&mut self, interrupted: bool, _started: Instant) -> RunSummary {
        for node in 0..self.dag.nodes.len() {
            if self.status[node].is_none() {
                let reason = if interrupted {
                    "not started: the run was interrupted"
                } else {
                    "not started: --fail-fast stopped the run"
                };
                let outcome = Outcome {
                    status: NodeStatus::Cancelled,
                    error: Some(reason.into()),
                    outputs: BTreeMap::new(),
                    input_hash: String::new(),
                    attempts: 0,
                };
                self.record_unrun(node, outcome);
            }
        }
        let mut recap: BTreeMap<String, Recap> = BTreeMap::new();
        let mut nodes = BTreeMap::new();
        for (index, status) in self.status.iter().enumerate() {
            let status = status.expect("every node has ended");
            recap
                .entry(self.dag.nodes[index].host.clone())
                .or_default()
                .add(status);
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
