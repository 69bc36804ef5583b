//! Command-line habits: closed pipes, suggestions, completions, the manual, `--check`,
//! `--detailed-exitcode`, `--state-dir`, `-q`, `-v`, `--color`.

use std::process::{Command, Stdio};

use snapbox::{assert_data_eq, str};

use super::{graphrun, transcript};
use crate::support::TempPlaybook;

/// A local host and one file step writing `made` in the playbook's folder.
fn one_file() -> TempPlaybook {
    let playbook = TempPlaybook::new("");
    let text = format!(
        "[vars]\nroot = \"{}\"\n\n[hosts.control]\nconnection = \"local\"\ngroups = [\"web\"]\n\n\
         [steps.made]\nplugin = \"file\"\npath = \"{{{{ vars.root }}}}/made\"\ncontent = \"secret-ish\"\n",
        playbook.dir.path().display()
    );
    std::fs::write(&playbook.path, text).unwrap();
    playbook
}

fn run(playbook: &TempPlaybook, args: &[&str]) -> String {
    let dir = playbook.dir.path();
    transcript(dir, &graphrun(dir, args))
}

#[test]
fn a_closed_pipe_is_a_normal_exit() {
    let playbook = one_file();
    let mut child = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(["man"])
        .current_dir(playbook.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before graphrun writes (as `| head -1` does after one line).
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
}

#[test]
fn typos_in_names_get_suggestions() {
    let playbook = one_file();
    assert_data_eq!(
        run(&playbook, &["plugins", "fiel"]),
        str![[r#"
exit 2
--- stdout
--- stderr
error: no plugin `fiel` (did you mean `file`? `graphrun plugins` lists them)

"#]]
    );
    assert_data_eq!(
        run(&playbook, &["graph", "playbook.toml", "--only", "mdae"]),
        str![[r#"
exit 2
--- stdout
--- stderr
error: --only: there is no step `mdae`; did you mean `made`?

"#]]
    );
    assert_data_eq!(
        run(&playbook, &["plan", "playbook.toml", "--limit", "wbe"]),
        str![[r#"
exit 2
--- stdout
--- stderr
error: --limit: there is no host or group `wbe`; did you mean `web`?

"#]]
    );
}

#[test]
fn graph_takes_limit_and_only() {
    let playbook = TempPlaybook::new(
        "[hosts.a]\naddress = \"10.0.0.1\"\n[hosts.b]\naddress = \"10.0.0.2\"\n\n\
         [steps.one]\nplugin = \"command\"\nrun = \"true\"\n\
         [steps.two]\nplugin = \"command\"\nrun = \"true\"\nneeds = [\"one\"]\n",
    );
    assert_data_eq!(
        run(
            &playbook,
            &[
                "graph",
                "playbook.toml",
                "--hosts",
                "--limit",
                "b",
                "--only",
                "two"
            ]
        ),
        str![[r#"
exit 0
--- stdout
two@b
--- stderr

"#]]
    );
}

#[test]
fn no_hosts_is_a_warning_at_validate_and_an_error_at_apply() {
    let playbook = TempPlaybook::new("[steps.a]\nplugin = \"command\"\nrun = \"true\"\n");
    assert_data_eq!(
        run(&playbook, &["validate", "playbook.toml"]),
        str![[r#"
exit 0
--- stdout
playbook.toml: valid (1 step, 0 hosts, 0 nodes)
--- stderr
warning: the playbook has no hosts: its steps run nowhere
  = help: pass the inventory with --inventory FILE, or add [hosts.NAME] tables


"#]]
    );
    assert_data_eq!(
        run(&playbook, &["apply", "playbook.toml"]),
        str![[r#"
exit 2
--- stdout
--- stderr
error: playbook.toml has no hosts to run on: pass the inventory with --inventory FILE, or add [hosts.NAME] tables

"#]]
    );
}

#[test]
fn completions_and_the_manual_are_generated() {
    let playbook = one_file();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let output = graphrun(playbook.dir.path(), &["completions", shell]);
        assert_eq!(output.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(script.contains("detailed-exitcode"), "{shell}: {script}");
    }
    let output = graphrun(playbook.dir.path(), &["man"]);
    let page = String::from_utf8_lossy(&output.stdout);
    assert!(page.contains(".TH graphrun 1"), "{page}");
    assert!(page.contains("completions"), "{page}");
}

#[test]
fn check_plans_and_the_detailed_exit_code_says_whether_changes_are_pending() {
    let playbook = one_file();
    assert_data_eq!(
        run(&playbook, &["apply", "playbook.toml", "--check"]),
        str![[r#"
exit 0
--- stdout
planning playbook.toml: 1 node on 1 host
would_change made@control ([ELAPSED])
    ~ file [ROOT]/made (10 bytes)
      --- [ROOT]/made (before)
      +++ [ROOT]/made (after)
      @@ -0,0 +1 @@
      +secret-ish
      / No newline at end of file

RECAP
host        ok  would_change  skipped  failed  unreachable  blocked
control      0             1        0       0            0        0

done in [ELAPSED]
--- stderr

"#]]
    );
    assert!(
        !playbook.dir.path().join("made").exists(),
        "--check changed the host"
    );
    let pending = graphrun(
        playbook.dir.path(),
        &["plan", "playbook.toml", "--detailed-exitcode"],
    );
    assert_eq!(pending.status.code(), Some(2));
    let applied = graphrun(playbook.dir.path(), &["apply", "playbook.toml", "-q"]);
    assert_eq!(applied.status.code(), Some(0));
    let clean = graphrun(
        playbook.dir.path(),
        &["plan", "playbook.toml", "--detailed-exitcode"],
    );
    assert_eq!(clean.status.code(), Some(0));
}

#[test]
fn quiet_keeps_the_recap_and_verbose_shows_shell_text() {
    let playbook = one_file();
    assert_data_eq!(
        run(&playbook, &["-q", "plan", "playbook.toml"]),
        str![[r#"
exit 0
--- stdout

RECAP
host        ok  would_change  skipped  failed  unreachable  blocked
control      0             1        0       0            0        0

done in [ELAPSED]
--- stderr

"#]]
    );
    // A secret in the content: the shell text shows `***` in its place.
    crate::support::write_file(playbook.dir.path(), "token", "it's a secret\n");
    let text = std::fs::read_to_string(&playbook.path)
        .unwrap()
        .replace("[vars]\n", "[vars]\ntoken = { file = \"token\" }\n")
        .replace("\"secret-ish\"", "\"{{ vars.token }}\"");
    std::fs::write(&playbook.path, text).unwrap();
    let verbose = run(&playbook, &["plan", "playbook.toml", "-v"]);
    assert!(verbose.contains("control: \"sh\""), "{verbose}");
    assert!(
        verbose.contains("made@control op 0: file [ROOT]/made"),
        "{verbose}"
    );
    assert!(verbose.contains("gr_text='***';"), "{verbose}");
    assert!(!verbose.contains("secret"), "{verbose}");
}

#[test]
fn the_state_dir_holds_state_and_an_unusable_one_is_not_invalid_input() {
    let playbook = one_file();
    let elsewhere = tempfile::tempdir().unwrap();
    let state_dir = elsewhere.path().join("state");
    let dir = state_dir.to_str().unwrap();
    let output = graphrun(
        playbook.dir.path(),
        &["apply", "playbook.toml", "--state-dir", dir],
    );
    assert_eq!(output.status.code(), Some(0));
    assert!(state_dir.join("state.json").exists());
    assert!(!playbook.dir.path().join(".graphrun").exists());
    // A file where the folder should be: the run cannot start, but the input was fine.
    let output = graphrun(
        playbook.dir.path(),
        &[
            "apply",
            "playbook.toml",
            "--state-dir",
            "playbook.toml/state",
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        transcript(playbook.dir.path(), &output)
    );
}

#[test]
fn color_always_colours_the_level() {
    let playbook = TempPlaybook::new("[hostz]\n");
    let output = graphrun(
        playbook.dir.path(),
        &["--color", "always", "validate", "playbook.toml"],
    );
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.starts_with("\u{1b}[1;31merror:\u{1b}[0m unknown table `hostz`"),
        "{text}"
    );
}
