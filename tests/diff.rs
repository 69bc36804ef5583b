//! Tests: diff. `plan` and `apply --diff` show what file ops change, probed on the host in the
//! same round trip, with secrets redacted, in human output and JSON events.

use std::process::{Command, Output};

use serde_json::Value;

use crate::support::{write_file, TempPlaybook};

/// A local playbook managing `ROOT/app.conf` (with a secret) and a line in `ROOT/hosts`.
fn site() -> TempPlaybook {
    let file = TempPlaybook::new("");
    let root = file.dir.path().display();
    let text = format!(
        r#"
[vars]
token = {{ env = "GRAPHRUN_TEST_TOKEN" }}

[hosts.control]
connection = "local"

[steps.conf]
plugin = "file"
path = "{root}/app.conf"
content = "port = 8080\ntoken = {{{{ vars.token }}}}\n"

[steps.hosts]
plugin = "file"
path = "{root}/hosts"
line = "10.0.0.1 master"
"#
    );
    write_file(file.dir.path(), "playbook.toml", &text);
    file
}

fn graphrun(file: &TempPlaybook, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(args)
        .arg(&file.path)
        .env("GRAPHRUN_TEST_TOKEN", "s3cr3t-value")
        .output()
        .expect("graphrun runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn plan_shows_a_unified_diff_with_secrets_redacted() {
    let file = site();
    let conf = file.dir.path().join("app.conf");
    std::fs::write(&conf, "port = 80\ntoken = s3cr3t-value\n").unwrap();
    let output = graphrun(&file, &["plan"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    let expected = format!(
        "      --- {path} (before)\n      +++ {path} (after)\n      @@ -1,2 +1,2 @@\n      -port = 80\n      +port = 8080\n       token = ***\n",
        path = conf.display()
    );
    assert!(text.contains(&expected), "{text}");
    let hosts = file.dir.path().join("hosts").display().to_string();
    assert!(
        text.contains(&format!(
            "      +++ {hosts} (after)\n      @@ -0,0 +1 @@\n      +10.0.0.1 master\n"
        )),
        "{text}"
    );
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(
        !text.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "port = 80\ntoken = s3cr3t-value\n"
    );
}

#[test]
fn json_events_carry_the_diff() {
    let file = site();
    let output = graphrun(&file, &["plan", "--output", "json"]);
    let events: Vec<Value> = stdout(&output)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let op = events
        .iter()
        .find(|e| e["event"] == "op_finished" && e["step"] == "conf")
        .unwrap();
    assert_eq!(op["status"], "would_change");
    let diff = op["diff"].as_str().unwrap();
    assert!(
        diff.ends_with("@@ -0,0 +1,2 @@\n+port = 8080\n+token = ***\n"),
        "{diff}"
    );
}

#[test]
fn apply_shows_diffs_only_when_asked() {
    let file = site();
    let plain = stdout(&graphrun(&file, &["apply"]));
    assert!(!plain.contains("@@"), "{plain}");
    std::fs::write(file.dir.path().join("hosts"), "127.0.0.1 localhost\n").unwrap();
    let output = graphrun(&file, &["apply", "--diff"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(
        text.contains("      @@ -1 +1,2 @@\n       127.0.0.1 localhost\n      +10.0.0.1 master\n"),
        "{text}"
    );
    let again = stdout(&graphrun(&file, &["apply", "--diff"]));
    assert!(
        !again.contains("@@"),
        "nothing changes, nothing to show: {again}"
    );
}

#[test]
fn a_secret_of_several_lines_never_reaches_the_diff() {
    let file = TempPlaybook::new("");
    let target = file.dir.path().join("key.pem");
    let text = format!(
        "[vars]\nkey = {{ env = \"GRAPHRUN_TEST_KEY\" }}\n\n[hosts.control]\nconnection = \"local\"\n\n\
         [steps.key]\nplugin = \"file\"\npath = \"{}\"\ncontent = \"{{{{ vars.key }}}}\"\n",
        target.display()
    );
    write_file(file.dir.path(), "playbook.toml", &text);
    let key =
        "-----BEGIN KEY-----\nc2VjcmV0LWxpbmUtb25l\nc2VjcmV0LWxpbmUtdHdv\n-----END KEY-----\n";
    let output = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(["plan", "--output", "json"])
        .arg(&file.path)
        .env("GRAPHRUN_TEST_KEY", key)
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(text.contains(r#"+***"#), "{text}");
    assert!(
        !text.contains("c2VjcmV0"),
        "a line of the secret leaked: {text}"
    );
}
