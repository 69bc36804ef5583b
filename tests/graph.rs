//! Tests: graph. `graphrun graph` in every format, by steps and by (step, host) nodes; SVG
//! through the real Graphviz `dot` (installed by .ci/run).

use std::process::{Command, Output};

use crate::support::TempPlaybook;

const PLAYBOOK: &str = r#"
[hosts.a]
connection = "local"
[hosts.b]
connection = "local"

[steps.dir]
plugin = "file"
path = "/tmp/graphrun-graph-test"
directory = true

[steps.conf]
plugin = "file"
needs = ["dir"]
path = "/tmp/graphrun-graph-test/app.conf"
content = "x"

[steps.check]
plugin = "command"
needs = ["conf"]
wait = "all"
on = ["a"]
run = "true"
"#;

fn graph(playbook: &TempPlaybook, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .arg("graph")
        .arg(&playbook.path)
        .args(args)
        .output()
        .expect("graphrun runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn steps_by_default_nodes_with_hosts() {
    let playbook = TempPlaybook::new(PLAYBOOK);
    let steps = graph(&playbook, &[]);
    assert_eq!(steps.status.code(), Some(0));
    assert_eq!(stdout(&steps), "dir\nconf  ← dir\ncheck  ← conf\n");
    let nodes = graph(&playbook, &["--hosts"]);
    assert_eq!(
        stdout(&nodes),
        "dir@a\ndir@b\nconf@a  ← dir@a\nconf@b  ← dir@b\ncheck@a  ← conf@a, conf@b\n"
    );
}

#[test]
fn dot_and_mermaid_colour_steps_by_plugin() {
    let playbook = TempPlaybook::new(PLAYBOOK);
    let dot = stdout(&graph(&playbook, &["--format", "dot"]));
    assert_eq!(
        dot,
        "digraph graphrun {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n\
         \x20 n0 [label=\"dir\", fillcolor=\"#a6cee3\", tooltip=\"plugin: file\"];\n\
         \x20 n1 [label=\"conf\", fillcolor=\"#a6cee3\", tooltip=\"plugin: file\"];\n\
         \x20 n2 [label=\"check\", fillcolor=\"#b2df8a\", tooltip=\"plugin: command\"];\n\
         \x20 n0 -> n1;\n  n1 -> n2;\n\
         \x20 subgraph cluster_plugins {\n    label=\"plugins\"; fontname=\"sans-serif\"; style=dashed;\n\
         \x20   plugin0 [label=\"command\", fillcolor=\"#b2df8a\"];\n\
         \x20   plugin1 [label=\"file\", fillcolor=\"#a6cee3\"];\n  }\n}\n"
    );
    let mermaid = stdout(&graph(&playbook, &["--format", "mermaid", "--hosts"]));
    let lines: Vec<&str> = mermaid.lines().collect();
    assert_eq!(lines[0], "flowchart LR");
    assert!(
        lines.contains(&"  n4[\"check@a\"]:::plugin_command"),
        "{mermaid}"
    );
    // Five nodes, four edges (check@a waits for conf on both hosts), two plugin classes.
    assert_eq!(lines.len(), 1 + 5 + 4 + 2, "{mermaid}");
    assert!(lines.contains(&"  classDef plugin_file fill:#a6cee3,stroke:#555"));
}

#[test]
fn svg_is_drawn_by_graphviz() {
    if Command::new("dot").arg("-V").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Graphviz's dot is missing under CI: .ci/run installs it"
        );
        eprintln!("skipped: Graphviz's `dot` is not installed (apt-get install graphviz)");
        return;
    }
    let playbook = TempPlaybook::new(PLAYBOOK);
    let output = graph(&playbook, &["--format", "svg", "--hosts"]);
    assert_eq!(output.status.code(), Some(0));
    let svg = stdout(&output);
    assert!(svg.contains("<svg"), "{svg}");
    for label in ["dir@a", "conf@b", "check@a"] {
        assert!(
            svg.contains(&format!(">{label}</text>")),
            "{label} in {svg}"
        );
    }
    assert!(
        svg.contains("fill=\"#b2df8a\""),
        "the command plugin's colour"
    );
}

#[test]
fn svg_without_graphviz_names_the_package() {
    let playbook = TempPlaybook::new(PLAYBOOK);
    let empty = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(["graph", "--format", "svg"])
        .arg(&playbook.path)
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("install Debian's `graphviz` package"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
