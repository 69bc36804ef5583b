//! Tests: report. `apply --report` and `graphrun report` write one self-contained page and the
//! events beside it; the page is loaded in a real headless Chromium (installed by .ci/run):
//! no console errors, one bar per node with its status, a screenshot kept for people to look at.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{write_file, TempPlaybook};

const SECRET: &str = "report-s3cr3t";

/// Two local hosts; a change, a failure (its stderr holds the secret), a node blocked behind
/// it, a skipped one and a read-only check.
fn site() -> TempPlaybook {
    let file = TempPlaybook::new("");
    let root = file.dir.path().display();
    let text = format!(
        r#"
[vars]
token = {{ env = "GRAPHRUN_TEST_TOKEN" }}
never = false

[hosts.a]
connection = "local"
[hosts.b]
connection = "local"

[steps.setup]
plugin = "file"
path = "{root}/out/{{{{ host.name }}}}.conf"
content = "port = 8080\n"

[steps.probe]
plugin = "command"
needs = ["setup"]
run = "if [ {{{{ host.name }}}} = a ]; then echo token {{{{ vars.token }}}} >&2; exit 3; fi"

[steps.after]
plugin = "command"
needs = ["probe"]
run = "true"

[steps.optional]
plugin = "command"
when = "{{{{ vars.never }}}}"
run = "true"

[steps.check]
plugin = "command"
needs = ["setup"]
run = "sleep 0.2"
changed = false
"#
    );
    write_file(file.dir.path(), "playbook.toml", &text);
    file
}

fn graphrun(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(args)
        .env("GRAPHRUN_TEST_TOKEN", SECRET)
        .output()
        .expect("graphrun runs")
}

/// `(node, status)` of every node_finished event in an events file.
fn finished_nodes(events: &Path) -> BTreeSet<(String, String)> {
    std::fs::read_to_string(events)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|e| e["event"] == "node_finished")
        .map(|e| {
            (
                e["node"].as_str().unwrap().into(),
                e["status"].as_str().unwrap().into(),
            )
        })
        .collect()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn apply_writes_a_report_and_its_events_and_report_redraws_it() {
    let file = site();
    let dir = file.dir.path();
    let page = dir.join("run.html");
    let playbook = file.path.to_str().unwrap();
    let apply = graphrun(&["apply", playbook, "--report", page.to_str().unwrap()]);
    assert_eq!(
        apply.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains(SECRET), "secrets are redacted in the report");
    assert!(
        html.contains("token ***"),
        "the failure's stderr is in the report"
    );
    let events = dir.join("run.events.jsonl");
    assert_eq!((mode_of(&page), mode_of(&events)), (0o600, 0o600));
    let nodes = finished_nodes(&events);
    assert_eq!(nodes.len(), 10, "{nodes:?}");
    for expected in [
        ("probe@a", "failed"),
        ("after@a", "blocked"),
        ("after@b", "changed"),
        ("optional@a", "skipped"),
        ("setup@b", "changed"),
    ] {
        assert!(
            nodes.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} in {nodes:?}"
        );
    }
    // Later, from the state file: the same run, from the events every apply keeps.
    let again = dir.join("again.html");
    let state = file.state_path();
    let report = graphrun(&[
        "report",
        state.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(
        report.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );
    assert_eq!(finished_nodes(&dir.join("again.events.jsonl")), nodes);
    let bad = write_file(dir, "bad.jsonl", "{\"event\": \"run_started\"}\nnot json\n");
    let refused = graphrun(&["report", bad.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("bad.jsonl:2:"), "{message}");
}

/// Runs headless Chromium on a page; None (after saying so) when it is not installed.
fn chromium(args: &[&str], page: &str) -> Option<Output> {
    let found = Command::new("chromium").arg("--version").output().is_ok();
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is missing under CI: .ci/run installs it (tests/tools.sh)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return None;
    }
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args(["--enable-logging=stderr", "--v=0", "--window-size=1200,700"])
        .args(args)
        .arg(page)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(output)
}

#[test]
fn the_report_renders_in_a_real_browser() {
    let file = site();
    let dir = file.dir.path();
    let page = dir.join("run.html");
    graphrun(&[
        "apply",
        file.path.to_str().unwrap(),
        "--report",
        page.to_str().unwrap(),
    ]);
    let nodes = finished_nodes(&dir.join("run.events.jsonl"));
    let url = format!("file://{}#node=probe@a", page.display());
    let Some(loaded) = chromium(&["--dump-dom"], &url) else {
        return;
    };
    let console: Vec<String> = String::from_utf8_lossy(&loaded.stderr)
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let dom = String::from_utf8_lossy(&loaded.stdout);
    assert!(
        dom.contains("data-rendered=\"true\""),
        "the script ran to its end"
    );
    assert!(!dom.contains("data-errors"), "{dom}");
    let bars: Vec<(String, String)> = dom
        .split("data-node=\"")
        .skip(1)
        .filter(|rest| rest.contains("data-status=\""))
        .map(|rest| {
            let node = &rest[..rest.find('"').unwrap()];
            let status = rest.split("data-status=\"").nth(1).unwrap();
            (
                node.to_string(),
                status[..status.find('"').unwrap()].to_string(),
            )
        })
        .collect();
    assert_eq!(bars.len(), nodes.len(), "one bar per node: {bars:?}");
    assert_eq!(bars.into_iter().collect::<BTreeSet<_>>(), nodes);
    assert!(
        dom.contains("class=\"bar s-changed critical\""),
        "the critical path is marked"
    );
    assert!(
        dom.contains("token ***"),
        "the opened node shows its failure: {dom}"
    );
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let shot = screenshots.join("report.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&[&format!("--screenshot={}", shot.display())], &url).unwrap();
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "{}",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());
}
