//! Tests: scheduler. Runs over simulated hosts (the memory transport): ordering, overlap,
//! pipelining, failures, retries, timeouts, resume, interrupts.
//!
//! Every `command` step here runs its own name (`run = "NAME"`), so the journal's op summary
//! for step NAME is "run `NAME`".

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use graphrun::engine::{execute, Collector, Event, Mode, NodeStatus, RunOptions, RunSummary};
use graphrun::plugins::Registry;
use graphrun::transport::memory::JournalEntry;
use graphrun::transport::{MemoryTransport, Simulated, Transport};

use crate::support::TempPlaybook;

/// What one run gave.
struct Outcome {
    summary: RunSummary,
    journal: Vec<JournalEntry>,
    events: Vec<Event>,
}

async fn run_with(
    file: &TempPlaybook,
    transport: MemoryTransport,
    options: RunOptions,
    interrupt: impl Future<Output = ()>,
) -> Outcome {
    let mut registry = Registry::builtin();
    let playbook = graphrun::playbook::load(&file.path, None, &mut registry)
        .unwrap_or_else(|d| panic!("{}", d.iter().map(|d| d.to_string()).collect::<String>()));
    let collector = Arc::new(Collector::default());
    let summary = execute(
        playbook,
        Arc::new(registry),
        Transport::Memory(transport.clone()),
        options,
        collector.clone(),
        interrupt,
    )
    .await
    .expect("the run starts");
    let events = collector.0.lock().unwrap().clone();
    Outcome {
        summary,
        journal: transport.journal(),
        events,
    }
}

async fn run(file: &TempPlaybook, transport: MemoryTransport, options: RunOptions) -> Outcome {
    run_with(file, transport, options, std::future::pending()).await
}

/// A transport where every op succeeds at once, without change.
fn instant() -> MemoryTransport {
    MemoryTransport::new(|_, _| Simulated::default())
}

/// The step name a command op runs (`run \`NAME\`` → NAME).
fn step_of(summary: &str) -> &str {
    summary
        .strip_prefix("run `")
        .and_then(|rest| rest.split('`').next())
        .unwrap_or(summary)
}

fn sleeps(ms: u64) -> Simulated {
    Simulated {
        delay: Duration::from_millis(ms),
        ..Simulated::default()
    }
}

fn failure() -> Simulated {
    Simulated {
        exit_code: 1,
        ..Simulated::default()
    }
}

impl Outcome {
    /// The journal entry of `step` on `host` (exactly one).
    fn op(&self, step: &str, host: &str) -> &JournalEntry {
        let found: Vec<&JournalEntry> = self
            .journal
            .iter()
            .filter(|e| e.host == host && step_of(&e.op) == step)
            .collect();
        assert_eq!(found.len(), 1, "{step}@{host} ran {} times", found.len());
        found[0]
    }

    fn ran(&self, step: &str, host: &str) -> usize {
        self.journal
            .iter()
            .filter(|e| e.host == host && step_of(&e.op) == step)
            .count()
    }

    /// (step@host) of every op in the journal, sorted.
    fn ran_nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = self
            .journal
            .iter()
            .map(|e| format!("{}@{}", step_of(&e.op), e.host))
            .collect();
        nodes.sort();
        nodes
    }

    fn finished(&self, node: &str) -> (NodeStatus, u32, Option<String>) {
        let found: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::NodeFinished {
                    node: n,
                    status,
                    attempts,
                    error,
                    ..
                } if n == node => Some((*status, *attempts, error.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(found.len(), 1, "{node} finished {} times", found.len());
        found[0].clone()
    }
}

fn statuses(list: &[(&str, NodeStatus)]) -> BTreeMap<String, NodeStatus> {
    list.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

fn hosts(names: &[&str]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, h)| format!("[hosts.{h}]\naddress = \"10.0.0.{}\"\n\n", i + 1))
        .collect()
}

/// A command step running its own name.
fn step(id: &str, extra: &str) -> String {
    format!("[steps.{id}]\nplugin = \"command\"\nrun = \"{id}\"\n{extra}\n\n")
}

fn playbook(host_names: &[&str], steps: &[String]) -> TempPlaybook {
    TempPlaybook::new(&format!("{}{}", hosts(host_names), steps.concat()))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_starts_only_after_its_needs_ended() {
    // root → left, right → join (diamond), on two hosts; every op takes 30 ms.
    let file = playbook(
        &["a", "b"],
        &[
            step("root", ""),
            step("left", "needs = [\"root\"]"),
            step("right", "needs = [\"root\"]"),
            step("join", "needs = [\"left\", \"right\"]"),
        ],
    );
    let out = run(
        &file,
        MemoryTransport::new(|_, _| sleeps(30)),
        RunOptions::default(),
    )
    .await;
    assert_eq!(out.summary.exit_code, 0);
    assert_eq!(out.journal.len(), 8);
    for host in ["a", "b"] {
        for (need, node) in [
            ("root", "left"),
            ("root", "right"),
            ("left", "join"),
            ("right", "join"),
        ] {
            assert!(
                out.op(node, host).started >= out.op(need, host).finished,
                "{node}@{host} started before {need}@{host} ended"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn independent_branches_overlap_in_time() {
    let file = playbook(
        &["a"],
        &[
            step("root", ""),
            step("left", "needs = [\"root\"]"),
            step("right", "needs = [\"root\"]"),
        ],
    );
    let out = run(
        &file,
        MemoryTransport::new(|_, op| match step_of(&op.summary()) {
            "root" => Simulated::default(),
            _ => sleeps(300),
        }),
        RunOptions::default(),
    )
    .await;
    assert_eq!(out.summary.exit_code, 0);
    let (left, right) = (out.op("left", "a"), out.op("right", "a"));
    assert!(
        left.started < right.finished && right.started < left.finished,
        "left and right ran one after the other"
    );
}

/// Host a's first step is slow; b goes through all its steps meanwhile (wait = "host").
#[tokio::test(flavor = "multi_thread")]
async fn hosts_pipeline_independently_with_wait_host() {
    let file = playbook(
        &["a", "b"],
        &[
            step("first", ""),
            step("second", "needs = [\"first\"]"),
            step("third", "needs = [\"second\"]"),
        ],
    );
    let out = run(
        &file,
        MemoryTransport::new(|host, op| match (host, step_of(&op.summary())) {
            ("a", "first") => sleeps(600),
            _ => sleeps(10),
        }),
        RunOptions::default(),
    )
    .await;
    assert_eq!(out.summary.exit_code, 0);
    let slow = out.op("first", "a");
    assert!(
        out.op("third", "b").finished < slow.finished,
        "b's last step waited for a's first step"
    );
    assert!(out.op("second", "a").started >= slow.finished);
}

/// The same playbook with wait = "all": nobody gets past `first` before the slow host.
#[tokio::test(flavor = "multi_thread")]
async fn wait_all_waits_for_the_slowest_host() {
    let file = playbook(
        &["a", "b"],
        &[
            step("first", ""),
            step("second", "needs = [\"first\"]\nwait = \"all\""),
            step("third", "needs = [\"second\"]"),
        ],
    );
    let out = run(
        &file,
        MemoryTransport::new(|host, op| match (host, step_of(&op.summary())) {
            ("a", "first") => sleeps(300),
            _ => sleeps(10),
        }),
        RunOptions::default(),
    )
    .await;
    assert_eq!(out.summary.exit_code, 0);
    let slow = out.op("first", "a");
    for host in ["a", "b"] {
        assert!(
            out.op("second", host).started >= slow.finished,
            "second@{host} did not wait for first@a"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_blocks_only_its_dependents() {
    let file = playbook(
        &["a", "b"],
        &[
            step("first", ""),
            step("second", "needs = [\"first\"]"),
            step("third", "needs = [\"second\"]"),
            step("apart", ""),
        ],
    );
    let out = run(
        &file,
        MemoryTransport::new(|host, op| match (host, step_of(&op.summary())) {
            ("a", "first") => failure(),
            _ => Simulated {
                changed: true,
                ..Simulated::default()
            },
        }),
        RunOptions::default(),
    )
    .await;
    assert_eq!(out.summary.exit_code, 1);
    assert_eq!(
        out.summary.nodes,
        statuses(&[
            ("first@a", NodeStatus::Failed),
            ("second@a", NodeStatus::Blocked),
            ("third@a", NodeStatus::Blocked),
            ("apart@a", NodeStatus::Changed),
            ("first@b", NodeStatus::Changed),
            ("second@b", NodeStatus::Changed),
            ("third@b", NodeStatus::Changed),
            ("apart@b", NodeStatus::Changed),
        ])
    );
    assert_eq!(
        out.finished("first@a"),
        (
            NodeStatus::Failed,
            1,
            Some("`run `first`` exited with 1\nstderr:\nsimulated failure".into())
        )
    );
    assert_eq!(
        out.finished("third@a"),
        (
            NodeStatus::Blocked,
            0,
            Some("needs first@a, which did not succeed".into())
        )
    );
    assert_eq!(
        out.ran_nodes(),
        ["apart@a", "apart@b", "first@a", "first@b", "second@b", "third@b"]
    );
    let recap_a = &out.summary.recap["a"];
    assert_eq!(
        (recap_a.changed, recap_a.failed, recap_a.blocked),
        (1, 1, 2)
    );
    assert_eq!(out.summary.recap["b"].changed, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn fail_fast_cancels_nodes_not_started() {
    let file = playbook(
        &["a"],
        &[
            step("boom", ""),
            step("after_boom", "needs = [\"boom\"]"),
            step("slow", ""),
            step("later", "needs = [\"slow\"]"),
        ],
    );
    let behaviour = |_: &str, op: &graphrun_plugin_api::Op| match step_of(&op.summary()) {
        "boom" => failure(),
        "slow" => sleeps(300),
        _ => Simulated::default(),
    };
    let out = run(
        &file,
        MemoryTransport::new(behaviour),
        RunOptions {
            fail_fast: true,
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(out.summary.exit_code, 1);
    assert_eq!(
        out.summary.nodes,
        statuses(&[
            ("boom@a", NodeStatus::Failed),
            ("after_boom@a", NodeStatus::Blocked),
            ("slow@a", NodeStatus::Ok),
            ("later@a", NodeStatus::Cancelled),
        ]),
        "a running node finishes; nothing new starts"
    );
    assert_eq!(
        out.finished("later@a").2.as_deref(),
        Some("not started: --fail-fast stopped the run")
    );
    assert_eq!(out.ran("later", "a"), 0);

    // Without fail-fast the independent branch goes on.
    let file = playbook(
        &["a"],
        &[
            step("boom", ""),
            step("slow", ""),
            step("later", "needs = [\"slow\"]"),
        ],
    );
    let out = run(
        &file,
        MemoryTransport::new(behaviour),
        RunOptions::default(),
    )
    .await;
    assert_eq!(out.summary.nodes["later@a"], NodeStatus::Ok);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_node_succeeds_after_failing_attempts() {
    let file = playbook(
        &["a"],
        &[
            step("flaky", "retries = 2\nretry_delay = \"10ms\""),
            step("after", "needs = [\"flaky\"]"),
        ],
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let out = run(
        &file,
        MemoryTransport::new(move |_, op| {
            if step_of(&op.summary()) == "flaky" && counter.fetch_add(1, Ordering::SeqCst) < 2 {
                failure()
            } else {
                Simulated::default()
            }
        }),
        RunOptions::default(),
    )
    .await;
    assert_eq!(out.summary.exit_code, 0);
    assert_eq!(out.ran("flaky", "a"), 3);
    assert_eq!(out.finished("flaky@a"), (NodeStatus::Ok, 3, None));
    assert_eq!(out.summary.nodes["after@a"], NodeStatus::Ok);
    let attempts: Vec<u32> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::NodeStarted { node, attempt, .. } if node == "flaky@a" => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_run_out() {
    let file = playbook(
        &["a"],
        &[
            step("broken", "retries = 1\nretry_delay = \"10ms\""),
            step("after", "needs = [\"broken\"]"),
        ],
    );
    let out = run(
        &file,
        MemoryTransport::new(|_, op| match step_of(&op.summary()) {
            "broken" => failure(),
            _ => Simulated::default(),
        }),
        RunOptions::default(),
    )
    .await;
    assert_eq!(out.summary.exit_code, 1);
    assert_eq!(out.ran("broken", "a"), 2);
    assert_eq!(
        out.finished("broken@a"),
        (
            NodeStatus::Failed,
            2,
            Some("`run `broken`` exited with 1\nstderr:\nsimulated failure".into())
        )
    );
    assert_eq!(out.summary.nodes["after@a"], NodeStatus::Blocked);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_op_longer_than_the_timeout_fails_the_node() {
    let file = playbook(
        &["a"],
        &[
            step("hang", "timeout = \"100ms\""),
            step("after", "needs = [\"hang\"]"),
            step("apart", ""),
        ],
    );
    let started = Instant::now();
    let out = run(
        &file,
        MemoryTransport::new(|_, op| match step_of(&op.summary()) {
            "hang" => sleeps(10_000),
            _ => Simulated::default(),
        }),
        RunOptions::default(),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the run waited for the op instead of timing out"
    );
    assert_eq!(out.summary.exit_code, 1);
    assert_eq!(
        out.finished("hang@a"),
        (NodeStatus::Failed, 1, Some("timed out after 100ms".into()))
    );
    assert_eq!(
        out.summary.nodes,
        statuses(&[
            ("hang@a", NodeStatus::Failed),
            ("after@a", NodeStatus::Blocked),
            ("apart@a", NodeStatus::Ok),
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_host_fails_alone() {
    let file = playbook(
        &["a", "b"],
        &[
            step("first", ""),
            step("second", "needs = [\"first\"]"),
            step("apart", ""),
        ],
    );
    let transport = instant();
    transport.set_unreachable("b");
    let out = run(&file, transport, RunOptions::default()).await;
    assert_eq!(out.summary.exit_code, 1);
    assert_eq!(
        out.summary.nodes,
        statuses(&[
            ("first@a", NodeStatus::Ok),
            ("second@a", NodeStatus::Ok),
            ("apart@a", NodeStatus::Ok),
            ("first@b", NodeStatus::Unreachable),
            ("second@b", NodeStatus::Blocked),
            ("apart@b", NodeStatus::Unreachable),
        ])
    );
    assert!(out.journal.iter().all(|e| e.host == "a"));
    assert_eq!(out.summary.recap["b"].unreachable, 2);
    let (_, attempts, error) = out.finished("first@b");
    assert_eq!(attempts, 1);
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("Connection refused")),
        "{error:?}"
    );
}

fn chain_on_two_hosts() -> TempPlaybook {
    playbook(
        &["a", "b"],
        &[
            step("s1", ""),
            step("s2", "needs = [\"s1\"]"),
            step("s3", "needs = [\"s2\"]"),
        ],
    )
}

/// Run 1 with s2 failing on b.
async fn failing_first_run(file: &TempPlaybook) {
    let out = run(
        file,
        MemoryTransport::new(|host, op| match (host, step_of(&op.summary())) {
            ("b", "s2") => failure(),
            _ => Simulated::default(),
        }),
        RunOptions::default(),
    )
    .await;
    assert_eq!(out.summary.exit_code, 1);
    assert_eq!(
        out.summary.nodes,
        statuses(&[
            ("s1@a", NodeStatus::Ok),
            ("s2@a", NodeStatus::Ok),
            ("s3@a", NodeStatus::Ok),
            ("s1@b", NodeStatus::Ok),
            ("s2@b", NodeStatus::Failed),
            ("s3@b", NodeStatus::Blocked),
        ])
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_resumes_where_the_failed_run_stopped() {
    let file = chain_on_two_hosts();
    failing_first_run(&file).await;

    let out = run(&file, instant(), RunOptions::default()).await;
    assert_eq!(out.summary.exit_code, 0);
    assert_eq!(
        out.summary.nodes,
        statuses(&[
            ("s1@a", NodeStatus::Done),
            ("s2@a", NodeStatus::Done),
            ("s3@a", NodeStatus::Done),
            ("s1@b", NodeStatus::Done),
            ("s2@b", NodeStatus::Ok),
            ("s3@b", NodeStatus::Ok),
        ])
    );
    assert_eq!(out.ran_nodes(), ["s2@b", "s3@b"], "done nodes ran no op");
    assert_eq!(out.finished("s1@a"), (NodeStatus::Done, 0, None));
    assert_eq!(out.summary.recap["a"].ok, 3, "done counts as ok");

    // After a complete run, everything is checked again.
    let out = run(&file, instant(), RunOptions::default()).await;
    assert_eq!(out.summary.exit_code, 0);
    assert!(
        out.summary.nodes.values().all(|s| *s == NodeStatus::Ok),
        "{:?}",
        out.summary.nodes
    );
    assert_eq!(out.journal.len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_step_is_not_resumed() {
    let file = chain_on_two_hosts();
    failing_first_run(&file).await;
    // s1's inputs change: its record no longer applies; s2 and s3 on a are unchanged.
    let text = std::fs::read_to_string(&file.path)
        .unwrap()
        .replace("run = \"s1\"", "run = \"s1\"\nenv = { V = \"2\" }");
    std::fs::write(&file.path, text).unwrap();
    let out = run(&file, instant(), RunOptions::default()).await;
    assert_eq!(out.summary.exit_code, 0);
    assert_eq!(out.summary.nodes["s1@a"], NodeStatus::Ok);
    assert_eq!(out.summary.nodes["s2@a"], NodeStatus::Done);
    assert_eq!(out.ran_nodes(), ["s1@a", "s1@b", "s2@b", "s3@b"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn fresh_ignores_the_state() {
    let file = chain_on_two_hosts();
    failing_first_run(&file).await;
    let out = run(
        &file,
        instant(),
        RunOptions {
            fresh: true,
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(out.summary.exit_code, 0);
    assert!(
        out.summary.nodes.values().all(|s| *s == NodeStatus::Ok),
        "{:?}",
        out.summary.nodes
    );
    assert_eq!(out.journal.len(), 6);
}

#[tokio::test(flavor = "multi_thread")]
async fn plan_does_not_touch_the_state() {
    let file = chain_on_two_hosts();
    failing_first_run(&file).await;
    let before = std::fs::read(file.state_path()).unwrap();
    let out = run(
        &file,
        MemoryTransport::new(|_, _| Simulated {
            changed: true,
            ..Simulated::default()
        }),
        RunOptions {
            mode: Mode::Plan,
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(out.summary.exit_code, 0);
    assert!(
        out.summary
            .nodes
            .values()
            .all(|s| *s == NodeStatus::WouldChange),
        "plan resumes nothing: {:?}",
        out.summary.nodes
    );
    assert_eq!(std::fs::read(file.state_path()).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interrupt_stops_running_nodes_and_records_them() {
    let file = playbook(
        &["a"],
        &[
            step("quick", ""),
            step("long1", "needs = [\"quick\"]"),
            step("long2", ""),
            step("after", "needs = [\"long1\"]"),
        ],
    );
    // Interrupt once long1 runs (so quick is surely done), however loaded the machine is.
    let long1_started = Arc::new(tokio::sync::Notify::new());
    let signal = long1_started.clone();
    let out = run_with(
        &file,
        MemoryTransport::new(move |_, op| match step_of(&op.summary()) {
            "quick" => Simulated::default(),
            step => {
                if step == "long1" {
                    signal.notify_one();
                }
                sleeps(5_000)
            }
        }),
        RunOptions::default(),
        async move { long1_started.notified().await },
    )
    .await;
    assert_eq!(out.summary.exit_code, 130);
    let recap = &out.summary.recap["a"];
    assert_eq!(
        (recap.interrupted, recap.failed),
        (2, 0),
        "counted as interrupted"
    );
    assert_eq!(
        out.summary.nodes,
        statuses(&[
            ("quick@a", NodeStatus::Ok),
            ("long1@a", NodeStatus::Interrupted),
            ("long2@a", NodeStatus::Interrupted),
            ("after@a", NodeStatus::Cancelled),
        ])
    );
    assert_eq!(
        out.finished("after@a").2.as_deref(),
        Some("not started: the run was interrupted")
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file.state_path()).unwrap()).unwrap();
    assert_eq!(state["complete"], false);
    assert_eq!(state["nodes"]["quick@a"]["status"], "ok");
    assert_eq!(state["nodes"]["long1@a"]["status"], "interrupted");
    assert_eq!(state["nodes"]["long2@a"]["status"], "interrupted");
    assert_eq!(state["nodes"]["long1@a"]["error"], "interrupted (Ctrl-C)");
    assert!(state["nodes"].get("after@a").is_none());

    // The next run resumes: quick is done, the interrupted nodes run again.
    let out = run(&file, instant(), RunOptions::default()).await;
    assert_eq!(out.summary.exit_code, 0);
    assert_eq!(out.summary.nodes["quick@a"], NodeStatus::Done);
    assert_eq!(out.ran_nodes(), ["after@a", "long1@a", "long2@a"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn when_skips_the_node_on_other_hosts() {
    let file = playbook(
        &["a", "b"],
        &[
            step("only_a", "when = \"{{ host.name == 'a' }}\""),
            step("bare", "when = \"host.name != 'a'\""),
            step("after", "needs = [\"only_a\"]"),
        ],
    );
    let out = run(&file, instant(), RunOptions::default()).await;
    assert_eq!(out.summary.exit_code, 0);
    assert_eq!(
        out.summary.nodes,
        statuses(&[
            ("only_a@a", NodeStatus::Ok),
            ("only_a@b", NodeStatus::Skipped),
            ("bare@a", NodeStatus::Skipped),
            ("bare@b", NodeStatus::Ok),
            ("after@a", NodeStatus::Ok),
            ("after@b", NodeStatus::Ok),
        ]),
        "a skipped need does not block"
    );
    assert_eq!(
        out.ran_nodes(),
        ["after@a", "after@b", "bare@b", "only_a@a"]
    );
    assert_eq!(out.summary.recap["b"].skipped, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_one_runs_nodes_one_at_a_time() {
    let file = playbook(&["a", "b"], &[step("x", ""), step("y", "")]);
    let out = run(
        &file,
        MemoryTransport::new(|_, _| sleeps(20)),
        RunOptions {
            parallel: 1,
            per_host: 1,
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(out.summary.exit_code, 0);
    let mut spans: Vec<(Instant, Instant)> = out
        .journal
        .iter()
        .map(|e| (e.started, e.finished))
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "two nodes overlapped");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_nodes_complete() {
    const HOSTS: usize = 1_000;
    const STEPS: usize = 10;
    let mut text = String::new();
    for h in 0..HOSTS {
        text.push_str(&format!(
            "[hosts.h{h}]\naddress = \"10.{}.{}.1\"\n",
            h / 256,
            h % 256
        ));
    }
    for s in 0..STEPS {
        let needs = if s == 0 {
            String::new()
        } else {
            format!("needs = [\"s{}\"]", s - 1)
        };
        text.push_str(&step(&format!("s{s}"), &needs));
    }
    let file = TempPlaybook::new(&text);
    let out = run(&file, instant(), RunOptions::default()).await;
    assert_eq!(out.summary.exit_code, 0);
    assert_eq!(out.summary.nodes.len(), HOSTS * STEPS);
    assert!(out.summary.nodes.values().all(|s| *s == NodeStatus::Ok));
    assert_eq!(out.journal.len(), HOSTS * STEPS);
    // Per host, steps ran in order.
    let mut last: BTreeMap<&str, (usize, Instant)> = BTreeMap::new();
    let mut journal = out.journal.clone();
    journal.sort_by_key(|e| e.started);
    for entry in &journal {
        let index: usize = step_of(&entry.op)[1..].parse().unwrap();
        if let Some((previous, finished)) = last.get(entry.host.as_str()) {
            assert_eq!(index, previous + 1, "{} ran out of order", entry.host);
            assert!(entry.started >= *finished);
        } else {
            assert_eq!(index, 0);
        }
        last.insert(&entry.host, (index, entry.finished));
    }
    assert_eq!(last.len(), HOSTS);
    assert_eq!(out.summary.recap.len(), HOSTS);
    assert!(out.summary.recap.values().all(|r| r.ok == STEPS));
}

/// `parallel` counts hosts: with one slot, a host's independent nodes still pipeline together,
/// but two hosts are never worked on at once.
#[tokio::test(flavor = "multi_thread")]
async fn parallel_bounds_hosts_not_nodes() {
    let file = playbook(&["a", "b"], &[step("x", ""), step("y", "")]);
    let out = run(
        &file,
        MemoryTransport::new(|_, _| sleeps(50)),
        RunOptions {
            parallel: 1,
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(out.summary.exit_code, 0);
    let (xa, ya) = (out.op("x", "a"), out.op("y", "a"));
    assert!(ya.started < xa.finished, "a's two nodes pipelined");
    for host_b in [out.op("x", "b"), out.op("y", "b")] {
        assert!(
            host_b.started >= xa.finished.max(ya.finished),
            "b was worked on while a was busy"
        );
    }
}

/// A slow host with many queued nodes does not take the slots of fast hosts.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_hosts_queue_does_not_hold_back_the_others() {
    let steps: Vec<String> = (0..6).map(|i| step(&format!("s{i}"), "")).collect();
    let file = playbook(&["slow", "f1", "f2"], &steps);
    let out = run(
        &file,
        MemoryTransport::new(|host, _| {
            if host == "slow" {
                sleeps(300)
            } else {
                sleeps(10)
            }
        }),
        RunOptions {
            parallel: 3,
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(out.summary.exit_code, 0);
    let first_slow = out.op("s0", "slow").finished;
    for host in ["f1", "f2"] {
        for i in 0..6 {
            assert!(
                out.op(&format!("s{i}"), host).finished < first_slow,
                "{host} waited for the slow host"
            );
        }
    }
}
