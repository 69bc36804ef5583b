//! Several shells per host: independent nodes overlap on one host (locally and on lab hosts),
//! `--per-host 1` and `exclusive` keep them apart, and a dropped master connection fails only
//! that host's running nodes. Overlap is read from timestamps the steps write themselves.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use crate::ssh::{lab, run_id, statuses};
use crate::support::TempPlaybook;

/// When a step ran, in the host's clock (nanoseconds).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u128,
    end: u128,
}

impl Span {
    fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// A command step that records its start and end in `DIR/NAME.start|end` around a 1 s sleep.
fn timed_step(name: &str, dir: &str, extra: &str) -> String {
    format!(
        "[steps.{name}]\nplugin = \"command\"\n{extra}\n\
         run = \"date +%s%N > {dir}/{name}.start; sleep 1; date +%s%N > {dir}/{name}.end\"\n\n"
    )
}

fn span(read: impl Fn(&str) -> String, name: &str) -> Span {
    let number = |suffix: &str| {
        let text = read(&format!("{name}.{suffix}"));
        text.trim()
            .parse::<u128>()
            .unwrap_or_else(|_| panic!("{name}.{suffix}: {text:?}"))
    };
    Span {
        start: number("start"),
        end: number("end"),
    }
}

/// `a → (b, c) → d` on a local host, each step 1 s, with extra keys for `b` and `c`.
fn local_diamond(extra: &str) -> TempPlaybook {
    let file = TempPlaybook::new("");
    let dir = file.dir.path().display().to_string();
    let mut text = "[hosts.control]\nconnection = \"local\"\n\n".to_string();
    text.push_str(&timed_step("a", &dir, ""));
    for branch in ["b", "c"] {
        text.push_str(&timed_step(
            branch,
            &dir,
            &format!("needs = [\"a\"]\n{extra}"),
        ));
    }
    text.push_str(&timed_step("d", &dir, "needs = [\"b\", \"c\"]"));
    std::fs::write(&file.path, text).unwrap();
    file
}

fn apply_local(file: &TempPlaybook, args: &[&str]) -> (Output, BTreeMap<&'static str, Span>) {
    let output = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .arg("apply")
        .arg(&file.path)
        .args(["--output", "json"])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let read = |name: &str| std::fs::read_to_string(file.dir.path().join(name)).unwrap();
    let spans = ["a", "b", "c", "d"]
        .into_iter()
        .map(|name| (name, span(read, name)))
        .collect();
    (output, spans)
}

/// Dependent nodes still run in order, whatever the concurrency.
fn assert_diamond_order(spans: &BTreeMap<&str, Span>) {
    for branch in ["b", "c"] {
        assert!(spans["a"].end <= spans[branch].start, "{spans:?}");
        assert!(spans[branch].end <= spans["d"].start, "{spans:?}");
    }
}

#[test]
fn independent_local_steps_overlap_and_dependent_ones_wait() {
    let file = local_diamond("");
    let (_, spans) = apply_local(&file, &[]);
    assert_diamond_order(&spans);
    assert!(spans["b"].overlaps(&spans["c"]), "{spans:?}");
}

#[test]
fn per_host_one_runs_a_hosts_nodes_one_at_a_time_and_reports_the_queue() {
    let file = local_diamond("");
    let (output, spans) = apply_local(&file, &["--per-host", "1"]);
    assert_diamond_order(&spans);
    assert!(!spans["b"].overlaps(&spans["c"]), "{spans:?}");
    // The branch that waited says so apart from its own duration.
    let finished: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|e: &serde_json::Value| e["event"] == "node_finished")
        .collect();
    let queued: Vec<u64> = finished
        .iter()
        .map(|e| e["queued_ms"].as_u64().expect("queued_ms"))
        .collect();
    let (first, second) = if spans["b"].start < spans["c"].start {
        ("b", "c")
    } else {
        ("c", "b")
    };
    let waited = finished
        .iter()
        .find(|e| e["step"] == second)
        .expect("the second branch finished");
    assert!(
        waited["queued_ms"].as_u64() >= Some(500),
        "{second} waited for the first branch: {queued:?}"
    );
    // Its duration starts when it did, not when the first branch did.
    let duration_ns = u128::from(waited["duration_ms"].as_u64().unwrap()) * 1_000_000;
    assert!(
        duration_ns < spans[second].end - spans[first].start,
        "{waited} {spans:?}"
    );
}

#[test]
fn exclusive_steps_never_overlap_on_a_host() {
    let file = local_diamond("exclusive = true");
    let (_, spans) = apply_local(&file, &[]);
    assert_diamond_order(&spans);
    assert!(!spans["b"].overlaps(&spans["c"]), "{spans:?}");
}

#[test]
fn independent_steps_overlap_on_a_lab_host() {
    let Some(lab) = lab() else { return };
    let dir = format!("/tmp/gr-overlap-{}", run_id());
    let mut text =
        format!("[steps.prepare]\nplugin = \"command\"\non = \"h1\"\nrun = \"mkdir -p {dir}\"\n\n");
    for name in ["b", "c"] {
        text.push_str(&timed_step(
            name,
            &dir,
            "on = \"h1\"\nneeds = [\"prepare\"]",
        ));
    }
    let playbook = lab.playbook("overlap.toml", &text);
    let run = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    let read = |name: &str| lab.ssh("h1", &format!("cat {dir}/{name}"));
    let (b, c) = (span(read, "b"), span(read, "c"));
    assert!(b.overlaps(&c), "{b:?} {c:?}");
    lab.ssh("h1", &format!("rm -rf {dir}"));
}

#[test]
fn a_dropped_master_connection_fails_only_that_hosts_running_nodes() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    // `drop` kills the sshd process that serves graphrun's connection to h1 (the first sshd
    // above its own shell): every session on that connection ends at once.
    let playbook = lab.playbook(
        "drop.toml",
        &format!(
            r#"
[steps.long]
plugin = "command"
on = ["h1", "h2"]
run = "sleep 3; touch /tmp/gr-{id}-long"

[steps.drop]
plugin = "command"
on = "h1"
run = "sleep 1; p=$PPID; while [ \"$(cat /proc/$p/comm)\" != sshd ]; do p=$(cut -d' ' -f4 /proc/$p/stat); done; kill -9 $p"

[steps.after]
plugin = "command"
on = ["h1", "h2"]
needs = ["long"]
run = "touch /tmp/gr-{id}-after"
"#
        ),
    );
    let run = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let nodes = statuses(&run);
    assert_eq!(nodes["long@h1"], "unreachable", "{nodes:?}");
    assert_eq!(nodes["drop@h1"], "unreachable", "{nodes:?}");
    assert_eq!(nodes["after@h1"], "blocked", "{nodes:?}");
    assert_eq!(nodes["long@h2"], "changed", "{nodes:?}");
    assert_eq!(nodes["after@h2"], "changed", "{nodes:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("connection lost"), "{stdout}");
    assert!(lab
        .ssh("h2", &format!("ls /tmp/gr-{id}-after"))
        .contains("after"));
}
