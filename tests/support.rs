//! Shared fixtures for the integration tests.

// ---- Helpers for validation, dag, scheduler and cli ----

use std::path::{Path, PathBuf};

/// Writes `text` to `dir/name` (creating folders) and returns the path.
pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folder");
    }
    std::fs::write(&path, text).expect("write file");
    path
}

/// A playbook written as `playbook.toml` in a temporary folder of its own (its state and logs
/// go to that folder's `.graphrun/playbook/`).
pub struct TempPlaybook {
    /// Removed on drop.
    pub dir: tempfile::TempDir,
    /// `dir/playbook.toml`.
    pub path: PathBuf,
}

impl TempPlaybook {
    /// Writes `text` as the playbook.
    pub fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_file(dir.path(), "playbook.toml", text);
        TempPlaybook { dir, path }
    }

    /// Loads it with the built-in plugins.
    pub fn load(
        &self,
    ) -> Result<graphrun::playbook::Playbook, Vec<graphrun::playbook::Diagnostic>> {
        let mut registry = graphrun::plugins::Registry::builtin();
        graphrun::playbook::load(&self.path, None, &mut registry)
    }

    /// `.graphrun/playbook/state.json`.
    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join(".graphrun/playbook/state.json")
    }
}

/// Runs `command` on a lab host as root over SSH with the lab's key, outside graphrun.
pub fn ssh_as_root(key: &Path, address: &str, command: &str) -> std::process::Output {
    std::process::Command::new("ssh")
        .arg("-i")
        .arg(key)
        .args([
            "-F",
            "/dev/null",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
        ])
        .arg(format!("root@{address}"))
        .arg(command)
        .output()
        .expect("run ssh")
}

/// Prints why a test does not run; under CI=true that is a failure instead.
pub fn skip(missing: &str, how: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must provide {missing} ({how})"
    );
    eprintln!("skipped: no {missing} ({how})");
}

/// Every file under `dir`, at any depth (a folder that cannot be read fails the test).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|err| panic!("cannot read {}: {err}", dir.display()));
    for entry in entries {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

// ---- Helpers for tests on the lab's hosts ----

/// The values of the environment variables `names` (exported by `tests/lab/lab.sh env` and
/// `tests/k8s/cluster.sh env`), or `None` once [`skip`] has said which part of the lab
/// (`missing`) is not up and how to bring it up.
pub fn lab_env<const N: usize>(names: [&str; N], missing: &str, how: &str) -> Option<[String; N]> {
    let values: Vec<String> = names
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .collect();
    let values = <[String; N]>::try_from(values).ok();
    if values.is_none() {
        skip(missing, how);
    }
    values
}

/// The lab's inventory, written to `dir/inventory.toml` with a known_hosts file in `dir`: the
/// SSH tests re-key hosts, and no test writes the lab's own known_hosts.
pub fn private_inventory(dir: &Path) -> PathBuf {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("lab.sh env sets {name}"));
    let shared = Path::new(&var("GRAPHRUN_LAB_DIR")).join("known_hosts");
    let text = std::fs::read_to_string(var("GRAPHRUN_LAB_INVENTORY"))
        .expect("the lab's inventory")
        .replace(
            &shared.display().to_string(),
            &dir.join("known_hosts").display().to_string(),
        );
    let inventory = dir.join("inventory.toml");
    std::fs::write(&inventory, text).expect("write the inventory");
    inventory
}

/// What a run over simulated hosts gave: its summary, every event, and the ops as they ran.
pub struct MemoryRun {
    pub summary: graphrun::engine::RunSummary,
    pub events: Vec<graphrun::engine::Event>,
    pub journal: Vec<graphrun::transport::memory::JournalEntry>,
}

/// Runs `file` over the simulated hosts of `transport` with the built-in plugins.
pub async fn run_in_memory(
    file: &TempPlaybook,
    transport: graphrun::transport::MemoryTransport,
    options: graphrun::engine::RunOptions,
) -> MemoryRun {
    let playbook = file
        .load()
        .unwrap_or_else(|d| panic!("{}", d.iter().map(|d| d.to_string()).collect::<String>()));
    let collector = std::sync::Arc::new(graphrun::engine::Collector::default());
    let summary = graphrun::engine::execute(
        playbook,
        std::sync::Arc::new(graphrun::plugins::Registry::builtin()),
        graphrun::transport::Transport::Memory(transport.clone()),
        options,
        collector.clone(),
        std::future::pending(),
    )
    .await
    .expect("the run starts");
    let events = collector.0.lock().unwrap().clone();
    MemoryRun {
        summary,
        events,
        journal: transport.journal(),
    }
}

// ---- Helpers for runs of the graphrun binary ----

/// `--output json` events of one kind.
pub fn events<'a>(
    output: &'a std::process::Output,
    kind: &'a str,
) -> impl Iterator<Item = serde_json::Value> + 'a {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(move |event| event["event"] == kind)
        .collect::<Vec<_>>()
        .into_iter()
}

/// Each node's final status (`ok`, `changed`, `failed`, …) from `--output json` events.
pub fn statuses(output: &std::process::Output) -> std::collections::BTreeMap<String, String> {
    events(output, "node_finished")
        .map(|e| {
            (
                e["node"].as_str().unwrap().to_string(),
                e["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Fails with the run's output unless it exited with `code`.
pub fn assert_exit(output: &std::process::Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The systemd hosts (s1, s2) are shared by several modules' tests: each such test holds this
/// lock while it uses them, so one test's services (rke2's port 6443) never meet another's checks.
pub fn lock_systemd_hosts() -> std::sync::MutexGuard<'static, ()> {
    static SYSTEMD_HOSTS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SYSTEMD_HOSTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
