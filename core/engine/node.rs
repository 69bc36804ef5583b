//! Running one (step, host) node: render, plan (with probes), run the ops, interpret results.

use std::collections::BTreeMap;
use std::sync::Arc;

use graphrun_plugin_api::{Op, Params, PlanRequest, PlanResponse};
use sha2::{Digest, Sha256};

use super::events::{Event, Mode, NodeStatus, OpStatus};
use super::run::RunContext;
use super::{exec, failure};
use crate::playbook::{template, Step};
use crate::transport::{upload, Lease};

/// How planning may go back and forth before the plugin must answer with a plan.
const MAX_PROBE_ROUNDS: usize = 4;

/// A node's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// How it ended.
    pub status: NodeStatus,
    /// Why it failed.
    pub error: Option<String>,
    /// Its plan's outputs.
    pub outputs: BTreeMap<String, serde_json::Value>,
    /// Hash of its resolved inputs ("" when it did not get that far).
    pub input_hash: String,
    /// Attempts made.
    pub attempts: u32,
}

impl Outcome {
    /// An outcome decided before any attempt ran (skipped, blocked, not reachable…).
    pub(super) fn early(status: NodeStatus, error: Option<String>) -> Self {
        Outcome {
            status,
            error,
            outputs: BTreeMap::new(),
            input_hash: String::new(),
            attempts: 0,
        }
    }
}

/// Identifies the node in events.
pub(super) struct Names<'a> {
    pub node: &'a str,
    pub step: &'a Step,
    pub host: &'a str,
}

/// Runs one node to its end (all attempts).
pub async fn run_node(
    cx: Arc<RunContext>,
    step_index: usize,
    host: String,
    node: String,
) -> Outcome {
    let step = &cx.playbook.steps[step_index];
    let names = Names {
        node: &node,
        step,
        host: &host,
    };
    let entry = cx
        .registry
        .get(&step.plugin)
        .expect("plugins are validated");
    let wants_facts = entry.info.needs_facts || mentions_facts(step);
    let facts = if wants_facts {
        match cx.facts(&host).await {
            Ok(facts) => facts,
            Err(err) => {
                return Outcome::early(NodeStatus::Unreachable, Some(cx.redactor.redact(&err)))
            }
        }
    } else {
        BTreeMap::new()
    };
    let context = cx.template_context(step_index, &host, &facts);
    if let Some(when) = &step.when {
        match template::evaluate_when(&cx.env, when, &context) {
            Ok(true) => {}
            Ok(false) => return Outcome::early(NodeStatus::Skipped, None),
            Err(err) => return Outcome::early(NodeStatus::Failed, Some(format!("`when`: {err}"))),
        }
    }
    let params = match render_params(&cx, step, &context) {
        Ok(params) => params,
        Err(err) => return Outcome::early(NodeStatus::Failed, Some(cx.redactor.redact(&err))),
    };
    let input_hash = input_hash(&cx, step, &host, &params, &entry.info.version);
    if cx.mode == Mode::Apply {
        if let Some(record) = cx.resumable(&node, &input_hash) {
            return Outcome {
                status: NodeStatus::Done,
                error: None,
                outputs: record.outputs,
                input_hash,
                attempts: 0,
            };
        }
    }
    let request = PlanRequest {
        step: step.id.clone(),
        host: cx.host_info(&host),
        params,
        facts,
        probes: BTreeMap::new(),
        fetch_dir: cx.fetch_dir(&host).display().to_string(),
        playbook_dir: cx.playbook.dir().display().to_string(),
        inventory: if entry.info.needs_inventory {
            cx.inventory()
        } else {
            Vec::new()
        },
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        cx.reporter.event(&Event::NodeStarted {
            node: node.clone(),
            step: step.id.clone(),
            host: host.clone(),
            attempt,
            at_ms: cx.elapsed_ms(),
        });
        let run = attempt_once(&cx, &names, request.clone());
        // On timeout the attempt is dropped with its shell, which still owes an answer: the
        // pool kills it (the op may still run on the host) and no other node ever reuses it.
        let result = match step.timeout {
            Some(limit) => tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
                let reason = format!("timed out after {}", humantime::format_duration(limit));
                Err((NodeStatus::Failed, reason))
            }),
            None => run.await,
        };
        match result {
            Ok((status, outputs)) => {
                return Outcome {
                    status,
                    error: None,
                    outputs,
                    input_hash,
                    attempts: attempt,
                }
            }
            Err((status, error)) if attempt > step.retries || status == NodeStatus::Interrupted => {
                return Outcome {
                    status,
                    error: Some(cx.redactor.redact(&error)),
                    outputs: BTreeMap::new(),
                    input_hash,
                    attempts: attempt,
                };
            }
            Err(_) => tokio::time::sleep(step.retry_delay).await,
        }
    }
}

/// The node's access to its host (connecting it first as needed).
async fn connect(cx: &RunContext, host: &str) -> Result<Lease, Failure> {
    cx.connections
        .session(host)
        .await
        .map_err(|err| (NodeStatus::Unreachable, err))
}

/// Why an attempt did not succeed: how the node ends, and the reason.
pub(super) type Failure = (NodeStatus, String);

type AttemptResult = Result<(NodeStatus, BTreeMap<String, serde_json::Value>), Failure>;

async fn attempt_once(
    cx: &RunContext,
    names: &Names<'_>,
    mut request: PlanRequest,
) -> AttemptResult {
    let entry = cx
        .registry
        .get(&names.step.plugin)
        .expect("plugins are validated");
    // Connected when first needed: for probes, or else once the plan is known (see below).
    let mut session = None;
    let mut rounds = 0;
    let plan = loop {
        // Plugins are pure and quick; a panicking built-in fails its node, not the run
        // (dynamic plugins catch their own panics at the library boundary).
        let answer =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| entry.plugin.plan(&request)))
                .map_err(|_| {
                    (
                        NodeStatus::Failed,
                        format!("plugin `{}` panicked", names.step.plugin),
                    )
                })?
                .map_err(|err| {
                    (
                        NodeStatus::Failed,
                        format!("plugin `{}`: {err}", names.step.plugin),
                    )
                })?;
        match answer {
            PlanResponse::Plan(plan) => break plan,
            PlanResponse::Probe { probes } if rounds < MAX_PROBE_ROUNDS => {
                rounds += 1;
                if session.is_none() {
                    session = Some(connect(cx, names.host).await?);
                }
                let session = session.as_ref().expect("connected above");
                let answers = exec::run_probes(cx, session, &probes).await?;
                request.probes.extend(answers);
            }
            PlanResponse::Probe { .. } => {
                return Err((
                    NodeStatus::Failed,
                    format!("plugin `{}` kept asking for probes", names.step.plugin),
                ));
            }
        }
    };
    let check_mode = cx.mode == Mode::Plan;
    let ops: Vec<Op> = plan
        .ops
        .iter()
        .filter(|op| !(check_mode && matches!(op, Op::Fetch { .. })))
        .cloned()
        .collect();
    if crate::output::style::verbose() {
        super::verbose::show_ops(&cx.redactor, names.node, &ops);
    }
    let session = match session {
        Some(session) => session,
        None => {
            // The node's upload sources are hashed (once per run, then cached for
            // `exec::run_ops`) while the host connects: each takes a while for a large file
            // or a busy host. A source that cannot be read fails there, with its reason.
            let base = cx.playbook.dir();
            let hashing = upload::sources(&base, &ops, &cx.checksums);
            tokio::join!(connect(cx, names.host), hashing).0?
        }
    };
    let results = exec::run_ops(cx, names, &session, &ops, check_mode).await?;
    let mut outputs = plan.outputs;
    let mut node_status = NodeStatus::Ok;
    for (index, (op, result)) in ops.iter().zip(results).enumerate() {
        cx.log_op(names.node, op, &result);
        let status = result.status;
        let failed = status == OpStatus::Failed;
        let failed_stderr = failed.then(|| failure::tail(&result.stderr, &cx.redactor));
        let failed_stdout = failed.then(|| failure::tail(&result.stdout, &cx.redactor));
        let warnings = (status == OpStatus::Ok && !op.may_change())
            .then(|| warning_lines(&result.stderr))
            .flatten()
            .map(|lines| cx.redactor.redact(&lines));
        let summary = cx.redactor.redact(&op.summary());
        cx.reporter.event(&Event::OpFinished {
            node: names.node.to_string(),
            step: names.step.id.clone(),
            host: names.host.to_string(),
            index,
            op: summary.clone(),
            status,
            exit_code: result.exit_code,
            stderr: failed_stderr.clone().or(warnings),
            stdout: failed_stdout.clone(),
            diff: result.diff.clone(),
            transfer: result.transfer,
        });
        match status {
            OpStatus::Failed => {
                let error =
                    failure::describe(&summary, result.exit_code, failed_stderr, failed_stdout);
                return Err((NodeStatus::Failed, error));
            }
            OpStatus::Changed => node_status = NodeStatus::Changed,
            OpStatus::WouldChange => node_status = NodeStatus::WouldChange,
            OpStatus::Ok | OpStatus::NotRun => {}
        }
        // Only a command that ran has printed its output: not one its guard skipped (`Ok` for
        // an op that may change) nor one `plan` left alone (`WouldChange`).
        let ran = status == OpStatus::Changed || (status == OpStatus::Ok && !op.may_change());
        if let (
            Op::Command {
                capture: Some(name),
                ..
            },
            true,
        ) = (op, ran)
        {
            let value = String::from_utf8_lossy(&result.stdout).trim().to_string();
            outputs.entry(name.clone()).or_insert(value.into());
        }
    }
    Ok((node_status, outputs))
}

/// The lines a read-only check printed to stderr starting with `warning: ` (how plugins such as
/// preflight report findings that do not fail the node), for the recap.
fn warning_lines(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("warning: "))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

fn render_params(
    cx: &RunContext,
    step: &Step,
    context: &minijinja::Value,
) -> Result<Params, String> {
    let entry = cx
        .registry
        .get(&step.plugin)
        .expect("plugins are validated");
    let mut rendered = serde_json::Map::new();
    for (name, value) in &step.params.0 {
        let value = template::render_value(&cx.env, value, context)
            .map_err(|err| format!("parameter `{name}`: {err}"))?;
        if let Some(spec) = entry.info.params.iter().find(|p| &p.name == name) {
            if !spec.kind.accepts(&value) {
                return Err(format!(
                    "parameter `{name}` rendered to {value}, which is not {}",
                    spec.kind.describe()
                ));
            }
        }
        rendered.insert(name.clone(), value);
    }
    let params = Params(rendered);
    if let Some(error) = entry.plugin.validate(&params).into_iter().next() {
        return Err(format!("plugin `{}`: {error}", step.plugin));
    }
    Ok(params)
}

fn mentions_facts(step: &Step) -> bool {
    step.when.as_deref().is_some_and(|w| w.contains("facts"))
        || serde_json::to_string(&step.params.0).is_ok_and(|s| s.contains("facts"))
}

fn input_hash(cx: &RunContext, step: &Step, host: &str, params: &Params, version: &str) -> String {
    let host = cx.playbook.host(host).expect("hosts are validated");
    let identity = serde_json::json!({
        "plugin": step.plugin,
        "version": version,
        "params": params,
        "address": host.address,
        "user": host.connection.user,
        "port": host.connection.port,
        "become": host.connection.become_root,
    });
    hex(&Sha256::digest(identity.to_string().as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses the facts script's `key=value` lines.
pub fn parse_facts(stdout: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Gathers the facts every plugin may rely on, in one round trip and without extra tools.
pub const FACTS_SCRIPT: &str = r#"
[ -r /etc/os-release ] && . /etc/os-release
echo "os_id=${ID:-unknown}"
echo "os_version=${VERSION_ID:-}"
echo "os_codename=${VERSION_CODENAME:-}"
echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
echo "hostname=$(uname -n)"
echo "user=$(id -un)"
if [ -d /run/systemd/system ]; then echo "init=systemd"; else echo "init=other"; fi
case "$(readlink /etc/resolv.conf 2>/dev/null)" in
  *systemd/resolve/*) echo "resolver=systemd-resolved" ;;
  *) echo "resolver=resolv.conf" ;;
esac
"#;
