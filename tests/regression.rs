//! Tests: regression. One test per bug a user met, named after the bug.

use std::sync::Arc;

use graphrun::engine::{execute, Collector, Event, NodeStatus, RunOptions};
use graphrun::plugins::Registry;
use graphrun::transport::{MemoryTransport, Simulated, Transport};

use crate::support::TempPlaybook;

/// A node whose task panicked was reported `cancelled: --fail-fast stopped the run`.
#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_node_is_reported_as_failed_not_as_cancelled() {
    let file = TempPlaybook::new(
        "[hosts.a]\naddress = \"10.0.0.1\"\n\n\
         [steps.boom]\nplugin = \"command\"\nrun = \"boom\"\n\n\
         [steps.after]\nplugin = \"command\"\nrun = \"after\"\nneeds = [\"boom\"]\n\n\
         [steps.other]\nplugin = \"command\"\nrun = \"other\"\n",
    );
    let mut registry = Registry::builtin();
    let playbook = graphrun::playbook::load(&file.path, None, &mut registry).expect("valid");
    let transport = MemoryTransport::new(|_, op| {
        if op.summary().contains("boom") {
            panic!("simulated bug");
        }
        Simulated::default()
    });
    let collector = Arc::new(Collector::default());
    let summary = execute(
        playbook,
        Arc::new(registry),
        Transport::Memory(transport),
        RunOptions::default(),
        collector.clone(),
        std::future::pending(),
    )
    .await
    .expect("the run starts");
    assert_eq!(summary.exit_code, 1);
    assert_eq!(summary.nodes["boom@a"], NodeStatus::Failed);
    assert_eq!(summary.nodes["after@a"], NodeStatus::Blocked);
    assert_eq!(summary.nodes["other@a"], NodeStatus::Ok);
    let error = collector
        .0
        .lock()
        .unwrap()
        .iter()
        .find_map(|event| match event {
            Event::NodeFinished { node, error, .. } if node == "boom@a" => error.clone(),
            _ => None,
        });
    assert_eq!(
        error.as_deref(),
        Some("graphrun bug: the node panicked: simulated bug")
    );
}

/// `replace = { regex = "^(/swap.*)$", with = "# $1" }` replaced the swap line of an fstab with
/// the literal `# $1`, silently. Now `$1` is refused at validate, and a regex that rewrites
/// every line shows each of them in `plan`'s diff before `apply` touches anything.
#[test]
fn a_dollar_backreference_is_refused_and_a_regex_matching_every_line_is_shown_in_full() {
    use std::process::Command;
    let file = TempPlaybook::new("");
    let fstab = file.dir.path().join("fstab");
    std::fs::write(
        &fstab,
        "UUID=1 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n",
    )
    .unwrap();
    let playbook = |with: &str, regex: &str| {
        format!(
            "[hosts.control]\nconnection = \"local\"\n\n[steps.swap]\nplugin = \"file\"\n\
             path = \"{}\"\nreplace = {{ regex = \"{regex}\", with = \"{with}\" }}\n",
            fstab.display()
        )
    };
    let graphrun = |subcommand: &str| {
        Command::new(env!("CARGO_BIN_EXE_graphrun"))
            .args([subcommand, file.path.to_str().unwrap()])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    std::fs::write(&file.path, playbook("# $1", "^(/swap.*)$")).unwrap();
    let refused = graphrun("validate");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("write `\\1`"));

    std::fs::write(&file.path, playbook("# \\\\1", "^(.*)$")).unwrap();
    let plan = graphrun("plan");
    let shown = String::from_utf8_lossy(&plan.stdout);
    assert_eq!(plan.status.code(), Some(0), "{shown}");
    for line in [
        "-UUID=1 / ext4 defaults 0 1",
        "+# UUID=1 / ext4 defaults 0 1",
        "-/swap.img none swap sw 0 0",
        "+# /swap.img none swap sw 0 0",
    ] {
        assert!(shown.contains(line), "{line} not in\n{shown}");
    }
    assert_eq!(
        std::fs::read_to_string(&fstab).unwrap(),
        "UUID=1 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n",
        "plan changes nothing"
    );
}
