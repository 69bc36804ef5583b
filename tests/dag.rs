//! Tests: dag. Expansion of steps over hosts, `wait` edges, selections, rendering (formats: tests/graph.rs).

use graphrun::engine::{Dag, Selection};
use graphrun::output::graph::{render, GraphFormat};
use graphrun::playbook::Playbook;

use crate::support::TempPlaybook;

/// Hosts a, b, c; group web = a, b.
/// base on all; web (needs base, same host) on web; gather (needs web, all hosts) on c.
const PLAYBOOK: &str = r#"
[hosts.a]
address = "10.0.0.1"

[hosts.b]
address = "10.0.0.2"

[hosts.c]
address = "10.0.0.3"

[groups.web]
hosts = ["a", "b"]

[steps.base]
plugin = "command"
run = "base"

[steps.web]
plugin = "command"
needs = ["base"]
on = "web"
run = "web"

[steps.gather]
plugin = "command"
needs = ["web"]
wait = "all"
on = ["c"]
run = "gather"
"#;

fn load(text: &str) -> (TempPlaybook, Playbook) {
    let file = TempPlaybook::new(text);
    let playbook = file.load().expect("valid playbook");
    (file, playbook)
}

fn nodes(playbook: &Playbook, dag: &Dag) -> Vec<String> {
    (0..dag.nodes.len())
        .map(|n| dag.name(playbook, n))
        .collect()
}

/// Edges as sorted (need, dependent) names.
fn edges(playbook: &Playbook, dag: &Dag) -> Vec<(String, String)> {
    let mut edges: Vec<(String, String)> = dag
        .graph
        .raw_edges()
        .iter()
        .map(|e| {
            (
                dag.name(playbook, dag.graph[e.source()]),
                dag.name(playbook, dag.graph[e.target()]),
            )
        })
        .collect();
    edges.sort();
    edges
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = list
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    pairs.sort();
    pairs
}

fn build(playbook: &Playbook, limit: &[&str], only: &[&str]) -> Result<Dag, String> {
    Dag::build(
        playbook,
        &Selection {
            limit: limit.iter().map(|s| s.to_string()).collect(),
            only: only.iter().map(|s| s.to_string()).collect(),
        },
    )
}

#[test]
fn nodes_are_steps_times_their_hosts_in_playbook_order() {
    let (_file, playbook) = load(PLAYBOOK);
    let dag = build(&playbook, &[], &[]).unwrap();
    assert_eq!(
        nodes(&playbook, &dag),
        ["base@a", "base@b", "base@c", "web@a", "web@b", "gather@c"]
    );
    assert_eq!(dag.graph.node_count(), 6);
    // Node weights index `nodes`, and each node points at its step.
    for (i, node) in dag.nodes.iter().enumerate() {
        assert_eq!(dag.graph[petgraph::graph::NodeIndex::new(i)], i);
        assert!(playbook.steps[node.step].hosts.contains(&node.host));
    }
}

#[test]
fn wait_host_links_the_same_host_and_wait_all_links_every_host() {
    let (_file, playbook) = load(PLAYBOOK);
    let dag = build(&playbook, &[], &[]).unwrap();
    assert_eq!(
        edges(&playbook, &dag),
        pairs(&[
            ("base@a", "web@a"),
            ("base@b", "web@b"),
            ("web@a", "gather@c"),
            ("web@b", "gather@c"),
        ])
    );
}

#[test]
fn wait_all_on_every_host_gives_a_full_bipartite_join() {
    let (_file, playbook) = load(
        r#"
[hosts.a]
address = "10.0.0.1"

[hosts.b]
address = "10.0.0.2"

[steps.one]
plugin = "command"
run = "one"

[steps.two]
plugin = "command"
run = "two"
needs = "one"
wait = "all"

[steps.three]
plugin = "command"
run = "three"
needs = "two"
"#,
    );
    let dag = build(&playbook, &[], &[]).unwrap();
    assert_eq!(
        edges(&playbook, &dag),
        pairs(&[
            ("one@a", "two@a"),
            ("one@a", "two@b"),
            ("one@b", "two@a"),
            ("one@b", "two@b"),
            ("two@a", "three@a"),
            ("two@b", "three@b"),
        ])
    );
}

#[test]
fn limit_drops_other_hosts_and_edges_to_them() {
    let (_file, playbook) = load(PLAYBOOK);
    let dag = build(&playbook, &["a"], &[]).unwrap();
    assert_eq!(nodes(&playbook, &dag), ["base@a", "web@a"]);
    assert_eq!(edges(&playbook, &dag), pairs(&[("base@a", "web@a")]));

    let dag = build(&playbook, &["b", "c"], &[]).unwrap();
    assert_eq!(
        nodes(&playbook, &dag),
        ["base@b", "base@c", "web@b", "gather@c"]
    );
    assert_eq!(
        edges(&playbook, &dag),
        pairs(&[("base@b", "web@b"), ("web@b", "gather@c")]),
        "gather@c keeps only the need that is selected"
    );
}

#[test]
fn limit_accepts_groups() {
    let (_file, playbook) = load(PLAYBOOK);
    let dag = build(&playbook, &["web"], &[]).unwrap();
    assert_eq!(
        nodes(&playbook, &dag),
        ["base@a", "base@b", "web@a", "web@b"]
    );
    assert_eq!(
        edges(&playbook, &dag),
        pairs(&[("base@a", "web@a"), ("base@b", "web@b")])
    );
}

#[test]
fn only_drops_other_steps_and_edges_to_them() {
    let (_file, playbook) = load(PLAYBOOK);
    let dag = build(&playbook, &[], &["web"]).unwrap();
    assert_eq!(nodes(&playbook, &dag), ["web@a", "web@b"]);
    assert!(edges(&playbook, &dag).is_empty());

    let dag = build(&playbook, &[], &["web", "gather"]).unwrap();
    assert_eq!(nodes(&playbook, &dag), ["web@a", "web@b", "gather@c"]);
    assert_eq!(
        edges(&playbook, &dag),
        pairs(&[("web@a", "gather@c"), ("web@b", "gather@c")])
    );

    let dag = build(&playbook, &[], &["base", "gather"]).unwrap();
    assert_eq!(
        nodes(&playbook, &dag),
        ["base@a", "base@b", "base@c", "gather@c"]
    );
    assert!(edges(&playbook, &dag).is_empty());
}

#[test]
fn limit_and_only_combine() {
    let (_file, playbook) = load(PLAYBOOK);
    let dag = build(&playbook, &["a", "c"], &["base", "web"]).unwrap();
    assert_eq!(nodes(&playbook, &dag), ["base@a", "base@c", "web@a"]);
    assert_eq!(edges(&playbook, &dag), pairs(&[("base@a", "web@a")]));
}

#[test]
fn unknown_selections_are_errors() {
    let (_file, playbook) = load(PLAYBOOK);
    assert_eq!(
        build(&playbook, &["x"], &[]).err().as_deref(),
        Some("--limit: there is no host or group `x`")
    );
    assert_eq!(
        build(&playbook, &[], &["nope"]).err().as_deref(),
        Some("--only: there is no step `nope`")
    );
}

#[test]
fn render_text() {
    let (_file, playbook) = load(PLAYBOOK);
    let dag = build(&playbook, &[], &[]).unwrap();
    assert_eq!(
        render(&playbook, &dag, GraphFormat::Text, true).unwrap(),
        "base@a\nbase@b\nbase@c\nweb@a  ← base@a\nweb@b  ← base@b\ngather@c  ← web@a, web@b\n"
    );
    assert_eq!(
        render(&playbook, &dag, GraphFormat::Text, false).unwrap(),
        "base\nweb  ← base\ngather  ← web\n"
    );
}

#[test]
fn render_of_a_selection_shows_only_selected_nodes() {
    let (_file, playbook) = load(PLAYBOOK);
    let dag = build(&playbook, &["c"], &[]).unwrap();
    assert_eq!(
        render(&playbook, &dag, GraphFormat::Text, true).unwrap(),
        "base@c\ngather@c\n"
    );
}
