//! Human output of `apply` and `plan` (plain lines: stdout is not a terminal here).

use snapbox::{assert_data_eq, str};

use super::{graphrun, transcript};
use crate::support::TempPlaybook;

/// A local host working in the playbook's own folder.
fn local(steps: &str) -> TempPlaybook {
    let playbook = TempPlaybook::new("");
    let root = playbook.dir.path().display();
    let text =
        format!("[vars]\nroot = \"{root}\"\n\n[hosts.control]\nconnection = \"local\"\n\n{steps}");
    std::fs::write(&playbook.path, text).unwrap();
    playbook
}

#[test]
fn a_failure_shows_stdout_and_stderr_tails_and_the_run_log() {
    let playbook = local(
        "[steps.made]\nplugin = \"file\"\npath = \"{{ vars.root }}/made\"\ncontent = \"x\"\n\n\
         [steps.broken]\nplugin = \"command\"\nrun = \"echo step 1 done; echo disk full >&2; exit 4\"\nneeds = [\"made\"]\n",
    );
    let dir = playbook.dir.path();
    let output = graphrun(dir, &["apply", "playbook.toml"]);
    assert_data_eq!(
        transcript(dir, &output),
        str![[r#"
exit 1
--- stdout
applying playbook.toml: 2 nodes on 1 host
changed      made@control ([ELAPSED])
failed       broken@control ([ELAPSED])

RECAP
host        ok       changed  skipped  failed  unreachable  blocked
control      0             1        0       1            0        0

FAILED broken@control:
  `run `echo step 1 done; echo disk full >&2; exit 4`` exited with 4
  stderr:
  disk full
  stdout:
  step 1 done
every op's whole output: ./.graphrun/playbook/runs/[RUN]/ops.log
failed after [ELAPSED]: fix the cause and run apply again to resume
--- stderr

"#]]
    );
}

#[test]
fn plan_after_a_failure_speaks_of_plan_not_of_resuming() {
    let playbook = local(
        "[steps.made]\nplugin = \"file\"\npath = \"{{ vars.root }}/made\"\ncontent = \"x\"\n\n\
         [steps.gate]\nplugin = \"command\"\nrun = \"test -e {{ vars.root }}/nothing\"\nchanged = false\nneeds = [\"made\"]\n",
    );
    let dir = playbook.dir.path();
    let output = graphrun(dir, &["plan", "playbook.toml"]);
    assert_data_eq!(
        transcript(dir, &output),
        str![[r#"
exit 1
--- stdout
planning playbook.toml: 2 nodes on 1 host
would_change made@control ([ELAPSED])
    ~ file [ROOT]/made (1 bytes)
      --- [ROOT]/made (before)
      +++ [ROOT]/made (after)
      @@ -0,0 +1 @@
      +x
      / No newline at end of file
failed       gate@control ([ELAPSED])

RECAP
host        ok  would_change  skipped  failed  unreachable  blocked
control      0             1        0       1            0        0

FAILED gate@control:
  `check `test -e [ROOT]/nothing`` exited with 1
failed after [ELAPSED]: fix the cause and run plan again
--- stderr

"#]]
    );
}

#[test]
fn ctrl_c_counts_interrupted_nodes_as_interrupted_not_failed() {
    let playbook = local(
        "[steps.quick]\nplugin = \"command\"\nrun = \"true\"\n\n\
         [steps.slow]\nplugin = \"command\"\nrun = \"touch {{ vars.root }}/started; sleep 30\"\nneeds = [\"quick\"]\n\n\
         [steps.after]\nplugin = \"command\"\nrun = \"true\"\nneeds = [\"slow\"]\n",
    );
    let dir = playbook.dir.path();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .current_dir(dir)
        .args(["apply", "playbook.toml"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = dir.join("started");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !started.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status();
    assert!(kill.unwrap().success());
    let output = child.wait_with_output().unwrap();
    assert_data_eq!(
        transcript(dir, &output),
        str![[r#"
exit 130
--- stdout
applying playbook.toml: 3 nodes on 1 host
changed      quick@control ([ELAPSED])
interrupted  slow@control ([ELAPSED])
cancelled    after@control ([ELAPSED])

RECAP
host        ok       changed  skipped  failed  unreachable  blocked  interrupted
control      0             1        0       0            0        1            1

interrupted after [ELAPSED]: state saved; run apply again to resume
--- stderr

"#]]
    );
}
