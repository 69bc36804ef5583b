//! Tests: security on the lab's real hosts. Known secrets (an `{ env }` and a `{ file }` secret,
//! the sudo password) are printed, written and failed with on purpose, and no byte graphrun
//! writes (stdout, stderr, JSON events, run logs, state, plans) holds one; parameters full of
//! shell metacharacters reach the host literally.

use std::path::Path;
use std::process::Output;

use crate::ssh::{lab, run_id};
use crate::support::files_under;

/// Every file under `dir`, at any depth, with its bytes.
fn contents_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn known_secrets_appear_in_no_byte_graphrun_writes() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    let token = format!("tok-{id}-S3cr3t");
    let key = format!("fil-{id}-K3y");
    let password = std::fs::read_to_string(lab.lab_dir().join("deploy-password"))
        .unwrap()
        .trim()
        .to_string();
    std::fs::write(lab.dir().join("secret.txt"), format!("{key}\n")).unwrap();
    let inventory = std::fs::read_to_string(lab.inventory()).unwrap().replace(
        "user = \"root\"",
        &format!(
            "user = \"deploy\"\nbecome = true\nbecome_password = {{ file = \"{}\" }}",
            lab.lab_dir().join("deploy-password").display()
        ),
    );
    std::fs::write(lab.inventory(), inventory).unwrap();
    let playbook = lab.playbook(
        "secrets.toml",
        &format!(
            r#"
[vars]
token = {{ env = "GR_SECRET_TOKEN" }}
key = {{ file = "secret.txt" }}

[steps.echo]
plugin = "command"
on = "h1"
run = "echo {{{{ vars.token | quote }}}}; echo {{{{ vars.key | quote }}}} >&2"

[steps.env]
plugin = "command"
on = "h1"
run = "printenv T"
env = {{ T = "{{{{ vars.token }}}}" }}

[steps.conf]
plugin = "file"
on = "h1"
path = "/tmp/gr-{id}-conf"
content = "token={{{{ vars.token }}}}\nkey={{{{ vars.key }}}}\n"
mode = "0600"

[steps.fails]
plugin = "command"
on = "h1"
needs = ["conf"]
run = "echo {{{{ vars.key | quote }}}}; echo {{{{ vars.token | quote }}}} >&2; exit 3"
"#
        ),
    );
    let env = [("GR_SECRET_TOKEN", token.as_str())];
    let runs: Vec<(String, Output)> = [
        vec!["validate"],
        vec!["graph"],
        vec!["plan"],
        vec!["plan", "--output", "json"],
        vec!["apply"],
        vec!["apply", "--output", "json"],
        vec!["apply", "--fresh", "--output", "json"],
    ]
    .into_iter()
    .map(|args| {
        let output = lab.graphrun_with_env(&args, &playbook, &env);
        (args.join(" "), output)
    })
    .collect();
    // The secrets did their work: the run used them, and redacted them where it showed them.
    assert_eq!(
        lab.ssh("h1", &format!("sudo cat /tmp/gr-{id}-conf")),
        format!("token={token}\nkey={key}\n")
    );
    let (_, last) = runs.last().unwrap();
    assert_eq!(last.status.code(), Some(1), "`fails` fails on purpose");
    assert!(
        contains(&last.stdout, "***"),
        "{}",
        String::from_utf8_lossy(&last.stdout)
    );

    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    for (args, output) in runs {
        outputs.push((format!("stdout of {args}"), output.stdout));
        outputs.push((format!("stderr of {args}"), output.stderr));
    }
    let written = contents_under(&lab.dir().join(".graphrun"));
    assert!(written.iter().any(|(name, _)| name.ends_with("ops.log")));
    assert!(written.iter().any(|(name, _)| name.ends_with("state.json")));
    outputs.extend(written);
    for (what, bytes) in &outputs {
        for secret in [&token, &key, &password] {
            assert!(!contains(bytes, secret), "a secret is in {what}");
        }
    }
}

#[test]
fn parameters_full_of_shell_metacharacters_reach_the_host_literally() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    // Every way into a shell: quotes, substitutions, separators, redirections, globs. No `/`,
    // so it also serves as a folder name; commands it could smuggle in create `*pwned*` files.
    let nasty = format!(
        "x'; touch gr{id}pwned1 #\"$(touch gr{id}pwned2)`touch gr{id}pwned3` & echo >gr{id}pwned4 | \\ * ?"
    );
    let quoted = serde_json::to_string(&nasty).unwrap(); // a TOML basic string as well
    let dir = format!("/tmp/gr-{id}");
    let inside = serde_json::to_string(&format!("{dir}/{nasty}")).unwrap();
    let never = serde_json::to_string(&format!("{dir}/{nasty}-never")).unwrap();
    let playbook = lab.playbook(
        "nasty.toml",
        &format!(
            r#"
[steps.folder]
plugin = "file"
on = "h1"
path = {inside}
directory = true

[steps.content]
plugin = "file"
on = "h1"
needs = ["folder"]
path = "{dir}/content"
content = {quoted}

[steps.line]
plugin = "file"
on = "h1"
needs = ["folder"]
path = "{dir}/lines"
line = {quoted}

[steps.replace]
plugin = "file"
on = "h1"
needs = ["line"]
path = "{dir}/lines"
replace = {{ regex = "^x'", with = "y'; touch gr{id}pwned5 #$(touch gr{id}pwned6)" }}

[steps.argv]
plugin = "command"
on = "h1"
needs = ["folder"]
run = ["sh", "-c", "printf '%s' \"$1\" > {dir}/argv", "sh", {quoted}]
creates = {never}
unless = ["test", "-e", {inside}]

[steps.env]
plugin = "command"
on = "h1"
needs = ["folder"]
run = "printf '%s' \"$V\" > {dir}/env; pwd > {dir}/cwd"
env = {{ V = {quoted} }}
cwd = {inside}

[steps.fetch]
plugin = "fetch"
on = "h1"
needs = ["content"]
path = "{dir}/content"
"#
        ),
    );
    let run = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let statuses = crate::ssh::statuses(&run);
    assert_eq!(
        statuses["argv@h1"], "ok",
        "`unless` found the folder: {statuses:?}"
    );
    let read = |name: &str| lab.ssh("h1", &format!("cat {dir}/{name}"));
    assert_eq!(read("content"), nasty);
    assert_eq!(
        read("lines"),
        format!(
            "y'; touch gr{id}pwned5 #$(touch gr{id}pwned6){}\n",
            &nasty[2..]
        )
    );
    assert_eq!(read("env"), nasty);
    assert_eq!(read("cwd").trim_end(), format!("{dir}/{nasty}"));
    let fetched = lab.dir().join(".graphrun/nasty/fetched/h1/content");
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), nasty);
    let pwned = lab.ssh(
        "h1",
        &format!("find / -xdev -maxdepth 3 -name '*gr{id}pwned*' 2>/dev/null"),
    );
    assert_eq!(pwned, "", "a parameter ran as a command");
}
