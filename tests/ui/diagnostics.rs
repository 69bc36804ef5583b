//! Diagnostics of `validate`, whole, as printed.

use snapbox::{assert_data_eq, str};

use super::{graphrun, transcript, validate};
use crate::support::TempPlaybook;

/// A local host, so that steps have somewhere to run.
const LOCAL: &str = "[hosts.control]\nconnection = \"local\"\n\n";

#[test]
fn out_of_range_numbers_and_durations_are_refused_at_validate() {
    let text = "[hosts.web]\naddress = \"10.77.5.11\"\nport = \"22\"\nconnect_timeout = 18446744073709551615\n\n\
                [steps.a]\nplugin = \"command\"\nrun = \"true\"\ntimeout = \"0s\"\nretries = -1\nretry_delay = \"2days\"\n";
    assert_data_eq!(
        validate(text),
        str![[r#"
exit 2
--- stdout
--- stderr
error: `port` must be an integer from 1 to 65535, found a string
 --> playbook.toml:3:8
  |
3 | port = "22"
  |        ^^^^

error: `connect_timeout` must be from 1s to 1h
 --> playbook.toml:4:19
  |
4 | connect_timeout = 18446744073709551615
  |                   ^^^^^^^^^^^^^^^^^^^^
  = help: write durations such as "30s", "5m" or "1h 30m"

error: `timeout` must be from 1ms to 7days
 --> playbook.toml:9:11
  |
9 | timeout = "0s"
  |           ^^^^
  = help: write durations such as "30s", "5m" or "1h 30m"

error: `retries` must be an integer from 0 to 100, found -1
  --> playbook.toml:10:11
   |
10 | retries = -1
   |           ^^

error: `retry_delay` must be from 0s to 1day
  --> playbook.toml:11:15
   |
11 | retry_delay = "2days"
   |               ^^^^^^^
   = help: write durations such as "30s", "5m" or "1h 30m"

5 errors in playbook.toml: nothing was run

"#]]
    );
}

#[test]
fn step_keys_are_suggested_before_plugin_parameters() {
    let text = format!(
        "{LOCAL}[steps.b]\nplugin = \"command\"\nrun = \"true\"\n\n\
         [steps.a]\nplugin = \"file\"\npath = \"/tmp/x\"\ncontent = \"x\"\nneed = [\"b\"]\ntiemout = \"1m\"\n"
    );
    assert_data_eq!(
        validate(&text),
        str![[r#"
exit 2
--- stdout
--- stderr
error: unknown step key `need`
  --> playbook.toml:12:1
   |
12 | need = ["b"]
   | ^^^^ did you mean `needs`?
   = help: step keys are plugin, on, needs, wait, retries, retry_delay, timeout, when, exclusive, once; every other key is a parameter of plugin `file`

error: unknown step key `tiemout`
  --> playbook.toml:13:1
   |
13 | tiemout = "1m"
   | ^^^^^^^ did you mean `timeout`?
   = help: step keys are plugin, on, needs, wait, retries, retry_delay, timeout, when, exclusive, once; every other key is a parameter of plugin `file`

2 errors in playbook.toml: nothing was run

"#]]
    );
}

#[test]
fn diagnostics_come_in_file_order_with_what_was_found() {
    let text = format!(
        "{LOCAL}[steps.c]\nplugin = \"command\"\nrun = 3\ncwd = 4\nchanged = \"no\"\nenv = [\"A=1\"]\n"
    );
    assert_data_eq!(
        validate(&text),
        str![[r#"
exit 2
--- stdout
--- stderr
error: parameter `run` must be a command string or a list of strings, found an integer
 --> playbook.toml:6:7
  |
6 | run = 3
  |       ^
  = help: A string run by `sh -c`, or a list of words run as an argv

error: parameter `cwd` must be a string, found an integer
 --> playbook.toml:7:7
  |
7 | cwd = 4
  |       ^
  = help: Working directory

error: parameter `changed` must be true or false, found a string
 --> playbook.toml:8:11
  |
8 | changed = "no"
  |           ^^^^
  = help: false for a read-only check: never counts as a change, and `plan` runs it

error: parameter `env` must be a table of strings, found an array
 --> playbook.toml:9:7
  |
9 | env = ["A=1"]
  |       ^^^^^^^
  = help: Extra environment variables

4 errors in playbook.toml: nothing was run

"#]]
    );
}

#[test]
fn a_table_defined_twice_is_one_error_with_both_places() {
    let text = format!(
        "{LOCAL}[steps.a]\nplugin = \"command\"\nrun = \"true\"\n\n\
         [steps.b]\nplugin = \"command\"\nrun = \"true\"\n\n\n\n\
         [steps.a]\nplugin = \"command\"\nrun = \"false\"\n"
    );
    assert_data_eq!(
        validate(&text),
        str![[r#"
exit 2
--- stdout
--- stderr
error: table `[steps.a]` is defined twice
  --> playbook.toml:14:8
   |
 4 | [steps.a]
   | --------- first defined here
14 | [steps.a]
   |        ^ defined again here
   = help: merge the two tables into one, or rename one of them

1 error in playbook.toml: nothing was run

"#]]
    );
}

#[test]
fn byte_order_marks_utf16_and_crlf_are_read() {
    let text = "\u{feff}[hostz.control]\r\nconnection = \"local\"\r\n";
    let playbook = TempPlaybook::new(text);
    let utf8 = graphrun(playbook.dir.path(), &["validate", "playbook.toml"]);
    assert_data_eq!(
        transcript(playbook.dir.path(), &utf8),
        str![[r#"
exit 2
--- stdout
--- stderr
error: unknown table `hostz`
 --> playbook.toml:1:2
  |
1 | [hostz.control]
  |  ^^^^^ did you mean `hosts`?
  = help: allowed here: vars, defaults, hosts, groups, plugins, artifacts, steps

1 error in playbook.toml: nothing was run

"#]]
    );
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text[3..].encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    std::fs::write(&playbook.path, utf16).unwrap();
    let output = graphrun(playbook.dir.path(), &["validate", "playbook.toml"]);
    assert_eq!(
        transcript(playbook.dir.path(), &output),
        transcript(playbook.dir.path(), &utf8),
        "UTF-16 reads as UTF-8 does"
    );
}

#[test]
fn crlf_never_reaches_file_content() {
    let playbook = TempPlaybook::new(&format!(
        "{LOCAL}[steps.f]\r\nplugin = \"file\"\r\npath = \"/tmp/x\"\r\ncontent = \"\"\"\r\none\r\ntwo\r\n\"\"\"\r\n"
    ));
    let loaded = playbook.load().expect("valid");
    assert_eq!(loaded.steps[0].params.0["content"], "one\ntwo\n");
}

#[test]
fn template_names_filters_and_tests_are_checked_with_suggestions() {
    let text = format!(
        "[vars]\nroot = \"/tmp\"\n\n{LOCAL}[steps.a]\nplugin = \"command\"\nrun = \"ls {{{{ vars.rot }}}}\"\n\n\
         [steps.b]\nplugin = \"command\"\nrun = \"ls {{{{ vars.root | qoute }}}}\"\nwhen = \"vars.root is definde\"\n"
    );
    assert_data_eq!(
        validate(&text),
        str![[r#"
exit 2
--- stdout
--- stderr
error: template reads `vars.rot`: no variable `rot` in [vars]
 --> playbook.toml:9:7
  |
9 | run = "ls {{ vars.rot }}"
  |       ^^^^^^^^^^^^^^^^^^^ did you mean `vars.root`?
  = help: templates can read vars.*, host.*, hosts.NAME.*, groups.NAME, facts.* and steps.ID.outputs.* of steps this one needs

error: template uses an unknown filter `qoute`
  --> playbook.toml:13:7
   |
13 | run = "ls {{ vars.root | qoute }}"
   |       ^^^^^^^^^^^^^^^^^^^^^^^^^^^^ did you mean `quote`?
   = help: filters are minijinja's built-ins (`default`, `lower`, `join`…) and `quote`

error: template uses an unknown test `definde`
  --> playbook.toml:14:8
   |
14 | when = "vars.root is definde"
   |        ^^^^^^^^^^^^^^^^^^^^^^ did you mean `defined`?
   = help: tests are minijinja's built-ins (`defined`, `none`, `eq`…)

3 errors in playbook.toml: nothing was run

"#]]
    );
}

#[test]
fn relative_host_paths_are_refused_at_validate() {
    let text = format!(
        "{LOCAL}[steps.relative]\nplugin = \"file\"\npath = \"tmp/x\"\ncontent = \"x\"\n\n\
         [steps.fetched]\nplugin = \"fetch\"\npath = \"etc/kubeconfig\"\n"
    );
    assert_data_eq!(
        validate(&text),
        str![[r#"
exit 2
--- stdout
--- stderr
error: plugin `file`: `tmp/x` is not an absolute path: a relative one would land in whatever folder the remote shell starts in
 --> playbook.toml:6:1
  |
6 | path = "tmp/x"
  | ^^^^
  = help: `graphrun plugins file` documents every parameter

error: plugin `fetch`: `etc/kubeconfig` is not an absolute path: a relative one would land in whatever folder the remote shell starts in
  --> playbook.toml:11:1
   |
11 | path = "etc/kubeconfig"
   | ^^^^
   = help: `graphrun plugins fetch` documents every parameter

2 errors in playbook.toml: nothing was run

"#]]
    );
}

#[test]
fn a_missing_upload_source_is_refused_at_validate() {
    let text = format!(
        "{LOCAL}[steps.upload]\nplugin = \"file\"\npath = \"/usr/local/bin/tool\"\nsource = \"bin/tool\"\n"
    );
    assert_data_eq!(
        validate(&text),
        str![[r#"
exit 2
--- stdout
--- stderr
error: cannot read `bin/tool`: No such file or directory (os error 2)
 --> playbook.toml:7:10
  |
7 | source = "bin/tool"
  |          ^^^^^^^^^^
  = help: an upload's source is a file on this machine, relative to the playbook

1 error in playbook.toml: nothing was run

"#]]
    );
}

#[test]
fn an_upload_source_that_exists_passes() {
    let playbook = TempPlaybook::new(&format!(
        "{LOCAL}[steps.upload]\nplugin = \"file\"\npath = \"/usr/local/bin/tool\"\nsource = \"bin/tool\"\n"
    ));
    crate::support::write_file(playbook.dir.path(), "bin/tool", "#!/bin/sh\n");
    playbook.load().expect("the source exists");
}

#[test]
fn names_that_would_be_ambiguous_in_node_names_are_refused() {
    let text = "[hosts.\"db@2\"]\naddress = \"10.0.0.2\"\n\n[groups.\"a b\"]\nhosts = []\n\n\
                [steps.'say\"hi\"']\nplugin = \"command\"\nrun = \"true\"\n\n\
                [steps.\"..\"]\nplugin = \"command\"\nrun = \"true\"\n";
    assert_data_eq!(
        validate(text),
        str![[r#"
exit 2
--- stdout
--- stderr
error: `db@2`: '@' is not allowed in a host name
 --> playbook.toml:1:8
  |
1 | [hosts."db@2"]
  |        ^^^^^^
  = help: names use letters, digits, `-`, `_` and `.`: they appear in `step@host`, in --limit and --only lists, and in folder names

error: `a b`: ' ' is not allowed in a group name
 --> playbook.toml:4:9
  |
4 | [groups."a b"]
  |         ^^^^^
  = help: names use letters, digits, `-`, `_` and `.`: they appear in `step@host`, in --limit and --only lists, and in folder names

error: `say"hi"`: '"' is not allowed in a step id
 --> playbook.toml:7:8
  |
7 | [steps.'say"hi"']
  |        ^^^^^^^^^
  = help: names use letters, digits, `-`, `_` and `.`: they appear in `step@host`, in --limit and --only lists, and in folder names

error: `..`: a step id needs a letter or digit
  --> playbook.toml:11:8
   |
11 | [steps.".."]
   |        ^^^^
   = help: names use letters, digits, `-`, `_` and `.`: they appear in `step@host`, in --limit and --only lists, and in folder names

4 errors in playbook.toml: nothing was run

"#]]
    );
}

#[test]
fn unknown_hosts_in_a_playbook_without_hosts_point_at_the_inventory() {
    let text = "[steps.a]\nplugin = \"command\"\non = [\"h1\"]\nrun = \"true\"\n\n\
                [steps.b]\nplugin = \"command\"\nrun = \"ping -c1 {{ hosts.h1.address }}\"\n";
    assert_data_eq!(
        validate(text),
        str![[r#"
exit 2
--- stdout
--- stderr
error: unknown host or group `h1`
 --> playbook.toml:3:7
  |
3 | on = ["h1"]
  |       ^^^^
  = help: there are no hosts at all: pass the inventory with --inventory FILE, or add [hosts.NAME] tables

1 error in playbook.toml: nothing was run

"#]]
    );
}
