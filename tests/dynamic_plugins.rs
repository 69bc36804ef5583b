//! Tests: dynamic_plugins. Custom plugins built as `cdylib`s and named in playbooks: the example
//! `minio` plugin runs through the engine like a built-in, a built-in built both ways plans the
//! same, and every broken library is refused (or fails only its step) with a clear message while
//! the test process keeps running.
//!
//! The libraries are built once per test binary run, by cargo in `target/plugins` (first build
//! about a minute on 2 cores, then about 10 s; the time is printed), and copied aside to
//! `target/plugins/graphrun-test-libs/` so that each build of the one fixture crate is kept.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use graphrun::engine::{self, Collector, Mode, NodeStatus, RunOptions, RunSummary};
use graphrun::playbook::{self, Playbook};
use graphrun::plugins::{Origin, Registry};
use graphrun::transport::{MemoryTransport, Simulated, Transport};
use graphrun_plugin_api::{HostInfo, Params, PlanRequest};
use serde_json::json;

const WORKSPACE: &str = env!("CARGO_MANIFEST_DIR");
const PASSWORD: &str = "correct-horse-battery";
const RELEASE: &str = "RELEASE.2024-06-13T22-53-53Z";

/// The fixture crate's builds: (library name, cargo feature). `fixture-abort` is the plain
/// build compiled with `-C panic=abort`.
const FIXTURES: [(&str, &str); 8] = [
    ("fixture", ""),
    ("no-symbol", "no-symbol"),
    ("abi-mismatch", "abi-mismatch"),
    ("api-mismatch", "api-mismatch"),
    ("panicky", "panic-plan"),
    ("malformed-info", "malformed-info"),
    ("garbled", "malformed-plan"),
    ("named-file", "named-file"),
];

/// Built libraries, by name.
pub(crate) struct Libraries {
    dir: PathBuf,
}

impl Libraries {
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        let path = self.dir.join(format!("lib{name}.so"));
        assert!(path.exists(), "{} was not built", path.display());
        path
    }
}

/// Builds every library once per test run (parallel tests wait for the first).
pub(crate) fn libraries() -> &'static Libraries {
    static BUILT: OnceLock<Result<Libraries, String>> = OnceLock::new();
    match BUILT.get_or_init(build_all) {
        Ok(libraries) => libraries,
        Err(message) => panic!("building the plugin libraries failed:\n{message}"),
    }
}

fn build_all() -> Result<Libraries, String> {
    let started = Instant::now();
    let workspace = Path::new(WORKSPACE);
    let target = workspace.join("target/plugins");
    let release = target.join("release");
    let dir = target.join("graphrun-test-libs");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let keep = |built: &str, name: &str| keep_copy(&release.join(built), &dir, name);

    let minio = workspace.join("plugins/examples/minio/Cargo.toml");
    cargo(
        &target,
        workspace,
        &["build", "--release", "--manifest-path"],
        &[&minio],
    )?;
    keep("libgraphrun_plugin_minio.so", "minio")?;

    // The built-in `file` step, exported as a dynamic plugin.
    cargo(
        &target,
        workspace,
        &[
            "rustc",
            "--release",
            "-p",
            "graphrun-plugin-file",
            "--features",
            "export",
            "--crate-type",
            "cdylib",
        ],
        &[],
    )?;
    keep("libgraphrun_plugin_file.so", "file-builtin")?;

    let fixture = workspace.join("tests/fixtures/plugin/Cargo.toml");
    for (name, feature) in FIXTURES {
        cargo(
            &target,
            workspace,
            &[
                "build",
                "--release",
                "--features",
                feature,
                "--manifest-path",
            ],
            &[&fixture],
        )?;
        keep("libgraphrun_fixture_plugin.so", name)?;
    }
    // Only the fixture itself is compiled with panic=abort; that is what its declaration reports.
    cargo(
        &target,
        workspace,
        &["rustc", "--release", "--lib", "--manifest-path"],
        &[
            &fixture,
            Path::new("--"),
            Path::new("-C"),
            Path::new("panic=abort"),
        ],
    )?;
    keep("libgraphrun_fixture_plugin.so", "fixture-abort")?;

    eprintln!(
        "dynamic_plugins: built the example, the file cdylib and {} fixtures in {:.1}s",
        FIXTURES.len() + 1,
        started.elapsed().as_secs_f64()
    );
    Ok(Libraries { dir })
}

fn cargo(target: &Path, cwd: &Path, args: &[&str], paths: &[&Path]) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .args(paths)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .map_err(|err| format!("cannot run cargo: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cargo {} {} failed:\n{}",
            args.join(" "),
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Copies a built library aside under a new inode (a library another process has mapped is
/// never rewritten in place).
fn keep_copy(built: &Path, dir: &Path, name: &str) -> Result<(), String> {
    let target = dir.join(format!("lib{name}.so"));
    let temp = dir.join(format!(".lib{name}.so.{}", std::process::id()));
    std::fs::copy(built, &temp)
        .and_then(|_| std::fs::rename(&temp, &target))
        .map_err(|err| format!("cannot copy {} aside: {err}", built.display()))
}

/// A temporary folder holding `playbook.toml` with this text.
fn playbook_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("playbook.toml");
    std::fs::write(&path, text).expect("write playbook");
    (dir, path)
}

fn load(path: &Path) -> Result<(Playbook, Registry), String> {
    let mut registry = Registry::builtin();
    match playbook::load(path, None, &mut registry) {
        Ok(playbook) => Ok((playbook, registry)),
        Err(diagnostics) => Err(diagnostics
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n")),
    }
}

fn run(
    playbook: Playbook,
    registry: Registry,
    transport: Transport,
    mode: Mode,
) -> (RunSummary, Vec<engine::Event>) {
    let collector = Arc::new(Collector::default());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let options = RunOptions {
        mode,
        // Every run from scratch (no resume of an earlier run's nodes).
        fresh: true,
        ..RunOptions::default()
    };
    let summary = runtime
        .block_on(engine::execute(
            playbook,
            Arc::new(registry),
            transport,
            options,
            collector.clone(),
            std::future::pending(),
        ))
        .expect("the run starts");
    let events = collector.0.lock().unwrap().clone();
    (summary, events)
}

fn node_error(events: &[engine::Event], node: &str) -> String {
    events
        .iter()
        .find_map(|event| match event {
            engine::Event::NodeFinished {
                node: name, error, ..
            } if name == node => error.clone(),
            _ => None,
        })
        .unwrap_or_default()
}

fn memory() -> Transport {
    Transport::Memory(MemoryTransport::new(|_, _| Simulated {
        changed: true,
        ..Simulated::default()
    }))
}

/// A playbook using the minio plugin on the local host, laying files out under `DIR/root`.
fn minio_playbook(library: &Path, service: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::write(
        dir.path().join("minio"),
        format!("#!/bin/sh\necho 'minio version {RELEASE} (commit-id=test)'\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let text = format!(
        r#"
[plugins.minio]
path = "{library}"

[hosts.local]
connection = "local"

[steps.minio]
plugin = "minio"
version = "{RELEASE}"
binary = "minio"
root_user = "mlops"
root_password = {{ file = "password" }}
service = "{service}"
user = "root"
root = "{root}"

[steps.endpoint]
plugin = "file"
needs = ["minio"]
path = "{root}/endpoint"
content = "{{{{ steps.minio.outputs.endpoint }}}}"
"#,
        library = library.display(),
        root = root.display(),
    );
    let path = dir.path().join("minio.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn minio_example_loads_from_a_playbook_and_is_listed_with_its_path() {
    let library = libraries().path("minio");
    let (_dir, path) = minio_playbook(&library, "none");
    let (_, registry) = load(&path).unwrap();
    let entry = registry.get("minio").expect("minio is loaded");
    assert_eq!(entry.origin, Origin::Library(library.clone()));
    assert!(entry.info.needs_facts);
    assert_eq!(entry.info.outputs, ["endpoint"]);
    assert_eq!(registry.get("file").unwrap().origin, Origin::BuiltIn);

    let graphrun = env!("CARGO_BIN_EXE_graphrun");
    let listed = Command::new(graphrun)
        .args(["plugins", "--playbook"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let stdout = String::from_utf8_lossy(&listed.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("minio "))
        .unwrap_or_else(|| panic!("minio is not listed:\n{stdout}"));
    assert!(
        line.ends_with(&format!("[{}]", library.display())),
        "origin is not the library path: {line}"
    );
    assert!(stdout.lines().any(|l| l.starts_with("file ")), "{stdout}");

    let shown = Command::new(graphrun)
        .args(["plugins", "minio", "--playbook"])
        .arg(&path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{shown:?}");
    for expected in [
        "root_password",
        "(required)",
        "[default: \"/var/lib/minio\"]",
        "outputs: endpoint",
    ] {
        assert!(
            stdout.contains(expected),
            "`{expected}` missing from:\n{stdout}"
        );
    }
}

#[test]
fn minio_example_playbook_validates() {
    let library = libraries().path("minio");
    let example = Path::new(WORKSPACE).join("plugins/examples/minio/playbook.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    let shipped = "\"target/release/libgraphrun_plugin_minio.so\"";
    assert!(text.contains(shipped), "the example names {shipped}");
    let (_dir, path) = playbook_file(&text.replace(shipped, &format!("\"{}\"", library.display())));
    let output = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .arg("validate")
        .arg(&path)
        .env("MINIO_ROOT_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("valid (2 steps, 1 host, 2 nodes)"));
}

#[test]
fn minio_plans_and_applies_through_the_engine_like_a_builtin() {
    let library = libraries().path("minio");
    let (dir, path) = minio_playbook(&library, "none");
    let root = dir.path().join("root");

    // plan: facts gathered, ops checked, nothing written.
    let (playbook, registry) = load(&path).unwrap();
    let (summary, events) = run(playbook, registry, Transport::Real, Mode::Plan);
    assert_eq!(
        summary.nodes["minio@local"],
        NodeStatus::WouldChange,
        "{events:#?}"
    );
    assert!(!root.exists(), "plan wrote files");

    // apply: the files are laid out under the root, the output reaches the next step.
    let (playbook, registry) = load(&path).unwrap();
    let address = playbook.host("local").unwrap().address.clone();
    let (summary, events) = run(playbook, registry, Transport::Real, Mode::Apply);
    assert_eq!(summary.exit_code, 0, "{events:#?}");
    assert_eq!(summary.nodes["minio@local"], NodeStatus::Changed);
    let binary = root.join("usr/local/bin/minio");
    assert_eq!(
        std::fs::read(&binary).unwrap(),
        std::fs::read(dir.path().join("minio")).unwrap()
    );
    assert_eq!(mode_of(&binary), 0o755);
    let env_file = root.join("etc/default/minio");
    assert_eq!(mode_of(&env_file), 0o600);
    let env = std::fs::read_to_string(&env_file).unwrap();
    assert!(
        env.contains(&format!("MINIO_ROOT_PASSWORD=\"{PASSWORD}\"\n")),
        "{env}"
    );
    assert!(env.contains("MINIO_VOLUMES=\"/var/lib/minio\"\n"), "{env}");
    assert_eq!(mode_of(&root.join("var/lib/minio")), 0o750);
    assert!(
        !root.join("etc/systemd").exists(),
        "service = \"none\" writes no unit"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("endpoint")).unwrap(),
        format!("http://{address}:9000")
    );
    let log = serde_json::to_string(&events).unwrap();
    assert!(!log.contains(PASSWORD), "the password leaked into events");

    // apply again: nothing to change.
    let (playbook, registry) = load(&path).unwrap();
    let (summary, events) = run(playbook, registry, Transport::Real, Mode::Apply);
    assert_eq!(summary.nodes["minio@local"], NodeStatus::Ok, "{events:#?}");
}

#[test]
fn minio_reads_facts_and_refuses_systemd_where_there_is_none() {
    if Path::new("/run/systemd/system").exists() {
        eprintln!("skipped: this machine runs systemd");
        return;
    }
    let library = libraries().path("minio");
    let (_dir, path) = minio_playbook(&library, "systemd");
    let (playbook, registry) = load(&path).unwrap();
    let (summary, events) = run(playbook, registry, Transport::Real, Mode::Plan);
    assert_eq!(summary.nodes["minio@local"], NodeStatus::Failed);
    assert_eq!(summary.nodes["endpoint@local"], NodeStatus::Blocked);
    let error = node_error(&events, "minio@local");
    assert!(
        error.contains("does not run systemd (init=other)")
            && error.contains("set service = \"none\""),
        "{error}"
    );
}

#[test]
fn builtin_file_plugin_built_both_ways_plans_identically() {
    let library = libraries().path("file-builtin");
    let mut registry = Registry::empty();
    registry.load_library("file", &library).unwrap();
    let entry = registry.get("file").unwrap();
    assert_eq!(entry.origin, Origin::Library(library));
    let builtins = Registry::builtin();
    let builtin = builtins.get("file").unwrap().plugin.as_ref();
    let loaded = entry.plugin.as_ref();
    assert_eq!(loaded.info(), builtin.info());

    let cases = [
        json!({"path": "/etc/motd", "content": "hello\n", "mode": "0644", "owner": "root"}),
        json!({"path": "/etc/hosts", "line": "10.0.0.1 master"}),
        json!({"path": "/etc/hosts", "line": "10.0.0.1 master", "absent": true}),
        json!({"path": "/etc/fstab", "replace": {"regex": "^(.*swap.*)$", "with": "# \\1"}}),
        json!({"path": "/srv/data", "directory": true, "mode": "0750"}),
        json!({"path": "/tmp/gone", "absent": true}),
        json!({"path": "/usr/local/bin/tool", "source": "files/tool", "mode": "0755"}),
        json!({"path": "/a", "line": "x", "content": "y"}),
        json!({"path": "/a"}),
        json!({"path": "/a", "content": "x", "mode": "644x"}),
        json!({"path": "/a", "replace": {"regex": "x"}}),
        json!({"path": "/a", "content": "üñí\u{0}çødé", "group": "adm"}),
    ];
    for case in cases {
        let params: Params = serde_json::from_value(case.clone()).unwrap();
        let request = PlanRequest {
            step: "files".into(),
            host: HostInfo {
                name: "node1".into(),
                address: "10.0.0.1".into(),
                groups: vec!["workers".into()],
                ..Default::default()
            },
            params: params.clone(),
            facts: BTreeMap::from([("os_id".to_string(), "debian".to_string())]),
            ..Default::default()
        };
        let as_json = |value| serde_json::to_string(&value).unwrap();
        assert_eq!(
            as_json(serde_json::to_value(loaded.plan(&request)).unwrap()),
            as_json(serde_json::to_value(builtin.plan(&request)).unwrap()),
            "plans differ for {case}"
        );
        assert_eq!(
            loaded.validate(&params),
            builtin.validate(&params),
            "validation differs for {case}"
        );
    }
}

/// Loads a playbook naming `library` as `[plugins.NAME]`; returns its errors.
fn load_error(name: &str, library: &Path) -> String {
    let (_dir, path) = playbook_file(&format!(
        "[plugins.{name}]\npath = \"{}\"\n\n[hosts.local]\nconnection = \"local\"\n",
        library.display()
    ));
    match load(&path) {
        Ok(_) => panic!("{} loaded as `{name}`", library.display()),
        Err(message) => message,
    }
}

fn assert_contains(text: &str, expected: &str) {
    assert!(
        text.contains(expected),
        "`{expected}` missing from:\n{text}"
    );
}

#[test]
fn missing_library_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("libnothing.so");
    let error = load_error("nothing", &missing);
    assert_contains(
        &error,
        &format!("plugin library {} does not exist", missing.display()),
    );
    assert_contains(&error, "cargo build --release");
}

#[test]
fn library_without_declaration_is_not_a_plugin() {
    let library = libraries().path("no-symbol");
    let error = load_error("fixture", &library);
    assert_contains(
        &error,
        &format!(
            "{} is not a graphrun plugin (no GRAPHRUN_PLUGIN symbol",
            library.display()
        ),
    );
}

#[test]
fn file_that_is_no_library_cannot_be_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("libtext.so");
    std::fs::write(&text, "not an ELF file").unwrap();
    assert_contains(
        &load_error("text", &text),
        &format!("cannot load {}", text.display()),
    );
}

#[test]
fn abi_mismatch_is_refused() {
    let library = libraries().path("abi-mismatch");
    assert_contains(
        &load_error("fixture", &library),
        &format!(
            "{} uses plugin ABI 999, this graphrun speaks ABI 1",
            library.display()
        ),
    );
}

#[test]
fn incompatible_api_version_is_refused() {
    let library = libraries().path("api-mismatch");
    let error = load_error("fixture", &library);
    assert_contains(
        &error,
        &format!(
            "{} was built against graphrun-plugin-api 9.0.0, which is not compatible with {}",
            library.display(),
            graphrun_plugin_api::ffi::API_VERSION
        ),
    );
}

#[test]
fn panic_abort_build_is_refused() {
    let library = libraries().path("fixture-abort");
    assert_contains(
        &load_error("fixture", &library),
        &format!(
            "{} was built with panic = \"abort\": a panic in it would kill the whole run",
            library.display()
        ),
    );
    // The same code built with panic = "unwind" loads.
    let mut registry = Registry::builtin();
    registry
        .load_library("fixture", &libraries().path("fixture"))
        .unwrap();
}

#[test]
fn malformed_description_is_refused() {
    let library = libraries().path("malformed-info");
    assert_contains(
        &load_error("fixture", &library),
        &format!("{} answered with malformed data: ", library.display()),
    );
}

#[test]
fn second_plugin_named_like_a_builtin_is_refused() {
    let library = libraries().path("named-file");
    assert_contains(
        &load_error("file", &library),
        &format!(
            "two plugins are called `file`: built-in and {}",
            library.display()
        ),
    );
}

#[test]
fn declared_name_must_match_the_library() {
    let library = libraries().path("fixture");
    assert_contains(
        &load_error("storage", &library),
        &format!(
            "{} is the plugin `fixture`, not `storage`: name the table [plugins.fixture]",
            library.display()
        ),
    );
}

/// Two independent steps (`broken` with `plugin`, `fine` with the built-in `file`) and one that
/// needs `broken`, on two simulated hosts.
fn broken_step_playbook(plugin: &str, library: &Path) -> (tempfile::TempDir, PathBuf) {
    playbook_file(&format!(
        r#"
[plugins.{plugin}]
path = "{library}"

[hosts.a]
connection = "local"
[hosts.b]
connection = "local"

[steps.broken]
plugin = "{plugin}"
path = "/tmp/x"

[steps.fine]
plugin = "file"
path = "/tmp/y"
content = "y"

[steps.after]
plugin = "file"
needs = ["broken"]
path = "/tmp/z"
content = "z"
"#,
        library = library.display()
    ))
}

#[test]
fn panicking_plan_fails_its_step_and_the_run_goes_on() {
    let library = libraries().path("panicky");
    let (_dir, path) = broken_step_playbook("panicky", &library);
    for _ in 0..2 {
        // Twice: the plugin stays usable after a panic.
        let (playbook, registry) = load(&path).unwrap();
        let (summary, events) = run(playbook, registry, memory(), Mode::Apply);
        assert_eq!(summary.exit_code, 1);
        for host in ["a", "b"] {
            assert_eq!(summary.nodes[&format!("broken@{host}")], NodeStatus::Failed);
            assert_eq!(summary.nodes[&format!("fine@{host}")], NodeStatus::Changed);
            assert_eq!(summary.nodes[&format!("after@{host}")], NodeStatus::Blocked);
            assert_eq!(
                node_error(&events, &format!("broken@{host}")),
                format!(
                    "plugin `panicky`: the plugin panicked: fixture plan exploded on host {host}"
                )
            );
        }
    }
}

#[test]
fn malformed_plan_answer_fails_its_step() {
    let library = libraries().path("garbled");
    let (_dir, path) = broken_step_playbook("garbled", &library);
    let (playbook, registry) = load(&path).unwrap();
    let (summary, events) = run(playbook, registry, memory(), Mode::Plan);
    assert_eq!(summary.nodes["broken@a"], NodeStatus::Failed);
    assert_eq!(summary.nodes["fine@a"], NodeStatus::WouldChange);
    assert_contains(
        &node_error(&events, "broken@a"),
        &format!(
            "plugin `garbled`: malformed response from plugin library {}: ",
            library.display()
        ),
    );
}
