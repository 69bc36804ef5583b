//! Tests: the state folder's lock, its journal, and its permissions, with the real binary on a
//! `local` host (the playbook only touches its own temporary folder).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::TempPlaybook;

/// A playbook on the local host; `ROOT` in its text becomes its folder.
fn local_playbook(body: &str) -> TempPlaybook {
    let file = TempPlaybook::new("");
    let root = file.dir.path().display().to_string();
    let text = format!("[hosts.control]\nconnection = \"local\"\n\n{body}").replace("ROOT", &root);
    std::fs::write(&file.path, text).unwrap();
    file
}

fn graphrun(args: &[&str], playbook: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_graphrun"));
    command.args(args).arg(playbook);
    command
}

fn run(args: &[&str], playbook: &Path) -> Output {
    graphrun(args, playbook).output().unwrap()
}

fn spawn(args: &[&str], playbook: &Path) -> Child {
    graphrun(args, playbook)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `count` gets a line per run of `once` (a command without a guard: not idempotent), then
/// `slow` marks that it started and sleeps. `once` finishes right after `first`, within the
/// 200 ms between two saves of the state file: only the journal has it when `slow` starts.
const COUNT_THEN_SLOW: &str = r#"
[steps.first]
plugin = "command"
run = "true"

[steps.once]
plugin = "command"
needs = ["first"]
run = "echo ran >> ROOT/count"

[steps.slow]
plugin = "command"
needs = ["once"]
run = "touch ROOT/slow-started; sleep 2"
"#;

#[test]
fn a_second_apply_is_refused_with_who_holds_the_lock_and_plan_still_runs() {
    let playbook = local_playbook(COUNT_THEN_SLOW);
    let root = playbook.dir.path();
    let first = spawn(&["apply"], &playbook.path);
    wait_for(&root.join("slow-started"));

    let second = run(&["apply"], &playbook.path);
    // Not invalid input: the playbook is fine, the run cannot start now.
    assert_eq!(second.status.code(), Some(1), "{}", text(&second.stderr));
    let refusal = text(&second.stderr);
    assert!(
        refusal.contains(&format!("pid {}", first.id())),
        "{refusal}"
    );
    assert!(refusal.contains("started 20"), "{refusal}");
    assert!(refusal.contains("wait for it to finish"), "{refusal}");
    let plan = run(&["plan"], &playbook.path);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "plan takes no lock: {}",
        text(&plan.stderr)
    );

    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(
        std::fs::read_to_string(root.join("count")).unwrap(),
        "ran\n"
    );
    let after = run(&["apply"], &playbook.path);
    assert_eq!(
        after.status.code(),
        Some(0),
        "the lock is released: {}",
        text(&after.stderr)
    );
    assert!(
        !text(&after.stderr).contains("taking over"),
        "{}",
        text(&after.stderr)
    );
}

#[test]
fn a_killed_run_loses_no_outcome_and_its_lock_is_taken_over_with_a_message() {
    let playbook = local_playbook(COUNT_THEN_SLOW);
    let root = playbook.dir.path();
    let mut first = spawn(&["apply"], &playbook.path);
    let pid = first.id();
    wait_for(&root.join("slow-started"));
    first.kill().unwrap();
    first.wait().unwrap();

    let next = run(&["apply", "--output", "json"], &playbook.path);
    assert_eq!(next.status.code(), Some(0), "{}", text(&next.stderr));
    let warnings = text(&next.stderr);
    assert!(
        warnings.contains(&format!(
            "taking over the lock of a run that ended without releasing it (pid {pid} on "
        )),
        "{warnings}"
    );
    assert!(
        warnings.contains("the last run was killed while running slow@control"),
        "{warnings}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("count")).unwrap(),
        "ran\n",
        "a node done before the kill does not run again"
    );
    let events = text(&next.stdout);
    assert!(
        events.contains(r#""node":"once@control","step":"once","host":"control","status":"done""#),
        "{events}"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(playbook.state_path()).unwrap()).unwrap();
    assert_eq!(state["complete"], true);
    assert!(!root.join(".graphrun/playbook/state.journal").exists());
}

#[test]
fn the_runs_folder_is_private_even_when_an_older_run_made_it_readable() {
    let playbook = local_playbook("[steps.noop]\nplugin = \"command\"\nrun = \"true\"\n");
    let runs = playbook.dir.path().join(".graphrun/playbook/runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::set_permissions(&runs, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(run(&["apply"], &playbook.path).status.code(), Some(0));
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&runs), 0o700);
    assert_eq!(mode(&runs.parent().unwrap().join("lock")), 0o600);
    let fresh = local_playbook("[steps.noop]\nplugin = \"command\"\nrun = \"true\"\n");
    assert_eq!(run(&["apply"], &fresh.path).status.code(), Some(0));
    for dir in [".graphrun", ".graphrun/playbook", ".graphrun/playbook/runs"] {
        assert_eq!(mode(&fresh.dir.path().join(dir)), 0o700, "{dir}");
    }
}
