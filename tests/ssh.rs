//! Real SSH against the lab's Debian hosts (`tests/lab/lab.sh up 3`): pipelining, idempotence,
//! a host dying mid-run and resuming, a partition, a changed host key, sudo without a password,
//! and shell injection. Skipped unless GRAPHRUN_LAB_INVENTORY is set; CI=true makes a missing lab
//! an error. These tests stop, cut off and re-key lab hosts, so they run one at a time.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static LAB: Mutex<()> = Mutex::new(());

/// The lab, locked for this test, and a folder with an inventory whose known_hosts is private
/// to the test (so key changes in one test do not leak into another).
pub(crate) struct Lab {
    _guard: MutexGuard<'static, ()>,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) inventory: PathBuf,
    lab_dir: PathBuf,
}

pub(crate) fn lab() -> Option<Lab> {
    let Ok(inventory) = std::env::var("GRAPHRUN_LAB_INVENTORY") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must start the lab (tests/lab/lab.sh up 3)"
        );
        eprintln!("skipped: no lab (run tests/lab/lab.sh up 3 and export GRAPHRUN_LAB_INVENTORY)");
        return None;
    };
    let guard = LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let lab_dir = PathBuf::from(
        std::env::var("GRAPHRUN_LAB_DIR").unwrap_or_else(|_| "/var/tmp/graphrun-lab".into()),
    );
    for host in ["h1", "h2", "h3"] {
        lab_script(&["start", host]);
        lab_script(&["heal", host]);
    }
    let dir = tempfile::tempdir().unwrap();
    let known_hosts = dir.path().join("known_hosts");
    let text = only_test_hosts(&std::fs::read_to_string(&inventory).unwrap()).replace(
        &format!(
            "known_hosts_file = \"{}\"",
            lab_dir.join("known_hosts").display()
        ),
        &format!("known_hosts_file = \"{}\"", known_hosts.display()),
    );
    assert!(
        text.contains(&known_hosts.display().to_string()),
        "the lab inventory names its known_hosts file"
    );
    let inventory = dir.path().join("inventory.toml");
    std::fs::write(&inventory, text).unwrap();
    Some(Lab {
        _guard: guard,
        dir,
        inventory,
        lab_dir,
    })
}

/// The inventory without hosts other than h1..h3: these tests address every host of it, and the
/// lab may hold more (h4 carries the Kubernetes control plane, `tests/k8s/cluster.sh`).
fn only_test_hosts(inventory: &str) -> String {
    let mut table: toml::Table = inventory.parse().expect("the lab inventory is TOML");
    if let Some(hosts) = table.get_mut("hosts").and_then(toml::Value::as_table_mut) {
        hosts.retain(|name, _| ["h1", "h2", "h3"].contains(&name));
    }
    toml::to_string(&table).expect("serialize the inventory")
}

/// The lab host's address: `GRAPHRUN_LAB_NET` (from `lab.sh env`) is its subnet's first three
/// octets, so tests run against any lab instance (`GRAPHRUN_LAB_ID`).
pub(crate) fn lab_ip(host: &str) -> String {
    let net = std::env::var("GRAPHRUN_LAB_NET").unwrap_or_else(|_| "10.77.0".into());
    let n: u32 = host[1..].parse().expect("lab hosts are named hN");
    format!("{net}.{}", 10 + n)
}

pub(crate) fn lab_script(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lab/lab.sh");
    let output = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "lab.sh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Lab {
    pub(crate) fn playbook(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub(crate) fn graphrun(&self, args: &[&str], playbook: &Path) -> Output {
        self.graphrun_with_env(args, playbook, &[])
    }

    /// `graphrun ARGS PLAYBOOK --inventory …` with extra environment variables (secrets).
    pub(crate) fn graphrun_with_env(
        &self,
        args: &[&str],
        playbook: &Path,
        env: &[(&str, &str)],
    ) -> Output {
        self.command(args, playbook)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// `graphrun ARGS PLAYBOOK --inventory …`, to spawn (and signal) or run.
    pub(crate) fn command(&self, args: &[&str], playbook: &Path) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_graphrun"));
        command
            .args(args)
            .arg(playbook)
            .arg("--inventory")
            .arg(&self.inventory);
        command
    }

    /// The test's own folder (playbooks, known_hosts, state).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The test's copy of the lab inventory (tests may rewrite it).
    pub(crate) fn inventory(&self) -> &Path {
        &self.inventory
    }

    /// The lab's state folder (its key, `deploy-password`).
    pub(crate) fn lab_dir(&self) -> &Path {
        &self.lab_dir
    }

    /// Runs a command on a lab host as root, outside graphrun.
    pub(crate) fn ssh(&self, host: &str, command: &str) -> String {
        let key = self.lab_dir.join("id_ed25519");
        let output = crate::support::ssh_as_root(&key, &lab_ip(host), command);
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

/// The status of every node from `--output json` lines.
pub(crate) fn statuses(output: &Output) -> std::collections::BTreeMap<String, String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|event| event["event"] == "node_finished")
        .map(|event| {
            (
                event["node"].as_str().unwrap().to_string(),
                event["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub(crate) fn run_id() -> String {
    format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[test]
fn hosts_pipeline_independently_and_a_second_apply_changes_nothing() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    // h1's first step is slow; h2 and h3 must get through all their steps meanwhile.
    let playbook = lab.playbook(
        "pipeline.toml",
        &format!(
            r#"
[steps.start]
plugin = "command"
run = "[ $(hostname) = h1 ] && sleep 2; mkdir -p /tmp/gr-{id}"
creates = "/tmp/gr-{id}/done"

[steps.write]
plugin = "file"
needs = ["start"]
path = "/tmp/gr-{id}/conf"
content = "host={{{{ host.name }}}}\n"
mode = "0640"

[steps.finish]
plugin = "command"
needs = ["write"]
run = ["sh", "-c", "date +%s.%N > /tmp/gr-{id}/done"]
creates = "/tmp/gr-{id}/done"
"#
        ),
    );
    let first = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        statuses(&first).values().all(|s| s == "changed"),
        "{:?}",
        statuses(&first)
    );
    let finished = |host: &str| {
        lab.ssh(host, &format!("cat /tmp/gr-{id}/done"))
            .trim()
            .parse::<f64>()
            .unwrap()
    };
    assert!(finished("h2") + 1.0 < finished("h1"), "h2 waited for h1");
    assert!(finished("h3") + 1.0 < finished("h1"), "h3 waited for h1");
    assert_eq!(
        lab.ssh("h2", &format!("stat -c '%a %s' /tmp/gr-{id}/conf"))
            .trim(),
        "640 8"
    );
    let second = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_eq!(second.status.code(), Some(0));
    let second = statuses(&second);
    assert_eq!(second.len(), 9);
    assert!(second.values().all(|s| s == "ok"), "{second:?}");
}

#[test]
fn a_host_killed_mid_run_fails_alone_and_the_next_apply_resumes() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    let playbook = lab.playbook(
        "kill.toml",
        &format!(
            r#"
[steps.slow]
plugin = "command"
run = "sleep 3; touch /tmp/gr-{id}-slow"
creates = "/tmp/gr-{id}-slow"

[steps.after]
plugin = "command"
needs = ["slow"]
run = "touch /tmp/gr-{id}-after"
creates = "/tmp/gr-{id}-after"
"#
        ),
    );
    let run = std::thread::scope(|scope| {
        let run = scope.spawn(|| lab.graphrun(&["apply", "--output", "json"], &playbook));
        std::thread::sleep(Duration::from_millis(1500));
        lab_script(&["stop", "h2"]);
        run.join().unwrap()
    });
    assert_eq!(run.status.code(), Some(1));
    let nodes = statuses(&run);
    assert_eq!(nodes["slow@h2"], "unreachable", "{nodes:?}");
    assert_eq!(nodes["after@h2"], "blocked");
    for host in ["h1", "h3"] {
        assert_eq!(nodes[&format!("slow@{host}")], "changed");
        assert_eq!(nodes[&format!("after@{host}")], "changed");
    }
    let recap: serde_json::Value = String::from_utf8_lossy(&run.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "run_finished")
        .unwrap();
    assert_eq!(recap["recap"]["h2"]["unreachable"], 1);

    lab_script(&["start", "h2"]);
    let resumed = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let nodes = statuses(&resumed);
    for host in ["h1", "h3"] {
        assert_eq!(nodes[&format!("slow@{host}")], "done", "{nodes:?}");
        assert_eq!(nodes[&format!("after@{host}")], "done");
    }
    assert_eq!(nodes["slow@h2"], "changed");
    assert_eq!(nodes["after@h2"], "changed");
}

#[test]
fn a_partition_mid_step_ends_in_a_timeout_not_a_hang() {
    let Some(lab) = lab() else { return };
    let playbook = lab.playbook(
        "partition.toml",
        r#"
[steps.long]
plugin = "command"
on = "h3"
run = "sleep 30"
timeout = "4s"
"#,
    );
    let started = Instant::now();
    let run = std::thread::scope(|scope| {
        let run = scope.spawn(|| lab.graphrun(&["apply", "--output", "json"], &playbook));
        std::thread::sleep(Duration::from_millis(1500));
        lab_script(&["partition", "h3"]);
        run.join().unwrap()
    });
    lab_script(&["heal", "h3"]);
    assert_eq!(run.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("timed out after 4s"), "{stdout}");
    // Generous: the point is that it ends (ssh alone would wait for TCP to give up).
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_changed_host_key_is_refused_with_a_clear_message() {
    let Some(lab) = lab() else { return };
    let playbook = lab.playbook(
        "key.toml",
        "[steps.probe]\nplugin = \"command\"\non = \"h1\"\nrun = \"true\"\n",
    );
    assert_eq!(
        lab.graphrun(&["apply"], &playbook).status.code(),
        Some(0),
        "first contact records the key"
    );
    lab_script(&["rekey", "h1"]);
    let refused = lab.graphrun(&["apply", "--fresh"], &playbook);
    assert_eq!(refused.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&refused.stdout);
    let h1 = lab_ip("h1");
    assert!(
        stdout.contains(&format!(
            "host key of {h1} has CHANGED; refusing to connect"
        )),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("ssh-keygen -R {h1}")), "{stdout}");
}

#[test]
fn sudo_without_a_password_fails_at_once_and_with_one_it_works() {
    let Some(lab) = lab() else { return };
    let text = std::fs::read_to_string(&lab.inventory)
        .unwrap()
        .replace("user = \"root\"", "user = \"deploy\"\nbecome = true");
    std::fs::write(&lab.inventory, &text).unwrap();
    // An upload as well: the sudo password goes first on its session's input, the file after.
    let id = run_id();
    let blob: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(lab.dir.path().join("blob.bin"), &blob).unwrap();
    let target = format!("/root/gr-{id}.bin");
    let playbook = lab.playbook(
        "sudo.toml",
        &format!(
            "[steps.whoami]\nplugin = \"command\"\non = \"h1\"\nrun = \"test $(id -u) = 0\"\nchanged = false\n\n\
             [steps.upload]\nplugin = \"file\"\non = \"h1\"\npath = \"{target}\"\nsource = \"blob.bin\"\n"
        ),
    );
    let started = Instant::now();
    let refused = lab.graphrun(&["apply"], &playbook);
    assert_eq!(refused.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&refused.stdout);
    assert!(
        stdout.contains("sudo on h1 needs a password: set become_password"),
        "{stdout}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "no hang");

    let password = std::fs::read_to_string(lab.lab_dir.join("deploy-password"))
        .unwrap()
        .trim()
        .to_string();
    std::fs::write(
        &lab.inventory,
        text.replace(
            "become = true",
            "become = true\nbecome_password = { env = \"GR_LAB_SUDO\" }",
        ),
    )
    .unwrap();
    let accepted = lab.graphrun_with_env(
        &["apply", "--fresh", "--output", "json"],
        &playbook,
        &[("GR_LAB_SUDO", &password)],
    );
    assert_eq!(
        accepted.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&accepted.stdout)
    );
    for bytes in [&accepted.stdout, &accepted.stderr] {
        assert!(
            !String::from_utf8_lossy(bytes).contains(&password),
            "the sudo password leaked"
        );
    }
    let arrived = lab.ssh("h1", &format!("stat -c '%s %U' {target}; rm -f {target}"));
    assert_eq!(arrived, format!("{} root\n", blob.len()));
}

#[test]
fn injection_attempts_reach_the_host_literally() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    let playbook = lab.playbook(
        "inject.toml",
        &format!(
            r#"
[steps.line]
plugin = "file"
on = "h1"
path = "/tmp/gr-{id}-lines"
line = "'; touch /tmp/gr-{id}-pwned1 #"

[steps.subst]
plugin = "file"
on = "h1"
needs = ["line"]
path = "/tmp/gr-{id}-lines"
line = "$(touch /tmp/gr-{id}-pwned2) `touch /tmp/gr-{id}-pwned3`"

[steps.argv]
plugin = "command"
on = "h1"
needs = ["subst"]
run = ["sh", "-c", "printf '%s\n' \"$1\" >> /tmp/gr-{id}-lines", "sh", "x'; touch /tmp/gr-{id}-pwned4; '$(id)"]
"#
        ),
    );
    let run = lab.graphrun(&["apply"], &playbook);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    assert_eq!(
        lab.ssh("h1", &format!("cat /tmp/gr-{id}-lines")),
        format!("'; touch /tmp/gr-{id}-pwned1 #\n$(touch /tmp/gr-{id}-pwned2) `touch /tmp/gr-{id}-pwned3`\nx'; touch /tmp/gr-{id}-pwned4; '$(id)\n")
    );
    assert_eq!(
        lab.ssh("h1", &format!("ls /tmp | grep -c 'gr-{id}-pwned' || true"))
            .trim(),
        "0"
    );
}

#[test]
fn many_first_connections_record_well_formed_host_keys() {
    let Some(lab) = lab() else { return };
    let playbook = lab.playbook(
        "keys.toml",
        "[steps.probe]\nplugin = \"command\"\nrun = \"true\"\nchanged = false\n",
    );
    assert_eq!(lab.graphrun(&["apply"], &playbook).status.code(), Some(0));
    let known_hosts = lab.dir.path().join("known_hosts");
    let known = std::fs::read_to_string(&known_hosts).unwrap();
    assert_eq!(known.lines().count(), 3, "{known}");
    assert!(known.lines().all(|l| l.split(' ').count() == 3), "{known}");
    for address in ["h1", "h2", "h3"].map(lab_ip) {
        // Names may be hashed (Debian's default HashKnownHosts): ask ssh-keygen.
        let found = Command::new("ssh-keygen")
            .args(["-F", &address, "-f"])
            .arg(&known_hosts)
            .output()
            .unwrap();
        assert!(found.status.success(), "{address} is not in {known}");
    }
}

#[test]
fn a_jump_host_carries_the_connection() {
    let Some(lab) = lab() else { return };
    let text = std::fs::read_to_string(&lab.inventory).unwrap().replace(
        "[hosts.h2]\n",
        &format!("[hosts.h2]\njump = \"root@{}:22\"\n", lab_ip("h1")),
    );
    std::fs::write(&lab.inventory, text).unwrap();
    let id = run_id();
    let playbook = lab.playbook(
        "jump.toml",
        &format!("[steps.client]\nplugin = \"command\"\non = \"h2\"\nrun = \"echo $SSH_CLIENT > /tmp/gr-{id}-client\"\n"),
    );
    let run = lab.graphrun(&["apply"], &playbook);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let client = lab.ssh("h2", &format!("cat /tmp/gr-{id}-client"));
    assert!(
        client.starts_with(&format!("{} ", lab_ip("h1"))),
        "h2 was reached from {client:?}, not through h1"
    );
}

#[test]
fn files_travel_both_ways_checked_and_private() {
    let Some(lab) = lab() else { return };
    let id = run_id();
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(lab.dir.path().join("blob.bin"), &blob).unwrap();
    let sha = {
        use std::io::Write;
        let mut child = Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&blob).unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()[..64].to_string()
    };
    let copy = lab.dir.path().join("copy-of-hostname");
    let playbook = lab.playbook(
        "files.toml",
        &format!(
            r#"
[hosts.control]
connection = "local"

[steps.binary]
plugin = "file"
on = "h1"
path = "/tmp/gr-{id}/bin/tool"
source = "blob.bin"
sha256 = "{sha}"
mode = "0755"

[steps.get]
plugin = "fetch"
on = "h1"
path = "/etc/hostname"

[steps.use]
plugin = "command"
on = "control"
needs = ["get"]
wait = "all"
run = ["cp", "{{{{ steps.get.outputs.local_path }}}}", "{copy}"]
"#,
            copy = copy.display()
        ),
    );
    let run = lab.graphrun(&["apply"], &playbook);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stdout)
    );
    assert_eq!(
        lab.ssh(
            "h1",
            &format!("stat -c %a /tmp/gr-{id}/bin/tool; sha256sum < /tmp/gr-{id}/bin/tool")
        ),
        format!("755\n{sha}  -\n")
    );
    let fetched = lab.dir.path().join(".graphrun/files/fetched/h1/hostname");
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), "h1\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&fetched).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), "h1\n");

    let tampered = playbook.with_file_name("tampered.toml");
    std::fs::write(
        &tampered,
        std::fs::read_to_string(&playbook)
            .unwrap()
            .replace(&sha, &"0".repeat(64)),
    )
    .unwrap();
    let refused = lab.graphrun(&["apply", "--only", "binary"], &tampered);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stdout).contains(&format!(
        "expected {}: refusing to upload it",
        "0".repeat(64)
    )));
}

#[test]
fn a_custom_plugin_library_runs_on_real_hosts_like_a_builtin() {
    let Some(lab) = lab() else { return };
    let library = crate::dynamic_plugins::libraries().path("minio");
    std::fs::write(
        lab.dir.path().join("minio"),
        "#!/bin/sh\necho 'minio version RELEASE.test'\n",
    )
    .unwrap();
    let playbook = lab.playbook(
        "minio.toml",
        &format!(
            r#"
[plugins.minio]
path = "{library}"

[steps.minio]
plugin = "minio"
on = "h3"
version = "RELEASE.test"
binary = "minio"
root_user = "mlops"
root_password = {{ env = "GR_MINIO_PASSWORD" }}
service = "none"
"#,
            library = library.display()
        ),
    );
    let apply = |args: &[&str]| {
        lab.graphrun_with_env(args, &playbook, &[("GR_MINIO_PASSWORD", "s3cr3t-lab-pw")])
    };
    let first = apply(&["apply", "--fresh", "--output", "json"]);
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    assert!(!String::from_utf8_lossy(&first.stdout).contains("s3cr3t-lab-pw"));
    assert_eq!(
        lab.ssh("h3", "id -un minio-user; stat -c '%U %a' /var/lib/minio /etc/default/minio /usr/local/bin/minio; grep -c s3cr3t-lab-pw /etc/default/minio"),
        "minio-user\nminio-user 750\nroot 600\nroot 755\n1\n"
    );
    let second = apply(&["apply", "--output", "json"]);
    assert_eq!(
        statuses(&second)["minio@h3"],
        "ok",
        "a second apply changes nothing"
    );
}
