//! Tests: validation. Every kind of playbook error, with its exact position and message.

use std::path::Path;

use graphrun::playbook::{ConnectionKind, Diagnostic, HostKeyChecking, Wait};
use graphrun::plugins::Registry;

use crate::support::{write_file, TempPlaybook};

/// One host, then the text (so steps start on line 4).
const HOST: &str = "[hosts.a]\naddress = \"10.0.0.1\"\n\n";

/// What a diagnostic says, with the position relative to the playbook's folder.
#[derive(Debug, PartialEq)]
struct Seen {
    position: Option<String>,
    message: String,
    label: String,
    help: Option<String>,
}

fn seen(dir: &Path, diagnostics: &[Diagnostic]) -> Vec<Seen> {
    let prefix = format!("{}/", dir.display());
    diagnostics
        .iter()
        .map(|d| Seen {
            position: d.position().map(|p| p.replacen(&prefix, "", 1)),
            message: d.message.clone(),
            label: d.label.clone(),
            help: d.help.clone(),
        })
        .collect()
}

fn errors_of(text: &str) -> Vec<Seen> {
    let playbook = TempPlaybook::new(text);
    let diagnostics = playbook
        .load()
        .expect_err("the playbook is invalid and must not load");
    seen(playbook.dir.path(), &diagnostics)
}

/// The only diagnostic of an invalid playbook.
fn single_error(text: &str) -> Seen {
    let mut errors = errors_of(text);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    errors.remove(0)
}

fn error(position: &str, message: &str, label: &str, help: Option<&str>) -> Seen {
    Seen {
        position: Some(format!("playbook.toml:{position}")),
        message: message.to_string(),
        label: label.to_string(),
        help: help.map(str::to_string),
    }
}

/// The help of an unknown plugin, listing the built-in plugins.
fn plugin_help() -> String {
    format!(
        "set plugin = \"…\" to one of: {} (or load one under [plugins.NAME])",
        Registry::builtin().names().collect::<Vec<_>>().join(", ")
    )
}

const CONNECTION_KEYS: &str = "connection, user, port, identity_file, known_hosts_file, host_key_checking, become, become_password, connect_timeout, jump";

#[test]
fn toml_syntax_error() {
    let text = format!("{HOST}[steps.one]\nplugin = \"command\"\nrun = \"true\n");
    let found = single_error(&text);
    // The unterminated string is reported where its closing quote is missing.
    assert_eq!(found.position.as_deref(), Some("playbook.toml:6:12"));
    assert_eq!(
        found.message,
        "invalid TOML: invalid basic string, expected `\"`"
    );
    assert_eq!(found.label, "here");
    assert_eq!(
        found.help.as_deref(),
        Some("fix the TOML syntax (https://toml.io)")
    );
}

#[test]
fn toml_syntax_error_renders_with_the_source_line_and_a_caret() {
    let playbook = TempPlaybook::new("[hosts.a]\naddress = \n");
    let diagnostics = playbook.load().unwrap_err();
    assert_eq!(diagnostics.len(), 1);
    let rendered = diagnostics[0].to_string();
    let position = diagnostics[0].position().unwrap();
    assert_eq!(position, format!("{}:2:11", playbook.path.display()));
    let lines: Vec<&str> = rendered.lines().collect();
    assert_eq!(lines[1], format!(" --> {position}"));
    assert_eq!(lines[2], "  |");
    assert_eq!(lines[3], "2 | address = ");
    assert!(lines[4].starts_with("  |           ^"), "{rendered}");
}

#[test]
fn unknown_top_level_table() {
    let text = format!("{HOST}[step.one]\nplugin = \"command\"\nrun = \"true\"\n");
    assert_eq!(
        single_error(&text),
        error(
            "4:2",
            "unknown table `step`",
            "did you mean `steps`?",
            Some("allowed here: vars, defaults, hosts, groups, plugins, artifacts, steps")
        )
    );
}

#[test]
fn unknown_key_in_defaults() {
    let text = format!("[defaults]\nusr = \"root\"\n\n{HOST}");
    assert_eq!(
        single_error(&text),
        error(
            "2:1",
            "unknown key `usr`",
            "did you mean `user`?",
            Some(&format!("allowed here: {CONNECTION_KEYS}"))
        )
    );
}

#[test]
fn unknown_key_in_a_host() {
    let text = "[hosts.a]\naddress = \"10.0.0.1\"\ngrups = [\"web\"]\n";
    assert_eq!(
        single_error(text),
        error(
            "3:1",
            "unknown key `grups`",
            "did you mean `groups`?",
            Some(&format!(
                "allowed here: address, groups, vars, {CONNECTION_KEYS}"
            ))
        )
    );
}

#[test]
fn host_without_an_address() {
    let text = "[hosts.a]\nuser = \"root\"\n";
    assert_eq!(
        single_error(text),
        error(
            "1:8",
            "host `a` has no `address`",
            "",
            Some("add address = \"IP or DNS name\", or connection = \"local\" for this machine")
        )
    );
}

#[test]
fn unknown_plugin_with_a_suggestion() {
    let text = format!("{HOST}[steps.one]\nplugin = \"comand\"\nrun = \"true\"\n");
    assert_eq!(
        single_error(&text),
        error(
            "5:10",
            "unknown plugin `comand`",
            "did you mean `command`?",
            Some(&plugin_help())
        )
    );
}

#[test]
fn a_step_without_plugin_is_named_after_its_plugin() {
    let text = format!("{HOST}[steps.fille]\npath = \"/x\"\n");
    assert_eq!(
        single_error(&text),
        error(
            "4:8",
            "step `fille` names no plugin, and there is no plugin called `fille`",
            "did you mean `file`?",
            Some(&plugin_help())
        )
    );
    // And a step named after a plugin needs no `plugin` key.
    let valid = TempPlaybook::new(&format!(
        "{HOST}[steps.file]\npath = \"/x\"\nline = \"y\"\n"
    ));
    let playbook = valid.load().expect("valid");
    assert_eq!(playbook.steps[0].plugin, "file");
}

#[test]
fn unknown_parameter_with_a_suggestion() {
    let text = format!("{HOST}[steps.f]\nplugin = \"file\"\npth = \"/tmp/x\"\ncontent = \"x\"\n");
    assert_eq!(
        errors_of(&text),
        vec![
            error(
                "4:8",
                "step is missing the required parameter `path`",
                "",
                Some("path: Path on the host")
            ),
            error(
                "6:1",
                "unknown parameter `pth` for plugin `file`",
                "did you mean `path`?",
                Some("`graphrun plugins file` lists its parameters")
            ),
        ]
    );
}

#[test]
fn mistyped_parameter() {
    let text = format!("{HOST}[steps.c]\nplugin = \"command\"\nrun = \"true\"\nchanged = \"no\"\n");
    assert_eq!(
        single_error(&text),
        error(
            "7:11",
            "parameter `changed` must be true or false, found a string",
            "",
            Some("false for a read-only check: never counts as a change, and `plan` runs it")
        )
    );
}

#[test]
fn missing_required_parameter() {
    let text = format!("{HOST}[steps.c]\nplugin = \"command\"\ncreates = \"/x\"\n");
    assert_eq!(
        single_error(&text),
        error(
            "4:8",
            "step is missing the required parameter `run`",
            "",
            Some("run: A string run by `sh -c`, or a list of words run as an argv")
        )
    );
}

#[test]
fn plugin_semantic_error_points_at_the_parameter() {
    let text = format!(
        "{HOST}[steps.f]\nplugin = \"file\"\npath = \"/tmp/x\"\nline = \"a\"\ncontent = \"b\"\n"
    );
    assert_eq!(
        single_error(&text),
        error(
            "7:1",
            "plugin `file`: `content` and `line` cannot be used together: choose one",
            "",
            Some("`graphrun plugins file` documents every parameter")
        )
    );
}

#[test]
fn plugin_semantic_error_of_the_command_plugin() {
    let text = format!(
        "{HOST}[steps.c]\nplugin = \"command\"\nrun = \"true\"\nenv = {{ \"A-B\" = \"1\" }}\n"
    );
    assert_eq!(
        single_error(&text),
        error(
            "7:1",
            "plugin `command`: `A-B` is not a valid variable name",
            "",
            Some("`graphrun plugins command` documents every parameter")
        )
    );
}

const TWO_STEPS: &str = "[steps.install]\nplugin = \"command\"\nrun = \"true\"\n\n[steps.start]\nplugin = \"command\"\nrun = \"true\"\n";

#[test]
fn unknown_need_with_a_suggestion() {
    let text = format!("{HOST}{TWO_STEPS}needs = [\"instal\"]\n");
    assert_eq!(
        single_error(&text),
        error(
            "11:10",
            "unknown step `instal` in `needs`",
            "did you mean `install`?",
            Some("steps in this playbook: install, start")
        )
    );
}

#[test]
fn a_step_needing_itself() {
    let text = format!("{HOST}{TWO_STEPS}needs = [\"install\", \"start\"]\n");
    assert_eq!(
        single_error(&text),
        error(
            "11:21",
            "step `start` needs itself",
            "",
            Some("remove it from `needs`")
        )
    );
}

#[test]
fn a_cycle_is_printed_in_full() {
    let text = format!(
        "{HOST}[steps.a]\nplugin = \"command\"\nrun = \"true\"\nneeds = [\"b\"]\n\n\
         [steps.b]\nplugin = \"command\"\nrun = \"true\"\nneeds = [\"a\"]\n"
    );
    assert_eq!(
        single_error(&text),
        error(
            "7:10",
            "steps depend on each other in a cycle: a → b → a",
            "this need is part of the cycle",
            Some("remove one of these needs")
        )
    );
}

#[test]
fn a_longer_cycle_is_printed_in_full() {
    let text = format!(
        "{HOST}[steps.a]\nplugin = \"command\"\nrun = \"true\"\nneeds = \"c\"\n\n\
         [steps.b]\nplugin = \"command\"\nrun = \"true\"\nneeds = [\"a\"]\n\n\
         [steps.c]\nplugin = \"command\"\nrun = \"true\"\nneeds = [\"b\"]\n"
    );
    let found = single_error(&text);
    assert_eq!(
        found.message,
        "steps depend on each other in a cycle: a → c → b → a"
    );
    assert_eq!(found.position.as_deref(), Some("playbook.toml:7:9"));
}

#[test]
fn unknown_host_or_group_in_on() {
    let text = "[hosts.web]\naddress = \"10.0.0.1\"\n\n[steps.s]\nplugin = \"command\"\nrun = \"true\"\non = [\"webb\"]\n";
    assert_eq!(
        single_error(text),
        error(
            "7:7",
            "unknown host or group `webb`",
            "did you mean `web`?",
            Some("`on` takes host names, group names, or \"all\"")
        )
    );
}

#[test]
fn unknown_host_in_a_group() {
    let text = "[hosts.web]\naddress = \"10.0.0.1\"\n\n[groups.front]\nhosts = [\"webb\"]\n";
    assert_eq!(
        single_error(text),
        error(
            "5:10",
            "unknown host `webb` in group `front`",
            "did you mean `web`?",
            None
        )
    );
}

#[test]
fn wait_host_with_a_need_missing_on_that_host() {
    let text = "[hosts.a]\naddress = \"10.0.0.1\"\n\n[hosts.b]\naddress = \"10.0.0.2\"\n\n\
                [steps.base]\nplugin = \"command\"\nrun = \"true\"\non = [\"a\"]\n\n\
                [steps.next]\nplugin = \"command\"\nrun = \"true\"\nneeds = [\"base\"]\n";
    assert_eq!(
        single_error(text),
        error(
            "15:10",
            "step `next` runs on `b`, where `base` does not run",
            "waited for on the same host",
            Some("set wait = \"all\" to wait for `base` on every host it runs on, or run `base` on `b` too")
        )
    );
    // wait = "all" makes the same playbook valid.
    let fixed = TempPlaybook::new(&format!("{text}wait = \"all\"\n"));
    let playbook = fixed.load().expect("valid with wait = all");
    assert_eq!(playbook.step("next").unwrap().wait, Wait::All);
}

#[test]
fn unknown_wait() {
    let text = format!("{HOST}[steps.s]\nplugin = \"command\"\nrun = \"true\"\nwait = \"any\"\n");
    assert_eq!(
        single_error(&text),
        error(
            "7:8",
            "unknown wait `any`",
            "",
            Some("\"host\": after each need on the same host; \"all\": after each need on every host")
        )
    );
}

const TEMPLATE_HELP: &str = "templates can read vars.*, host.*, hosts.NAME.*, groups.NAME, facts.* and steps.ID.outputs.* of steps this one needs";

#[test]
fn template_syntax_error() {
    let text = format!("{HOST}[steps.s]\nplugin = \"command\"\nrun = \"echo {{{{ vars.x \"\n");
    let found = single_error(&text);
    assert_eq!(found.position.as_deref(), Some("playbook.toml:6:7"));
    assert_eq!(
        found.message,
        "template error: syntax error: unexpected end of input, expected end of variable block"
    );
    assert_eq!(
        found.help.as_deref(),
        Some("templates use minijinja syntax: {{ vars.name }}")
    );
}

#[test]
fn template_reading_an_unknown_variable() {
    let text = format!(
        "[vars]\nroot = \"/srv\"\n\n{HOST}[steps.s]\nplugin = \"command\"\nrun = \"ls {{{{ vars.root }}}} {{{{ vars.nope }}}}\"\n"
    );
    assert_eq!(
        single_error(&text),
        error(
            "9:7",
            "template reads `vars.nope`: no variable `nope` in [vars]",
            "",
            Some(TEMPLATE_HELP)
        )
    );
}

#[test]
fn template_with_an_unknown_root_name() {
    let text = format!("{HOST}[steps.s]\nplugin = \"command\"\nrun = \"echo {{{{ foo.bar }}}}\"\n");
    assert_eq!(
        single_error(&text),
        error(
            "6:7",
            "template reads `foo.bar`: unknown name `foo` (one of vars, host, hosts, groups, facts, steps)",
            "",
            Some(TEMPLATE_HELP)
        )
    );
}

#[test]
fn template_reading_a_step_that_is_not_a_need() {
    let text = format!(
        "{HOST}[steps.first]\nplugin = \"command\"\nrun = \"true\"\n\n\
         [steps.second]\nplugin = \"command\"\nrun = \"echo {{{{ steps.first.outputs.x }}}}\"\n"
    );
    assert_eq!(
        single_error(&text),
        error(
            "10:7",
            "template reads `steps.first.outputs.x`: step `first` is not among this step's needs, so its outputs may not exist yet",
            "",
            Some(TEMPLATE_HELP)
        )
    );
}

#[test]
fn template_in_when_reading_an_unknown_host_field() {
    let text = format!(
        "{HOST}[steps.s]\nplugin = \"command\"\nrun = \"true\"\nwhen = \"{{{{ host.nmae == 'a' }}}}\"\n"
    );
    assert_eq!(
        single_error(&text),
        error(
            "7:8",
            "template reads `host.nmae`: hosts have no `nmae` (name, address, groups, vars)",
            "did you mean `host.name`?",
            Some(TEMPLATE_HELP)
        )
    );
}

#[test]
fn bad_duration() {
    let text =
        format!("{HOST}[steps.s]\nplugin = \"command\"\nrun = \"true\"\ntimeout = \"5 parsecs\"\n");
    assert_eq!(
        single_error(&text),
        error(
            "7:11",
            "`timeout`: `5 parsecs` is not a duration (unknown time unit \"parsecs\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations))",
            "",
            Some("write durations such as \"30s\", \"5m\" or \"1h 30m\"")
        )
    );
}

#[test]
fn retries_out_of_range() {
    let text = format!("{HOST}[steps.s]\nplugin = \"command\"\nrun = \"true\"\nretries = 1000\n");
    assert_eq!(
        single_error(&text),
        error(
            "7:11",
            "`retries` must be an integer from 0 to 100, found 1000",
            "",
            None
        )
    );
}

#[test]
fn exclusive_is_a_boolean_step_key() {
    let text = format!("{HOST}[steps.s]\nplugin = \"command\"\nrun = \"true\"\nexclusive = 1\n");
    assert_eq!(
        single_error(&text),
        error(
            "7:13",
            "`exclusive` must be true or false, found an integer",
            "",
            None
        )
    );
    let file = TempPlaybook::new(&text.replace("exclusive = 1", "exclusive = true"));
    assert!(file.load().expect("valid").steps[0].exclusive);
}

#[test]
fn bad_host_key_checking() {
    let text = format!("[defaults]\nhost_key_checking = \"yes\"\n\n{HOST}");
    assert_eq!(
        single_error(&text),
        error(
            "2:21",
            "unknown host_key_checking `yes`",
            "",
            Some("use \"strict\", \"accept-new\" or \"off\"")
        )
    );
}

#[test]
fn secret_from_an_unset_environment_variable() {
    let text = format!("[vars]\ntoken = {{ env = \"GR_TEST_SURELY_UNSET_VAR\" }}\n\n{HOST}");
    assert_eq!(
        single_error(&text),
        error(
            "2:17",
            "secret: environment variable `GR_TEST_SURELY_UNSET_VAR` is not set",
            "",
            Some("export GR_TEST_SURELY_UNSET_VAR=… before running graphrun")
        )
    );
}

#[test]
fn secrets_are_resolved_and_recorded_for_redaction() {
    std::env::set_var("GR_TEST_VALIDATION_SECRET", "hunter2-from-env");
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "secret.txt", "hunter3-from-file\n");
    let path = write_file(
        dir.path(),
        "playbook.toml",
        &format!(
            "[vars]\ntoken = {{ env = \"GR_TEST_VALIDATION_SECRET\" }}\nkey = {{ file = \"secret.txt\" }}\nplain = \"x\"\n\n{HOST}"
        ),
    );
    let playbook =
        graphrun::playbook::load(&path, None, &mut Registry::builtin()).expect("valid playbook");
    assert_eq!(playbook.vars["token"], "hunter2-from-env");
    assert_eq!(playbook.vars["key"], "hunter3-from-file");
    assert_eq!(playbook.vars["plain"], "x");
    assert_eq!(
        playbook.secrets,
        vec![
            "hunter2-from-env".to_string(),
            "hunter3-from-file".to_string()
        ]
    );
}

#[test]
fn duplicate_host_between_playbook_and_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = write_file(dir.path(), "inventory.toml", HOST);
    let path = write_file(
        dir.path(),
        "playbook.toml",
        "[hosts.a]\naddress = \"10.0.0.9\"\n",
    );
    let diagnostics = graphrun::playbook::load(&path, Some(&inventory), &mut Registry::builtin())
        .expect_err("a host defined twice");
    assert_eq!(
        seen(dir.path(), &diagnostics),
        vec![error(
            "1:8",
            "host `a` is defined twice",
            "",
            Some("a host is defined once, in the playbook or in the inventory")
        )]
    );
}

#[test]
fn an_inventory_may_hold_only_inventory_tables() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = write_file(
        dir.path(),
        "inventory.toml",
        &format!("{HOST}[vars]\nx = 1\n"),
    );
    let path = write_file(
        dir.path(),
        "playbook.toml",
        "[steps.x]\nplugin = \"command\"\nrun = \"true\"\n",
    );
    let diagnostics =
        graphrun::playbook::load(&path, Some(&inventory), &mut Registry::builtin()).unwrap_err();
    let found = seen(dir.path(), &diagnostics);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].position.as_deref(), Some("inventory.toml:4:2"));
    assert_eq!(found[0].message, "unknown table `vars`");
    assert_eq!(
        found[0].help.as_deref(),
        Some("allowed here: defaults, hosts, groups")
    );
}

#[test]
fn every_error_of_a_file_is_reported() {
    let text = "[defaults]\nusr = \"root\"\n\n\
                [hosts.a]\naddress = \"10.0.0.1\"\n\n\
                [step.typo]\n\n\
                [steps.one]\nplugin = \"comand\"\nrun = \"true\"\n\n\
                [steps.two]\nplugin = \"file\"\npth = \"/x\"\nline = \"y\"\n\n\
                [steps.three]\nplugin = \"command\"\nrun = \"true\"\nchanged = \"no\"\nretries = -1\n";
    let found = errors_of(text);
    let summary: Vec<(&str, &str)> = found
        .iter()
        .map(|s| (s.position.as_deref().unwrap(), s.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("playbook.toml:2:1", "unknown key `usr`"),
            ("playbook.toml:7:2", "unknown table `step`"),
            ("playbook.toml:10:10", "unknown plugin `comand`"),
            (
                "playbook.toml:13:8",
                "step is missing the required parameter `path`"
            ),
            (
                "playbook.toml:15:1",
                "unknown parameter `pth` for plugin `file`"
            ),
            (
                "playbook.toml:21:11",
                "parameter `changed` must be true or false, found a string"
            ),
            (
                "playbook.toml:22:11",
                "`retries` must be an integer from 0 to 100, found -1"
            ),
        ],
        "{found:#?}"
    );
}

/// A host table written after the steps must not hide the steps' own errors.
#[test]
fn errors_before_a_step_in_file_order_do_not_hide_its_plugin_errors() {
    let text = "[steps.f]\nplugin = \"file\"\npath = \"/tmp/x\"\nline = \"a\"\ncontent = \"b\"\n\n\
                [hosts.a]\naddress = \"10.0.0.1\"\nusr = \"root\"\n";
    let found = errors_of(text);
    let summary: Vec<(&str, &str)> = found
        .iter()
        .map(|s| (s.position.as_deref().unwrap(), s.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "playbook.toml:4:1",
                "plugin `file`: `content` and `line` cannot be used together: choose one"
            ),
            ("playbook.toml:9:1", "unknown key `usr`"),
        ],
        "{found:#?}"
    );
}

#[test]
fn a_valid_playbook_with_an_inventory_file() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = write_file(
        dir.path(),
        "inventory.toml",
        "[defaults]\nuser = \"deploy\"\nport = 2222\nhost_key_checking = \"strict\"\n\n\
         [hosts.db1]\naddress = \"10.0.0.5\"\ngroups = [\"db\"]\nvars = { role = \"primary\" }\n\n\
         [groups.web]\nhosts = [\"web1\"]\n",
    );
    let path = write_file(
        dir.path(),
        "playbook.toml",
        "[vars]\nroot = \"/srv\"\n\n\
         [defaults]\nport = 2200\n\n\
         [hosts.web1]\naddress = \"10.0.0.1\"\nuser = \"admin\"\n\n\
         [hosts.local]\nconnection = \"local\"\n\n\
         [steps.ping]\nplugin = \"command\"\nrun = \"true\"\non = [\"web\", \"db\"]\nretries = 2\nretry_delay = \"250ms\"\ntimeout = 30\n\n\
         [steps.conf]\nplugin = \"file\"\nneeds = \"ping\"\nwait = \"all\"\non = \"local\"\npath = \"{{ vars.root }}/x\"\ncontent = \"{{ hosts.db1.vars.role }}\"\n",
    );
    let playbook = graphrun::playbook::load(&path, Some(&inventory), &mut Registry::builtin())
        .unwrap_or_else(|d| panic!("{}", d.iter().map(|d| d.to_string()).collect::<String>()));
    let names: Vec<&str> = playbook.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["db1", "web1", "local"]);
    let db1 = playbook.host("db1").unwrap();
    assert_eq!(db1.address, "10.0.0.5");
    assert_eq!(db1.groups, ["db"]);
    assert_eq!(db1.vars["role"], "primary");
    assert_eq!(db1.connection.kind, ConnectionKind::Ssh);
    assert_eq!(db1.connection.user.as_deref(), Some("deploy"));
    assert_eq!(
        db1.connection.port,
        Some(2200),
        "the playbook's defaults win"
    );
    assert_eq!(db1.connection.host_key_checking, HostKeyChecking::Strict);
    let web1 = playbook.host("web1").unwrap();
    assert_eq!(web1.groups, ["web"], "from [groups.web] in the inventory");
    assert_eq!(web1.connection.user.as_deref(), Some("admin"));
    assert_eq!(web1.connection.port, Some(2200));
    let local = playbook.host("local").unwrap();
    assert_eq!(local.address, "localhost");
    assert_eq!(local.connection.kind, ConnectionKind::Local);
    assert_eq!(
        playbook.groups,
        [
            ("db".to_string(), vec!["db1".to_string()]),
            ("web".to_string(), vec!["web1".to_string()]),
        ]
        .into_iter()
        .collect()
    );
    let ping = playbook.step("ping").unwrap();
    assert_eq!(ping.hosts, ["db1", "web1"], "inventory order");
    assert_eq!(ping.retries, 2);
    assert_eq!(ping.retry_delay, std::time::Duration::from_millis(250));
    assert_eq!(ping.timeout, Some(std::time::Duration::from_secs(30)));
    assert_eq!(ping.wait, Wait::Host);
    assert_eq!(
        serde_json::Value::Object(ping.params.0.clone()),
        serde_json::json!({"run": "true", "changed": true}),
        "defaults applied"
    );
    let conf = playbook.step("conf").unwrap();
    assert_eq!(conf.hosts, ["local"]);
    assert_eq!(conf.needs, ["ping"]);
    assert_eq!(conf.wait, Wait::All);
    assert_eq!(
        conf.params.0["path"], "{{ vars.root }}/x",
        "templates stay unrendered until run time"
    );
    assert!(playbook.secrets.is_empty());
}
