//! One run: what nodes share (the run context), and `execute`, which sets a run up, lets the
//! scheduler walk the DAG, and closes it (sessions, logs, state, the final event).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::OnceCell;

use super::dag::{Dag, Selection};
use super::events::{Event, Mode, NodeStatus, Recap, Reporter, StepLinks};
use super::lock::StateLock;
use super::node;
use super::redact::Redactor;
use super::run_log::RunLog;
use super::scheduler::Scheduler;
use super::state::{self, NodeRecord, StateStore};
use crate::playbook::{template, Playbook, Wait};
use crate::plugins::Registry;
use crate::transport::{Connections, Transport};
use graphrun_plugin_api::{HostInfo, Op, Run};

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// apply or plan.
    pub mode: Mode,
    /// Hosts worked on at once (like Ansible's forks).
    pub parallel: usize,
    /// Nodes running at once on one host, each in a shell of its own.
    pub per_host: usize,
    /// Stop starting nodes after the first failure.
    pub fail_fast: bool,
    /// Ignore the state file's record of earlier runs.
    pub fresh: bool,
    /// Part of the playbook to run.
    pub selection: Selection,
    /// Report what file ops change as diffs (always on in `plan`).
    pub diff: bool,
    /// Where state, run logs and fetched files go; `.graphrun/<playbook>/` beside the
    /// playbook when `None`.
    pub state_dir: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            mode: Mode::Apply,
            parallel: 64,
            per_host: 4,
            fail_fast: false,
            fresh: false,
            selection: Selection::default(),
            diff: false,
            state_dir: None,
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
    /// When the run started: events tell times relative to it.
    pub(super) started: Instant,
    /// Whether ops report their file diffs (`apply --diff`; `plan` always does).
    pub(super) diff: bool,
    pub(super) redactor: Redactor,
    pub(super) env: minijinja::Environment<'static>,
    pub(super) reporter: Arc<dyn Reporter>,
    /// Upload sources' checksums, computed once per run.
    pub(super) checksums: crate::transport::upload::Checksums,
    /// Artifacts, each made ready once per run.
    pub(super) artifacts: crate::artifacts::Store,
    /// Kubernetes clients, one per kubeconfig.
    #[cfg(feature = "kubernetes")]
    pub(super) clusters: super::exec::cluster::Clusters,
    shared: minijinja::Value,
    facts: HashMap<String, OnceCell<FactsResult>>,
    outputs: Mutex<HashMap<usize, StepOutputs>>,
    /// Per step, every step it waits for, directly or not.
    ancestors: Vec<Vec<usize>>,
    host_infos: HashMap<String, HostInfo>,
    pub(super) state: Mutex<StateStore>,
    log: Option<RunLog>,
    data_dir: PathBuf,
}

impl RunContext {
    /// Milliseconds since the run started.
    pub(super) fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The host's gathered facts (one round trip, once per run).
    pub(super) async fn facts(&self, host: &str) -> Result<BTreeMap<String, String>, String> {
        let cell = self.facts.get(host).expect("hosts are known");
        cell.get_or_init(|| async {
            let session = self.connections.session(host).await?;
            let op = Op::check(Run::Shell(node::FACTS_SCRIPT.to_string()));
            let frames = session
                .run(&[op], &HashMap::new(), false, false)
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
    pub(super) fn keep_outputs(
        &self,
        step: usize,
        host: &str,
        outputs: &BTreeMap<String, serde_json::Value>,
    ) {
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

    /// Every host as plugins see it, in inventory order.
    pub(super) fn inventory(&self) -> Vec<HostInfo> {
        self.playbook
            .hosts
            .iter()
            .map(|h| self.host_info(&h.name))
            .collect()
    }

    /// Where a host's fetched files land: an absolute path, because plugins hand it on as step
    /// outputs, and a relative one would be read again from the playbook's folder.
    pub(super) fn fetch_dir(&self, host: &str) -> PathBuf {
        let dir = self.data_dir.join("fetched").join(host);
        std::path::absolute(&dir).unwrap_or(dir)
    }

    pub(super) fn resumable(&self, node: &str, input_hash: &str) -> Option<NodeRecord> {
        self.state
            .lock()
            .expect("state lock")
            .resumable(node, input_hash)
            .cloned()
    }

    pub(super) fn log_op(&self, node: &str, op: &Op, result: &super::exec::OpResult) {
        if let Some(log) = &self.log {
            log.write(&self.redactor, node, op, result);
        }
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
    let data_dir = options
        .state_dir
        .clone()
        .unwrap_or_else(|| state::playbook_dir(&playbook.path));
    // Held until the run ends: a second `apply` of this playbook is refused meanwhile.
    let _lock = match options.mode {
        Mode::Apply => Some(take_lock(&data_dir)?),
        Mode::Plan => None,
    };
    let store = StateStore::open(&data_dir, options.fresh)?;
    let in_flight = store.previous_in_flight();
    if options.mode == Mode::Apply && !in_flight.is_empty() {
        eprintln!(
            "warning: the last run was killed while running {}: their outcome on the hosts is \
             unknown, so they run again",
            short_list(in_flight)
        );
    }
    let run_id = humantime::format_rfc3339_millis(std::time::SystemTime::now())
        .to_string()
        .replace(':', "-");
    let (log, log_path) = if options.mode == Mode::Apply {
        let runs = data_dir.join("runs");
        let dir = runs.join(&run_id);
        // `runs/` itself may predate private folders: made private again on every run.
        for dir in [&runs, &dir] {
            state::private_dir(dir)
                .map_err(|err| format!("cannot create {}: {err}", dir.display()))?;
        }
        let path = dir.join("ops.log");
        let log = RunLog::create(&path)
            .map_err(|err| format!("cannot create {}: {err}", path.display()))?;
        (Some(log), Some(path.display().to_string()))
    } else {
        (None, None)
    };
    let used_hosts: Vec<_> = playbook
        .hosts
        .iter()
        .filter(|h| dag.nodes.iter().any(|n| n.host == h.name))
        .cloned()
        .collect();
    let connections = Arc::new(Connections::new(transport, &used_hosts, options.per_host)?);
    let shared = minijinja::context! {
        vars => minijinja::Value::from_serialize(&playbook.vars),
        hosts => minijinja::Value::from_serialize(
            playbook.hosts.iter().map(|h| (h.name.clone(), h.info())).collect::<BTreeMap<_, _>>()
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
        started,
        diff: options.diff,
        redactor: Redactor::new(&playbook.secrets),
        env: template::environment(),
        reporter: reporter.clone(),
        checksums: Default::default(),
        artifacts: crate::artifacts::Store::new(
            &playbook.artifacts,
            options.mode == Mode::Apply,
            reporter.clone(),
            Redactor::new(&playbook.secrets),
        ),
        #[cfg(feature = "kubernetes")]
        clusters: Default::default(),
        shared,
        outputs: Mutex::new(HashMap::new()),
        ancestors: ancestors(&playbook),
        host_infos: playbook
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.info()))
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
        log: log_path,
        steps: step_links(&playbook, &dag),
    });
    {
        let connections = connections.clone();
        // Handshakes in parallel up to `--parallel` (the user's bound on hosts at once), at most 64.
        let parallel = options.parallel.clamp(1, 64);
        tokio::spawn(async move { connections.warm_up(parallel).await });
    }
    let mut scheduler = Scheduler::new(&dag, &cx, &options);
    let interrupted = scheduler.run(interrupt).await;
    let summary = scheduler.finish(interrupted);
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

/// The steps that have nodes in the run, with what they wait for.
fn step_links(playbook: &Playbook, dag: &Dag) -> Vec<StepLinks> {
    let mut in_run = vec![false; playbook.steps.len()];
    for node in &dag.nodes {
        in_run[node.step] = true;
    }
    let steps = playbook.steps.iter().zip(in_run).filter(|(_, used)| *used);
    steps
        .map(|(step, _)| StepLinks {
            id: step.id.clone(),
            plugin: step.plugin.clone(),
            needs: step.needs.clone(),
            wait: match step.wait {
                Wait::Host => "host",
                Wait::All => "all",
            }
            .into(),
        })
        .collect()
}

/// Takes the state folder's lock; says so when it takes over one that a run left behind.
fn take_lock(data_dir: &std::path::Path) -> Result<StateLock, String> {
    let lock = StateLock::acquire(data_dir)?;
    if let Some(holder) = &lock.taken_over {
        eprintln!(
            "warning: taking over the lock of a run that ended without releasing it ({holder})"
        );
    }
    Ok(lock)
}

/// `a, b, c and 7 more`: names for one line.
fn short_list(names: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = names[..names.len().min(SHOWN)].join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// Per step, the indexes of every step it waits for, directly or not.
fn ancestors(playbook: &Playbook) -> Vec<Vec<usize>> {
    playbook
        .steps
        .iter()
        .map(|step| {
            crate::playbook::ancestors(step, &playbook.steps)
                .into_iter()
                .filter_map(|id| playbook.steps.iter().position(|s| s.id == id))
                .collect()
        })
        .collect()
}
