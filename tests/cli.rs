//! Tests: cli. The real binary on playbooks that only touch their own temporary folder
//! (a `local` host; `vars.root` is the folder).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{write_file, TempPlaybook};

/// A playbook in its own folder; `ROOT` in its text becomes the folder.
struct Site {
    file: TempPlaybook,
    root: String,
}

impl Site {
    fn new(body: &str) -> Self {
        let file = TempPlaybook::new("");
        let root = file.dir.path().display().to_string();
        let text = format!(
            "[vars]\nroot = \"{root}\"\n\n[hosts.control]\nconnection = \"local\"\n\n{body}"
        );
        write_file(file.dir.path(), "playbook.toml", &text);
        Site { file, root }
    }

    fn path(&self) -> &Path {
        &self.file.path
    }

    /// `graphrun SUBCOMMAND PLAYBOOK ARGS…`
    fn run(&self, subcommand: &str, args: &[&str]) -> Output {
        self.run_with_env(subcommand, args, &[])
    }

    fn run_with_env(&self, subcommand: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_graphrun"));
        command.arg(subcommand).arg(self.path()).args(args);
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().expect("graphrun runs")
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.file.dir.path().join(relative))
            .unwrap_or_else(|e| panic!("{relative}: {e}"))
    }

    fn exists(&self, relative: &str) -> bool {
        self.file.dir.path().join(relative).exists()
    }

    fn data_dir(&self) -> PathBuf {
        self.file.dir.path().join(".graphrun/playbook")
    }

    /// Every run log under `.graphrun/playbook/runs/<run>/`.
    /// Every file in the run folders (logs and events), sorted.
    fn run_files(&self) -> Vec<PathBuf> {
        let runs = self.data_dir().join("runs");
        let mut files: Vec<PathBuf> = std::fs::read_dir(runs)
            .expect("runs folder")
            .flat_map(|run| std::fs::read_dir(run.unwrap().path()).unwrap())
            .map(|f| f.unwrap().path())
            .collect();
        files.sort();
        files
    }

    /// The runs' `ops.log` files, oldest first.
    fn run_logs(&self) -> Vec<PathBuf> {
        let mut logs = self.run_files();
        logs.retain(|path| path.ends_with("ops.log"));
        logs
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn exit_code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

/// Every stdout line, as JSON (panics on a line that is not JSON).
fn events(output: &Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

/// node → status, from the node_finished events.
fn json_statuses(output: &Output) -> BTreeMap<String, String> {
    events(output)
        .into_iter()
        .filter(|e| e["event"] == "node_finished")
        .map(|e| {
            (
                e["node"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// node → status, from the plain lines of the human output (`STATUS node (1.23s)`).
fn human_statuses(output: &Output) -> BTreeMap<String, String> {
    stdout(output)
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                [status, node, time] if node.ends_with("@control") && time.starts_with('(') => {
                    Some((node.to_string(), status.to_string()))
                }
                _ => None,
            }
        })
        .collect()
}

fn expect(list: &[(&str, &str)]) -> BTreeMap<String, String> {
    list.iter()
        .map(|(node, status)| (format!("{node}@control"), status.to_string()))
        .collect()
}

/// The recap's row for a host (as `output::human::recap_table` lays it out, for apply).
fn recap_row(host: &str, counts: [usize; 6]) -> String {
    let width = host.len().max(4);
    let [ok, changed, skipped, failed, unreachable, blocked] = counts;
    format!(
        "{host:<width$}  {ok:>5}  {changed:>12}  {skipped:>7}  {failed:>6}  {unreachable:>11}  {blocked:>7}"
    )
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const MANAGED: &str = r#"
[steps.dir]
plugin = "file"
path = "{{ vars.root }}/out"
directory = true

[steps.conf]
plugin = "file"
needs = ["dir"]
path = "{{ vars.root }}/out/app.conf"
content = "port = 8080\n"
mode = "0640"

[steps.hosts-line]
plugin = "file"
needs = ["dir"]
path = "{{ vars.root }}/out/hosts"
line = "127.0.0.1 app"

[steps.marker]
plugin = "command"
needs = ["conf"]
run = ["touch", "{{ vars.root }}/out/marker"]
creates = "{{ vars.root }}/out/marker"

[steps.check]
plugin = "command"
needs = ["marker", "hosts-line"]
run = "test -f {{ vars.root }}/out/marker"
changed = false
"#;

#[test]
fn apply_changes_things_then_a_second_apply_changes_nothing() {
    let site = Site::new(MANAGED);
    let first = site.run("apply", &[]);
    assert_eq!(exit_code(&first), 0, "{}{}", stdout(&first), stderr(&first));
    let text = stdout(&first);
    assert_eq!(
        text.lines().next(),
        Some(format!("applying {}: 5 nodes on 1 host", site.path().display()).as_str())
    );
    assert_eq!(
        human_statuses(&first),
        expect(&[
            ("dir", "changed"),
            ("conf", "changed"),
            ("hosts-line", "changed"),
            ("marker", "changed"),
            ("check", "ok"),
        ])
    );
    assert!(
        text.lines()
            .any(|l| l == recap_row("control", [1, 4, 0, 0, 0, 0])),
        "{text}"
    );
    assert!(
        text.lines().last().unwrap().starts_with("done in "),
        "{text}"
    );
    assert_eq!(site.read("out/app.conf"), "port = 8080\n");
    assert_eq!(mode_of(&site.file.dir.path().join("out/app.conf")), 0o640);
    assert_eq!(site.read("out/hosts"), "127.0.0.1 app\n");
    assert!(site.exists("out/marker"));

    let second = site.run("apply", &["--output", "json"]);
    assert_eq!(exit_code(&second), 0, "{}", stderr(&second));
    assert_eq!(
        json_statuses(&second),
        expect(&[
            ("dir", "ok"),
            ("conf", "ok"),
            ("hosts-line", "ok"),
            ("marker", "ok"),
            ("check", "ok"),
        ])
    );
    let finished = events(&second).pop().unwrap();
    assert_eq!(finished["event"], "run_finished");
    assert_eq!(finished["exit_code"], 0);
    assert_eq!(finished["recap"]["control"]["ok"], 5);
    assert_eq!(finished["recap"]["control"]["changed"], 0);
    assert_eq!(
        site.read("out/hosts"),
        "127.0.0.1 app\n",
        "the line is not added twice"
    );
}

#[test]
fn plan_after_a_manual_edit_shows_only_that_node_and_changes_nothing() {
    let site = Site::new(MANAGED);
    assert_eq!(exit_code(&site.run("apply", &[])), 0);
    let edited = "port = 9090\n";
    std::fs::write(site.file.dir.path().join("out/app.conf"), edited).unwrap();
    let state_before = std::fs::read(site.file.state_path()).unwrap();

    let plan = site.run("plan", &["--output", "json"]);
    assert_eq!(exit_code(&plan), 0, "{}", stderr(&plan));
    assert_eq!(
        json_statuses(&plan),
        expect(&[
            ("dir", "ok"),
            ("conf", "would_change"),
            ("hosts-line", "ok"),
            ("marker", "ok"),
            ("check", "ok"),
        ])
    );
    let started = &events(&plan)[0];
    assert_eq!(started["event"], "run_started");
    assert_eq!(started["mode"], "plan");

    let human = site.run("plan", &[]);
    assert_eq!(exit_code(&human), 0);
    let text = stdout(&human);
    let changes: Vec<&str> = text.lines().filter(|l| l.starts_with("    ~ ")).collect();
    assert_eq!(
        changes,
        [format!(
            "    ~ file {}/out/app.conf (12 bytes, mode 0640)",
            site.root
        )
        .as_str()],
        "{text}"
    );

    assert_eq!(site.read("out/app.conf"), edited, "plan changed the file");
    assert_eq!(
        std::fs::read(site.file.state_path()).unwrap(),
        state_before,
        "plan wrote the state"
    );
}

#[test]
fn validate_reports_file_line_and_column() {
    let site = Site::new("[steps.one]\nplugin = \"comand\"\nrun = \"true\"\n");
    let output = site.run("validate", &[]);
    assert_eq!(exit_code(&output), 2);
    assert_eq!(stdout(&output), "");
    let path = site.path().display().to_string();
    let plugins: Vec<String> = graphrun::plugins::Registry::builtin()
        .names()
        .map(str::to_string)
        .collect();
    assert_eq!(
        stderr(&output),
        format!(
            "error: unknown plugin `comand`\n \
             --> {path}:8:10\n  \
             |\n\
             8 | plugin = \"comand\"\n  \
             |          ^^^^^^^^ did you mean `command`?\n  \
             = help: set plugin = \"…\" to one of: {} (or load one under [plugins.NAME])\n\
             \n\
             1 error in {path}: nothing was run\n",
            plugins.join(", ")
        )
    );

    let valid = Site::new(MANAGED);
    let output = valid.run("validate", &[]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        format!(
            "{}: valid (5 steps, 1 host, 5 nodes)\n",
            valid.path().display()
        )
    );
    assert!(!valid.data_dir().exists(), "validate wrote state");
}

#[test]
fn several_errors_are_counted() {
    let site = Site::new(
        "[steps.one]\nplugin = \"comand\"\nrun = \"true\"\n\n[steps.two]\nplugin = \"file\"\npth = \"/x\"\nline = \"y\"\n",
    );
    let output = site.run("validate", &[]);
    assert_eq!(exit_code(&output), 2);
    let text = stderr(&output);
    let path = site.path().display().to_string();
    let positions: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--> "))
        .collect();
    assert_eq!(
        positions,
        [
            format!("{path}:8:10"),
            format!("{path}:11:8"),
            format!("{path}:13:1")
        ]
    );
    assert_eq!(
        text.lines().last(),
        Some(format!("3 errors in {path}: nothing was run").as_str())
    );
}

#[test]
fn json_output_is_one_documented_event_per_line() {
    let site = Site::new(MANAGED);
    let output = site.run("apply", &["--output", "json"]);
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    let events = events(&output);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"run_started"));
    assert_eq!(names.last(), Some(&"run_finished"));
    let mut kinds: Vec<&str> = names.clone();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        [
            "node_finished",
            "node_started",
            "op_finished",
            "run_finished",
            "run_started"
        ]
    );
    let started = &events[0];
    assert_eq!(started["mode"], "apply");
    assert_eq!(started["playbook"], site.path().display().to_string());
    assert_eq!(started["hosts"], serde_json::json!({"control": 5}));
    assert!(started["run_id"].is_string());
    for node in ["dir", "conf", "hosts-line", "marker", "check"] {
        let node = format!("{node}@control");
        let of_node: Vec<(usize, &Value)> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| e["node"] == node.as_str())
            .collect();
        let kinds: Vec<&str> = of_node
            .iter()
            .map(|(_, e)| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["node_started", "op_finished", "node_finished"],
            "{node}"
        );
        let (_, node_started) = of_node[0];
        assert_eq!(node_started["attempt"], 1);
        assert_eq!(node_started["host"], "control");
        let (_, op) = of_node[1];
        assert_eq!(op["index"], 0);
        assert_eq!(op["exit_code"], 0);
        assert!(op.get("stderr").is_none());
        let (_, finished) = of_node[2];
        assert_eq!(finished["attempts"], 1);
        assert!(finished["duration_ms"].is_u64());
        assert!(finished.get("error").is_none());
    }
    let conf_op = events
        .iter()
        .find(|e| e["event"] == "op_finished" && e["node"] == "conf@control")
        .unwrap();
    assert_eq!(
        conf_op["op"],
        format!("file {}/out/app.conf (12 bytes, mode 0640)", site.root)
    );
    assert_eq!(conf_op["status"], "changed");
}

#[test]
fn state_and_logs_are_private() {
    let site = Site::new(MANAGED);
    assert_eq!(exit_code(&site.run("apply", &[])), 0);
    assert_eq!(mode_of(&site.file.state_path()), 0o600);
    assert_eq!(mode_of(&site.data_dir()), 0o700);
    let logs = site.run_logs();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].file_name().unwrap(), "ops.log");
    assert_eq!(mode_of(&logs[0]), 0o600);
    assert_eq!(mode_of(logs[0].parent().unwrap()), 0o700);
    assert_eq!(mode_of(&logs[0].with_file_name("events.jsonl")), 0o600);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(site.file.state_path()).unwrap()).unwrap();
    assert_eq!(state["version"], 1);
    assert_eq!(state["complete"], true);
    assert_eq!(state["nodes"]["conf@control"]["status"], "changed");
    assert_eq!(state["nodes"]["check@control"]["status"], "ok");
}

#[test]
fn plugins_lists_a_plugins_parameters() {
    let output = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(["plugins", "file"])
        .output()
        .unwrap();
    assert_eq!(exit_code(&output), 0);
    let text = stdout(&output);
    let registry = graphrun::plugins::Registry::builtin();
    let info = &registry.get("file").unwrap().info;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("file {} [built-in]", info.version));
    assert_eq!(lines[1], info.summary);
    assert_eq!(lines[3], "parameters:");
    let listed: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let declared: Vec<&str> = info.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(listed, declared);
    for name in [
        "path",
        "content",
        "line",
        "absent",
        "replace",
        "directory",
        "mode",
        "owner",
        "group",
    ] {
        assert!(listed.contains(&name), "{name} is not listed:\n{text}");
    }
    assert!(
        lines.contains(&"  path         a string (required)"),
        "{text}"
    );
    assert!(lines.contains(&"      Path on the host"), "{text}");
    assert!(
        lines.contains(&"  absent       true or false [default: false]"),
        "{text}"
    );

    let all = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .arg("plugins")
        .output()
        .unwrap();
    assert_eq!(exit_code(&all), 0);
    let all = stdout(&all);
    let names: Vec<&str> = all
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, registry.names().collect::<Vec<_>>());

    let missing = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(["plugins", "nope"])
        .output()
        .unwrap();
    assert_eq!(exit_code(&missing), 2);
    assert_eq!(
        stderr(&missing),
        "error: no plugin `nope` (`graphrun plugins` lists them)\n"
    );
}

#[test]
fn a_secret_never_leaves_the_process() {
    const SECRET: &str = "GrSecret-7f3a9c-do-not-print";
    let site = Site::new(
        r#"
[steps.leak]
plugin = "command"
run = "echo token={{ vars.token }}; echo err={{ vars.token }} >&2; exit 3"
"#,
    );
    // The secret is a variable read from the environment.
    let text = std::fs::read_to_string(site.path()).unwrap().replace(
        "[hosts.control]",
        "token = { env = \"GR_TEST_SECRET\" }\n\n[hosts.control]",
    );
    std::fs::write(site.path(), text).unwrap();
    let env = [("GR_TEST_SECRET", SECRET)];
    let human = site.run_with_env("apply", &[], &env);
    assert_eq!(exit_code(&human), 1, "{}{}", stdout(&human), stderr(&human));
    let json = site.run_with_env("apply", &["--output", "json"], &env);
    assert_eq!(exit_code(&json), 1);

    for (what, text) in [
        ("human stdout", stdout(&human)),
        ("human stderr", stderr(&human)),
        ("json stdout", stdout(&json)),
        ("json stderr", stderr(&json)),
        (
            "state",
            std::fs::read_to_string(site.file.state_path()).unwrap(),
        ),
    ] {
        assert!(
            !text.contains(SECRET),
            "the secret is in the {what}:\n{text}"
        );
    }
    let logs = site.run_logs();
    assert_eq!(logs.len(), 2, "one log per run: {logs:?}");
    for file in &site.run_files() {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            !text.contains(SECRET),
            "the secret is in {}:\n{text}",
            file.display()
        );
    }
    for log in &logs {
        let text = std::fs::read_to_string(log).unwrap();
        // The output was logged, redacted.
        assert!(text.contains("-- stdout\ntoken=***\n"), "{text}");
        assert!(text.contains("-- stderr\nerr=***\n"), "{text}");
    }
    let failed = events(&json)
        .into_iter()
        .find(|e| e["event"] == "node_finished")
        .unwrap();
    assert_eq!(failed["status"], "failed");
    assert_eq!(
        failed["error"],
        "`run `echo token=***; echo err=*** >&2; exit 3`` exited with 3\nstderr:\nerr=***\nstdout:\ntoken=***"
    );
}

#[test]
fn a_failed_step_shows_in_the_recap_and_a_rerun_resumes() {
    let site = Site::new(
        r#"
[steps.first]
plugin = "file"
path = "{{ vars.root }}/out/first"
content = "1\n"

[steps.gate]
plugin = "command"
needs = ["first"]
run = "test -e {{ vars.root }}/fixed"
changed = false

[steps.after]
plugin = "file"
needs = ["gate"]
path = "{{ vars.root }}/out/after"
line = "after"

[steps.other]
plugin = "file"
path = "{{ vars.root }}/out/other"
content = "o\n"
"#,
    );
    let failed = site.run("apply", &[]);
    assert_eq!(
        exit_code(&failed),
        1,
        "{}{}",
        stdout(&failed),
        stderr(&failed)
    );
    let text = stdout(&failed);
    assert_eq!(
        human_statuses(&failed),
        expect(&[
            ("first", "changed"),
            ("gate", "failed"),
            ("after", "blocked"),
            ("other", "changed"),
        ])
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&recap_row("control", [0, 2, 0, 1, 0, 1]).as_str()),
        "{text}"
    );
    let at = lines
        .iter()
        .position(|l| *l == "FAILED gate@control:")
        .unwrap_or_else(|| panic!("no failure in the recap:\n{text}"));
    assert_eq!(
        lines[at + 1].trim_end(),
        format!("  `check `test -e {}/fixed`` exited with 1", site.root)
    );
    assert!(lines.last().unwrap().starts_with("failed after "), "{text}");
    assert!(!site.exists("out/after"));

    write_file(site.file.dir.path(), "fixed", "");
    let resumed = site.run("apply", &["--output", "json"]);
    assert_eq!(exit_code(&resumed), 0, "{}", stderr(&resumed));
    assert_eq!(
        json_statuses(&resumed),
        expect(&[
            ("first", "done"),
            ("gate", "ok"),
            ("after", "changed"),
            ("other", "done"),
        ])
    );
    assert_eq!(site.read("out/after"), "after\n");

    // The run completed: the next apply checks everything again.
    let again = site.run("apply", &["--output", "json"]);
    assert_eq!(
        json_statuses(&again),
        expect(&[
            ("first", "ok"),
            ("gate", "ok"),
            ("after", "ok"),
            ("other", "ok"),
        ])
    );
}

#[test]
fn playbook_values_reach_files_and_argv_literally() {
    let site = Site::new(
        r#"
[steps.quote]
plugin = "file"
path = "{{ vars.root }}/lines"
line = "'; touch {{ vars.root }}/pwned #"

[steps.argv]
plugin = "command"
run = ["echo", "$(touch {{ vars.root }}/pwned2)"]

[steps.content]
plugin = "file"
path = "{{ vars.root }}/content"
content = "`touch {{ vars.root }}/pwned3` $HOME \\ \"quoted\"\n"
"#,
    );
    let output = site.run("apply", &[]);
    assert_eq!(
        exit_code(&output),
        0,
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let root = &site.root;
    assert_eq!(site.read("lines"), format!("'; touch {root}/pwned #\n"));
    assert_eq!(
        site.read("content"),
        format!("`touch {root}/pwned3` $HOME \\ \"quoted\"\n")
    );
    let logs = site.run_logs();
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(
        log.contains(&format!("-- stdout\n$(touch {root}/pwned2)\n")),
        "echo did not get the argument literally:\n{log}"
    );
    for pwned in ["pwned", "pwned2", "pwned3"] {
        assert!(
            !site.exists(pwned),
            "{pwned} exists: a value reached the shell"
        );
    }
    // And it is idempotent: the line is not appended again.
    assert_eq!(exit_code(&site.run("apply", &[])), 0);
    assert_eq!(site.read("lines"), format!("'; touch {root}/pwned #\n"));
}

#[test]
fn ctrl_c_stops_the_run_saves_state_and_exits_130() {
    let site = Site::new(
        r#"
[steps.quick]
plugin = "command"
run = "touch {{ vars.root }}/quick"
creates = "{{ vars.root }}/quick"

[steps.slow]
plugin = "command"
needs = ["quick"]
run = "touch {{ vars.root }}/slow-started; sleep 97.25"

[steps.after]
plugin = "command"
needs = ["slow"]
run = "true"
"#,
    );
    let child = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(["apply", "--output", "json"])
        .arg(site.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the slow step runs, then press Ctrl-C.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !site.exists("slow-started") {
        assert!(
            std::time::Instant::now() < deadline,
            "the run did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let started = std::time::Instant::now();
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the sleeping op was stopped, not waited for"
    );
    let orphans = Command::new("pgrep")
        .args(["-f", "sleep 97.25"])
        .output()
        .unwrap();
    assert!(
        orphans.stdout.is_empty(),
        "the op's process outlived the run"
    );
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(site.file.state_path()).unwrap()).unwrap();
    assert_eq!(state["complete"], false);
    assert_eq!(state["nodes"]["quick@control"]["status"], "changed");
    assert_eq!(state["nodes"]["slow@control"]["status"], "interrupted");
    let finished: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "node_finished" && e["node"] == "after@control")
        .collect();
    assert_eq!(finished[0]["status"], "cancelled");
}

#[test]
fn a_timeout_kills_only_its_own_shell_and_the_next_step_gets_a_fresh_one() {
    let site = Site::new(
        r#"
[steps.hang]
plugin = "command"
run = "sleep 30"
timeout = "1s"

[steps.after]
plugin = "command"
run = "touch {{ vars.root }}/after"
creates = "{{ vars.root }}/after"
"#,
    );
    // Side by side, and one after the other (`after` then takes the pool's shell only if
    // `hang`'s shell, killed at its timeout, is never lent out again).
    for per_host in ["4", "1", "4", "1"] {
        let _ = std::fs::remove_file(site.file.dir.path().join("after"));
        let args = ["--fresh", "--output", "json", "--per-host", per_host];
        let output = site.run("apply", &args);
        assert_eq!(exit_code(&output), 1);
        let finished: BTreeMap<String, Value> = stdout(&output)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| e["event"] == "node_finished")
            .map(|e| (e["node"].as_str().unwrap().to_string(), e))
            .collect();
        assert_eq!(finished["hang@control"]["status"], "failed");
        assert_eq!(finished["hang@control"]["error"], "timed out after 1s");
        assert_eq!(
            finished["after@control"]["status"], "changed",
            "{:?}",
            finished["after@control"]
        );
        assert_eq!(finished["after@control"]["attempts"], 1);
        assert!(site.exists("after"));
    }
}

/// A fetched file's path reaches later steps as an absolute path, so a step that copies it works
/// when the playbook was named relative to the current folder (it was read again from the
/// playbook's folder, doubling it).
#[test]
fn a_fetched_file_feeds_a_later_step_when_the_playbook_path_is_relative() {
    let site = Site::new(
        r#"
[steps.make]
plugin = "file"
path = "{{ vars.root }}/original"
content = "fetched and copied\n"

[steps.get]
plugin = "fetch"
needs = ["make"]
path = "{{ vars.root }}/original"

[steps.copy]
plugin = "file"
needs = ["get"]
path = "{{ vars.root }}/copy"
source = "{{ steps.get.outputs.local_path }}"
"#,
    );
    let folder = site.path().parent().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .current_dir(folder.parent().unwrap())
        .arg("apply")
        .arg(Path::new(folder.file_name().unwrap()).join("playbook.toml"))
        .output()
        .unwrap();
    assert_eq!(exit_code(&output), 0, "{}", stderr(&output));
    assert_eq!(site.read("copy"), "fetched and copied\n");
}
