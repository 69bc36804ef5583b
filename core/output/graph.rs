//! The DAG as a picture: text, Graphviz dot, Mermaid, or SVG drawn by Graphviz's `dot`.
//!
//! Two views of one DAG: the steps (what a reader of the playbook thinks in), or with `--hosts`
//! every (step, host) node (what the scheduler runs). Nodes are coloured by plugin. Ids come
//! from TOML keys, which may hold any character: every id is escaped for the format it goes
//! into, and dot and Mermaid name nodes `n0, n1, …` so an id never becomes syntax.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use petgraph::graph::NodeIndex;

use crate::engine::Dag;
use crate::playbook::Playbook;

/// How a graph is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// One line per node with what it waits for.
    Text,
    /// Graphviz source.
    Dot,
    /// Mermaid flowchart source.
    Mermaid,
    /// An SVG picture (Graphviz's `dot` draws it).
    Svg,
}

/// Fill colours for plugins, in order of first appearance (soft enough for black text).
const PALETTE: [&str; 10] = [
    "#a6cee3", "#b2df8a", "#fdbf6f", "#cab2d6", "#fb9a99", "#ffff99", "#8dd3c7", "#d9d9d9",
    "#bebada", "#fccde5",
];

/// Nodes (label, plugin) and edges by position: the picture, whichever the view.
struct Picture {
    nodes: Vec<(String, String)>,
    edges: BTreeSet<(usize, usize)>,
}

impl Picture {
    /// Steps (`hosts == false`) or (step, host) nodes of the DAG.
    fn of(playbook: &Playbook, dag: &Dag, hosts: bool) -> Self {
        let key = |ix: NodeIndex| {
            let node = &dag.nodes[dag.graph[ix]];
            if hosts {
                dag.graph[ix]
            } else {
                node.step
            }
        };
        let mut position = BTreeMap::new();
        let mut nodes = Vec::new();
        for ix in dag.graph.node_indices() {
            let node = &dag.nodes[dag.graph[ix]];
            let step = &playbook.steps[node.step];
            position.entry(key(ix)).or_insert_with(|| {
                let label = match (hosts, step.once) {
                    (true, false) => dag.name(playbook, dag.graph[ix]),
                    (true, true) => format!("{} (once)", dag.name(playbook, dag.graph[ix])),
                    (false, false) => step.id.clone(),
                    // A cluster-scoped step: one node, and the reader should see where.
                    (false, true) => format!("{} (once on {})", step.id, node.host),
                };
                nodes.push((label, step.plugin.clone()));
                nodes.len() - 1
            });
        }
        let edges = dag
            .graph
            .raw_edges()
            .iter()
            .map(|e| (position[&key(e.source())], position[&key(e.target())]))
            .collect();
        Picture { nodes, edges }
    }

    fn colours(&self) -> BTreeMap<&str, &'static str> {
        let mut colours = BTreeMap::new();
        for (_, plugin) in &self.nodes {
            let next = PALETTE[colours.len() % PALETTE.len()];
            colours.entry(plugin.as_str()).or_insert(next);
        }
        colours
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for (index, (label, _)) in self.nodes.iter().enumerate() {
            let mut needs: Vec<&str> = self
                .edges
                .iter()
                .filter(|(_, to)| *to == index)
                .map(|(from, _)| self.nodes[*from].0.as_str())
                .collect();
            needs.sort();
            if needs.is_empty() {
                out.push_str(&format!("{label}\n"));
            } else {
                out.push_str(&format!("{label}  ← {}\n", needs.join(", ")));
            }
        }
        out
    }

    fn dot(&self) -> String {
        let mut out = String::from(
            "digraph graphrun {\n  rankdir=LR;\n  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\"];\n",
        );
        let colours = self.colours();
        for (index, (label, plugin)) in self.nodes.iter().enumerate() {
            out.push_str(&format!(
                "  n{index} [label=\"{}\", fillcolor=\"{}\", tooltip=\"plugin: {}\"];\n",
                dot_escape(label),
                colours[plugin.as_str()],
                dot_escape(plugin)
            ));
        }
        for (from, to) in &self.edges {
            out.push_str(&format!("  n{from} -> n{to};\n"));
        }
        // A legend: which colour is which plugin.
        out.push_str("  subgraph cluster_plugins {\n    label=\"plugins\"; fontname=\"sans-serif\"; style=dashed;\n");
        for (index, (plugin, colour)) in colours.iter().enumerate() {
            out.push_str(&format!(
                "    plugin{index} [label=\"{}\", fillcolor=\"{colour}\"];\n",
                dot_escape(plugin)
            ));
        }
        out.push_str("  }\n}\n");
        out
    }

    fn mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (index, (label, plugin)) in self.nodes.iter().enumerate() {
            out.push_str(&format!(
                "  n{index}[\"{}\"]:::{}\n",
                mermaid_escape(label),
                class_name(plugin)
            ));
        }
        for (from, to) in &self.edges {
            out.push_str(&format!("  n{from} --> n{to}\n"));
        }
        for (plugin, colour) in self.colours() {
            out.push_str(&format!(
                "  classDef {} fill:{colour},stroke:#555\n",
                class_name(plugin)
            ));
        }
        out
    }
}

/// Renders the DAG; `hosts` draws (step, host) nodes instead of steps. Only `Svg` can fail
/// (Graphviz missing or failing), with a message that says what to do.
pub fn render(
    playbook: &Playbook,
    dag: &Dag,
    format: GraphFormat,
    hosts: bool,
) -> Result<String, String> {
    let picture = Picture::of(playbook, dag, hosts);
    Ok(match format {
        GraphFormat::Text => picture.text(),
        GraphFormat::Dot => picture.dot(),
        GraphFormat::Mermaid => picture.mermaid(),
        GraphFormat::Svg => draw_svg(&picture.dot())?,
    })
}

/// Runs `dot -Tsvg` on the source.
fn draw_svg(source: &str) -> Result<String, String> {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => {
                "--format svg needs Graphviz's `dot` program, which is not installed: \
                 install Debian's `graphviz` package (`apt-get install graphviz`), or use \
                 `--format dot` and draw it elsewhere"
                    .to_string()
            }
            _ => format!("cannot start Graphviz's `dot`: {err}"),
        })?;
    let mut stdin = child.stdin.take().expect("piped");
    let writing = stdin.write_all(source.as_bytes());
    drop(stdin);
    let output = child
        .wait_with_output()
        .map_err(|err| format!("Graphviz's `dot` failed: {err}"))?;
    writing.map_err(|err| format!("cannot write to Graphviz's `dot`: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "Graphviz's `dot` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    String::from_utf8(output.stdout).map_err(|_| "Graphviz's `dot` wrote invalid UTF-8".into())
}

/// A dot double-quoted string's content: `\` and `"` escaped, line breaks as `\n`.
fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\r', "")
        .replace('\n', "\\n")
}

/// A Mermaid quoted label: characters that end or mark up a label become entity codes.
fn mermaid_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '"' | '#' | '<' | '>' | '&' | '`' => out.push_str(&format!("#{};", c as u32)),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A Mermaid class name for a plugin: letters, digits and `_` only (unique by the code points
/// of anything else).
fn class_name(plugin: &str) -> String {
    let mut out = String::from("plugin_");
    for c in plugin.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push_str(&format!("_{:x}_", c as u32));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_strings_cannot_be_broken_out_of() {
        assert_eq!(dot_escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(dot_escape("a\nb"), r"a\nb");
    }

    #[test]
    fn mermaid_labels_cannot_be_broken_out_of() {
        assert_eq!(mermaid_escape(r#"x"]; click"#), "x#34;]; click");
        assert_eq!(mermaid_escape("<b>#"), "#60;b#62;#35;");
        assert_eq!(class_name("my-plugin"), "plugin_my_2d_plugin");
    }
}
