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
