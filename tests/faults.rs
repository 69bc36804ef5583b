//! Tests: faults on the lab's real hosts, one test each (a host dying mid-step and a partition
//! are in `ssh.rs`): sshd restarting, a full disk, Ctrl-C at three points, graphrun killed with
//! SIGKILL. After each: the state file is intact, the next `apply` resumes, steps that are not
//! idempotent (they append a line per run) ran once, the output says what happened, and no
//! process graphrun started is left on this machine.

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::ssh::{lab, lab_script, run_id, statuses, Lab};

/// `once` appends a line per run (not idempotent), `slow` marks that it started and takes a
/// while (guarded: idempotent), `last` appends a line per run. Files live in `/root/gr-ID-*`.
fn counting_playbook(lab: &Lab, id: &str, on: &str, seconds: u32) -> std::path::PathBuf {
    lab.playbook(
        "faults.toml",
        &format!(
            r#"
[steps.once]
plugin = "command"
on = {on}
run = "echo ran >> /root/gr-{id}-once"

[steps.slow]
plugin = "command"
on = {on}
needs = ["once"]
run = "touch /root/gr-{id}-slow-started; sleep {seconds}; touch /root/gr-{id}-slow-done"
creates = "/root/gr-{id}-slow-done"

[steps.last]
plugin = "command"
on = {on}
needs = ["slow"]
run = "echo ran >> /root/gr-{id}-last"
"#
        ),
    )
}

/// How many times a counting step ran on a host.
fn runs(lab: &Lab, host: &str, id: &str, step: &str) -> usize {
    lab.ssh(host, &format!("cat /root/gr-{id}-{step} 2>/dev/null"))
        .lines()
        .count()
}

fn wait_on_host(lab: &Lab, host: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while lab.ssh(host, &format!("test -e {path} && echo yes")).trim() != "yes" {
        assert!(Instant::now() < deadline, "{path} never appeared on {host}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(lab: &Lab, playbook: &Path) -> Child {
    lab.command(&["apply", "--output", "json"], playbook)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every process on this machine whose command line names the test's folder (ssh clients
/// carry its known_hosts path) must be gone within 3 s.
fn assert_no_process_left(lab: &Lab) {
    let needle = lab.dir().display().to_string();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left: Vec<String> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| text(&c).replace('\0', " "))
            .filter(|c| c.contains(&needle))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes left behind: {left:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The state file parses and says the run did not complete.
fn assert_state_unfinished(playbook: &Path) {
    let path = playbook
        .parent()
        .unwrap()
        .join(".graphrun/faults/state.json");
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
        .unwrap_or_else(|e| panic!("{} is not intact: {e}", path.display()));
    assert_eq!(state["complete"], false);
}

/// The next apply resumes: exit 0, and every counting step ran exactly once on each host.
fn assert_resumes_running_nothing_twice(
    lab: &Lab,
    playbook: &Path,
    id: &str,
    hosts: &[&str],
) -> Output {
    let next = lab.graphrun(&["apply", "--output", "json"], playbook);
    assert_eq!(next.status.code(), Some(0), "{}", text(&next.stderr));
    for host in hosts {
        assert_eq!(runs(lab, host, id, "once"), 1, "once ran twice on {host}");
        assert_eq!(runs(lab, host, id, "last"), 1, "last on {host}");
    }
    next
}

#[test]
fn sshd_restarting_at_connect_time_and_mid_step_costs_nothing() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    let playbook = counting_playbook(&lab, &id, "\"all\"", 3);
    let run = std::thread::scope(|scope| {
        // h3 refuses new connections while graphrun connects: its retries get through.
        let restart = scope.spawn(|| lab_script(&["restart-sshd", "h3", "0.4"]));
        std::thread::sleep(Duration::from_millis(150));
        let run = scope.spawn(|| lab.graphrun(&["apply", "--output", "json"], &playbook));
        restart.join().unwrap();
        // h1's sshd restarts while a step runs over an open connection.
        wait_on_host(&lab, "h1", &format!("/root/gr-{id}-slow-started"));
        lab_script(&["restart-sshd", "h1", "0.5"]);
        run.join().unwrap()
    });
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
    let nodes = statuses(&run);
    assert_eq!(nodes.len(), 9);
    assert!(nodes.values().all(|s| s == "changed"), "{nodes:?}");
    for host in ["h1", "h2", "h3"] {
        assert_eq!(runs(&lab, host, &id, "once"), 1);
        assert_eq!(runs(&lab, host, &id, "last"), 1);
    }
    assert_no_process_left(&lab);
}

#[test]
fn a_full_disk_fails_the_write_leaves_the_file_as_it_was_and_the_next_apply_resumes() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    let mount = format!("/mnt/gr-{id}");
    lab_script(&["small-disk", "h1", &mount, "64k"]);
    lab.ssh("h1", &format!("printf 'old\\n' > {mount}/conf"));
    let big = "x".repeat(100_000);
    let playbook = lab.playbook(
        "faults.toml",
        &format!(
            r#"
[steps.once]
plugin = "command"
on = "h1"
run = "echo ran >> /root/gr-{id}-once"

[steps.write]
plugin = "file"
on = "h1"
needs = ["once"]
path = "{mount}/conf"
content = "{big}"

[steps.last]
plugin = "command"
on = "h1"
needs = ["write"]
run = "echo ran >> /root/gr-{id}-last"
"#
        ),
    );
    let full = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_eq!(full.status.code(), Some(1), "{}", text(&full.stderr));
    let nodes = statuses(&full);
    assert_eq!(nodes["write@h1"], "failed", "{nodes:?}");
    assert_eq!(nodes["last@h1"], "blocked");
    assert!(
        text(&full.stdout).contains("no space left on the device"),
        "{}",
        text(&full.stdout)
    );
    assert_eq!(lab.ssh("h1", &format!("cat {mount}/conf")), "old\n");
    assert_eq!(
        lab.ssh("h1", &format!("ls {mount}")).trim(),
        "conf",
        "no half-written copy"
    );
    assert_state_unfinished(&playbook);
    assert_no_process_left(&lab);

    lab_script(&["small-disk", "h1", &mount, "1m"]);
    let next = assert_resumes_running_nothing_twice(&lab, &playbook, &id, &["h1"]);
    assert_eq!(statuses(&next)["once@h1"], "done");
    assert_eq!(
        lab.ssh("h1", &format!("wc -c < {mount}/conf")).trim(),
        "100000"
    );
    assert_eq!(
        lab.ssh("h1", &format!("cat {mount}/conf.graphrun.bak")),
        "old\n"
    );
    lab.ssh("h1", &format!("umount {mount} && rmdir {mount}"));
}

#[test]
fn ctrl_c_while_connecting_stops_at_once_and_the_next_apply_runs_everything() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    let playbook = counting_playbook(&lab, &id, "[\"h3\"]", 1);
    lab_script(&["partition", "h3"]);
    let child = spawn(&lab, &playbook);
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    lab_script(&["heal", "h3"]);
    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    let nodes = statuses(&output);
    assert!(
        nodes
            .values()
            .all(|s| s == "interrupted" || s == "cancelled"),
        "{nodes:?}"
    );
    assert_state_unfinished(&playbook);
    assert_no_process_left(&lab);
    let next = assert_resumes_running_nothing_twice(&lab, &playbook, &id, &["h3"]);
    assert_eq!(statuses(&next)["once@h3"], "changed");
}

#[test]
fn ctrl_c_mid_step_records_what_finished_and_the_next_apply_resumes() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    let playbook = counting_playbook(&lab, &id, "\"all\"", 4);
    let child = spawn(&lab, &playbook);
    for host in ["h1", "h2", "h3"] {
        wait_on_host(&lab, host, &format!("/root/gr-{id}-slow-started"));
    }
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    let nodes = statuses(&output);
    for host in ["h1", "h2", "h3"] {
        assert_eq!(nodes[&format!("once@{host}")], "changed");
        assert_eq!(nodes[&format!("slow@{host}")], "interrupted", "{nodes:?}");
        assert_eq!(nodes[&format!("last@{host}")], "cancelled");
    }
    assert_state_unfinished(&playbook);
    assert_no_process_left(&lab);
    let next = assert_resumes_running_nothing_twice(&lab, &playbook, &id, &["h1", "h2", "h3"]);
    assert_eq!(statuses(&next)["once@h2"], "done");
}

#[test]
fn ctrl_c_while_a_host_waits_for_another_cancels_what_has_not_started() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    // `gate` runs on h2 once every host's `once` is done (on a loaded machine h1 may connect
    // late); every host's `last` waits for it (wait = "all").
    let playbook = lab.playbook(
        "faults.toml",
        &format!(
            r#"
[steps.once]
plugin = "command"
run = "echo ran >> /root/gr-{id}-once"

[steps.gate]
plugin = "command"
on = ["h2"]
needs = ["once"]
wait = "all"
run = "touch /root/gr-{id}-gate-started; sleep 4"

[steps.last]
plugin = "command"
needs = ["gate"]
wait = "all"
run = "echo ran >> /root/gr-{id}-last"
"#
        ),
    );
    let child = spawn(&lab, &playbook);
    wait_on_host(&lab, "h2", &format!("/root/gr-{id}-gate-started"));
    signal(&child, "INT");
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output.stderr));
    let nodes = statuses(&output);
    assert_eq!(nodes["once@h1"], "changed", "{nodes:?}");
    assert_eq!(nodes["gate@h2"], "interrupted");
    for host in ["h1", "h2", "h3"] {
        assert_eq!(nodes[&format!("last@{host}")], "cancelled");
    }
    assert_state_unfinished(&playbook);
    assert_no_process_left(&lab);
    let next = assert_resumes_running_nothing_twice(&lab, &playbook, &id, &["h1", "h2", "h3"]);
    assert_eq!(statuses(&next)["once@h1"], "done");
}

#[test]
fn graphrun_killed_mid_run_leaves_no_ssh_behind_and_the_next_apply_says_so_and_resumes() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    // The step outlives the 3 s the process check waits: an ssh client that is not killed
    // with graphrun would still wait for it.
    let playbook = counting_playbook(&lab, &id, "\"all\"", 8);
    let mut child = spawn(&lab, &playbook);
    let pid = child.id();
    for host in ["h1", "h2", "h3"] {
        wait_on_host(&lab, host, &format!("/root/gr-{id}-slow-started"));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_no_process_left(&lab);
    assert_state_unfinished(&playbook);
    let next = assert_resumes_running_nothing_twice(&lab, &playbook, &id, &["h1", "h2", "h3"]);
    let warnings = text(&next.stderr);
    assert!(
        warnings.contains(&format!(
            "taking over the lock of a run that ended without releasing it (pid {pid} "
        )),
        "{warnings}"
    );
    let killed = warnings
        .lines()
        .find(|l| l.contains("the last run was killed while running "))
        .unwrap_or_else(|| panic!("{warnings}"));
    for host in ["h1", "h2", "h3"] {
        assert!(killed.contains(&format!("slow@{host}")), "{killed}");
    }
    let nodes = statuses(&next);
    assert_eq!(nodes["once@h1"], "done");
}
