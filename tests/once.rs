//! Tests: once. `once = true` steps (one node, on the first host of `on`), their dependencies
//! with per-host steps both ways, how `graph` and the recap show them, and outputs captured
//! from a command's stdout read by later steps on other hosts.

use graphrun::engine::{Dag, Event, Mode, NodeStatus, RunOptions, Selection};
use graphrun::output::graph::{render, GraphFormat};
use graphrun::transport::{MemoryTransport, Simulated};

use crate::support::{run_in_memory, TempPlaybook};

/// Hosts a, b, c; group cp = b, c. `pick` runs once on cp (so on b), between per-host steps.
const PLAYBOOK: &str = r#"
[hosts.a]
address = "10.0.0.1"

[hosts.b]
address = "10.0.0.2"

[hosts.c]
address = "10.0.0.3"

[groups.cp]
hosts = ["b", "c"]

[steps.base]
plugin = "command"
run = "base"

[steps.pick]
plugin = "command"
on = "cp"
once = true
needs = ["base"]
run = "pick"

[steps.after]
plugin = "command"
needs = ["pick"]
run = "after {{ host.name }}"
"#;

fn dag_of(file: &TempPlaybook, limit: &[&str]) -> (graphrun::playbook::Playbook, Dag) {
    let playbook = file.load().expect("valid playbook");
    let selection = Selection {
        limit: limit.iter().map(|s| s.to_string()).collect(),
        only: vec![],
    };
    let dag = Dag::build(&playbook, &selection).unwrap();
    (playbook, dag)
}

fn edges(playbook: &graphrun::playbook::Playbook, dag: &Dag) -> Vec<(String, String)> {
    let mut edges: Vec<(String, String)> = (dag.graph.raw_edges().iter())
        .map(|e| {
            let name = |ix| dag.name(playbook, dag.graph[ix]);
            (name(e.source()), name(e.target()))
        })
        .collect();
    edges.sort();
    edges
}

#[test]
fn a_once_step_has_one_node_that_waits_on_its_host_and_is_waited_for_everywhere() {
    let file = TempPlaybook::new(PLAYBOOK);
    let (playbook, dag) = dag_of(&file, &[]);
    let nodes: Vec<String> = (0..dag.nodes.len())
        .map(|n| dag.name(&playbook, n))
        .collect();
    assert_eq!(
        nodes,
        ["base@a", "base@b", "base@c", "pick@b", "after@a", "after@b", "after@c"]
    );
    let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        edges(&playbook, &dag),
        pairs(&[
            ("base@b", "pick@b"),
            ("pick@b", "after@a"),
            ("pick@b", "after@b"),
            ("pick@b", "after@c"),
        ])
    );
    // --limit c: the first host of `on` that the run covers.
    let (playbook, dag) = dag_of(&file, &["c"]);
    let nodes: Vec<String> = (0..dag.nodes.len())
        .map(|n| dag.name(&playbook, n))
        .collect();
    assert_eq!(nodes, ["base@c", "pick@c", "after@c"]);
}

#[test]
fn once_with_wait_all_waits_for_the_need_on_every_host() {
    let text = PLAYBOOK.replace("once = true\n", "once = true\nwait = \"all\"\n");
    let file = TempPlaybook::new(&text);
    let (playbook, dag) = dag_of(&file, &[]);
    let into_pick: Vec<String> = edges(&playbook, &dag)
        .into_iter()
        .filter(|(_, to)| to == "pick@b")
        .map(|(from, _)| from)
        .collect();
    assert_eq!(into_pick, ["base@a", "base@b", "base@c"]);
}

#[test]
fn a_need_on_a_once_step_is_valid_from_hosts_where_it_does_not_run() {
    // `after` runs on a, where `pick` does not: fine with once, an error without it.
    assert!(TempPlaybook::new(PLAYBOOK).load().is_ok());
    let errors = TempPlaybook::new(&PLAYBOOK.replace("once = true\n", ""))
        .load()
        .unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .contains("step `after` runs on `a`, where `pick` does not run"),
        "{}",
        errors[0]
    );
    // A once step is checked on its one host only: b runs `only-b`, c does not.
    let text = PLAYBOOK
        .replace("needs = [\"base\"]\n", "needs = [\"only-b\"]\n")
        .replace(
            "[steps.pick]",
            "[steps.only-b]\nplugin = \"command\"\non = \"b\"\nrun = \"x\"\n\n[steps.pick]",
        );
    assert!(TempPlaybook::new(&text).load().is_ok());
}

#[test]
fn once_must_be_a_boolean() {
    let errors = TempPlaybook::new(&PLAYBOOK.replace("once = true", "once = \"yes\""))
        .load()
        .unwrap_err();
    let text = errors[0].to_string();
    assert!(
        text.contains("`once` must be true or false, found a string"),
        "{text}"
    );
}

#[test]
fn graph_names_the_host_of_a_once_step() {
    let file = TempPlaybook::new(PLAYBOOK);
    let (playbook, dag) = dag_of(&file, &[]);
    let steps = render(&playbook, &dag, GraphFormat::Text, false).unwrap();
    assert_eq!(
        steps,
        "base\npick (once on b)  ← base\nafter  ← pick (once on b)\n"
    );
    let nodes = render(&playbook, &dag, GraphFormat::Text, true).unwrap();
    assert!(nodes.contains("pick@b (once)  ← base@b\n"), "{nodes}");
    assert!(nodes.contains("after@c  ← pick@b (once)\n"), "{nodes}");
}

/// `pick` prints its host's name; `key` prints `key-HOST` on every host; both capture it.
const CAPTURING: &str = r#"
[hosts.a]
address = "10.0.0.1"

[hosts.b]
address = "10.0.0.2"

[steps.pick]
plugin = "command"
once = true
run = "pick"
changed = false
capture = true

[steps.key]
plugin = "command"
run = "key"
capture = true

[steps.use]
plugin = "command"
needs = ["pick", "key"]
run = "use {{ steps.pick.outputs.stdout }} {{ steps.key.outputs.stdout }}"
"#;

/// Ops print (with spaces and a newline to trim) what the CAPTURING playbook says.
fn printing() -> MemoryTransport {
    MemoryTransport::new(|host, op| Simulated {
        stdout: match op.summary().as_str() {
            s if s.starts_with("check `pick`") => format!("  {host}\n"),
            s if s.starts_with("run `key`") => format!("key-{host}\n"),
            _ => String::new(),
        },
        changed: op.may_change(),
        ..Simulated::default()
    })
}

fn ran(run: &crate::support::MemoryRun, prefix: &str) -> Vec<String> {
    let mut ops: Vec<String> = (run.journal.iter())
        .filter(|entry| entry.op.starts_with(prefix))
        .map(|entry| format!("{}: {}", entry.host, entry.op))
        .collect();
    ops.sort();
    ops
}

#[tokio::test]
async fn captured_stdout_is_an_output_that_later_steps_read_on_every_host() {
    let file = TempPlaybook::new(CAPTURING);
    let run = run_in_memory(&file, printing(), RunOptions::default()).await;
    assert_eq!(run.summary.exit_code, 0);
    assert_eq!(
        ran(&run, "run `use"),
        ["a: run `use a key-a`", "b: run `use a key-b`"]
    );
    // The once step ran on a only, and is counted there.
    assert_eq!(run.summary.nodes["pick@a"], NodeStatus::Ok);
    assert!(!run.summary.nodes.contains_key("pick@b"));
    assert_eq!(run.summary.recap["a"].once, ["pick"]);
    assert!(run.summary.recap["b"].once.is_empty());
    // The outputs are kept in state (for resumed runs).
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file.state_path()).unwrap()).unwrap();
    assert_eq!(state["nodes"]["key@b"]["outputs"]["stdout"], "key-b");
    assert_eq!(state["nodes"]["pick@a"]["outputs"]["stdout"], "a");
}

#[tokio::test]
async fn plan_fills_a_checks_captured_output_for_the_steps_after_it() {
    let file = TempPlaybook::new(&CAPTURING.replace(" {{ steps.key.outputs.stdout }}", ""));
    let options = RunOptions {
        mode: Mode::Plan,
        ..RunOptions::default()
    };
    let run = run_in_memory(&file, printing(), options).await;
    assert_eq!(run.summary.exit_code, 0);
    assert_eq!(ran(&run, "run `use"), ["a: run `use a`", "b: run `use a`"]);
    assert_eq!(run.summary.nodes["use@b"], NodeStatus::WouldChange);
}

#[tokio::test]
async fn a_command_that_did_not_run_captures_nothing() {
    // `plan` does not run `key` (it would change), so `use` cannot read its output.
    let file = TempPlaybook::new(CAPTURING);
    let options = RunOptions {
        mode: Mode::Plan,
        ..RunOptions::default()
    };
    let run = run_in_memory(&file, printing(), options).await;
    assert_eq!(run.summary.nodes["key@a"], NodeStatus::WouldChange);
    assert_eq!(run.summary.nodes["use@a"], NodeStatus::Failed);
    let error = run.events.iter().find_map(|event| match event {
        Event::NodeFinished {
            node,
            error: Some(error),
            ..
        } if node == "use@a" => Some(error.clone()),
        _ => None,
    });
    assert!(error.unwrap().contains("undefined value"));
}

#[test]
fn the_recap_says_which_steps_ran_once_and_where() {
    let file = TempPlaybook::new(
        r#"
[hosts.x]
connection = "local"

[hosts.y]
connection = "local"

[steps.pick]
plugin = "command"
once = true
run = "true"

[steps.each]
plugin = "command"
needs = ["pick"]
run = "true"
"#,
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .arg("apply")
        .arg(&file.path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("\nonce on x (one node for all its hosts): `pick`\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("once on y"), "{stdout}");
}
