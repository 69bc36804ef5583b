//! Tests: bad input. The corpus of malformed playbooks and inventories in `tests/corpus/bad/`
//! (`inventory-*.toml` are tried as `--inventory` of `tests/corpus/playbook.toml`), plus files
//! made here (binary garbage, 10 MB). Each must give its message at its place, exit 2 from both
//! `validate` and `apply`, never panic, and never start `ssh` (a stand-in on PATH records any
//! start) or write a state folder.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Case (file stem), the expected error, and where it points (`line:column`; "" for an error
/// about the whole file).
const CASES: &[(&str, &str, &str)] = &[
    ("artifacts-dir-missing", "`dir`: bad/no-such-artifacts is not a folder", "5:7"),
    ("artifacts-mirror-and-dir", "`dir` and `mirror` both given", "6:1"),
    ("artifacts-mirror-not-url", "`mirror`: `ftp://127.0.0.1/artifacts` is not an http:// or https:// URL", "5:10"),
    ("artifacts-not-in-dir", "cannot read `https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl`: not in the artifacts folder (bad/./dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl)", "10:7"),
    ("artifacts-unknown-key", "unknown key `mirorr`", "5:1"),
    ("cycle-three", "steps depend on each other in a cycle: x → z → y → x", "6:10"),
    ("cycle-two", "steps depend on each other in a cycle: x → y → x", "6:10"),
    ("duplicate-step-id", "table `[steps.x]` is defined twice", "8:8"),
    ("duration-unit", "`timeout`: `10 parsecs` is not a duration", "7:11"),
    ("empty", "bad/empty.toml is empty", "1:1"),
    ("file-two-modes", "plugin `file`: `content` and `line` cannot be used together: choose one", "7:1"),
    ("group-unknown-member", "unknown host `c` in group `web`", "5:15"),
    ("inventory-host-key-checking", "unknown host_key_checking `maybe`", "3:21"),
    ("inventory-host-unknown-key", "unknown key `adress`", "2:1"),
    ("inventory-in-playbook-type", "`hosts.a` must be a table, found a string", "2:5"),
    ("inventory-port-range", "`port` must be an integer from 1 to 65535, found 70000", "2:8"),
    ("inventory-syntax", "invalid TOML: unclosed table, expected `]`", "4:9"),
    ("inventory-with-steps", "unknown table `steps`", "4:2"),
    ("missing-required-param", "step is missing the required parameter `run`", "4:8"),
    ("plugin-missing-library", "plugin library bad/no/such/libplugin.so does not exist", "5:8"),
    ("plugin-not-a-library", "cannot load bad/not-a-plugin.so: ", "5:8"),
    ("replace-dollar-reference", "plugin `file`: `with` `$1` is not a group reference here (it would be written literally): write `\\1`", "7:1"),
    ("rke-kubernetes-past-rke1", "plugin `rke`: `v1.33.1-rancher1-1` is past RKE1's last line: RKE 1.8 stops at Kubernetes 1.32", "7:1"),
    ("rke-no-controlplane", "plugin `rke`: the cluster must have at least one control plane host", "8:1"),
    ("rke-no-etcd", "plugin `rke`: the cluster must have at least one etcd host", "8:1"),
    ("rke-node-duplicate", "plugin `rke`: the cluster can't have duplicate node 10.77.3.11", "8:1"),
    ("rke-node-no-address", "plugin `rke`: address for node 1 of `nodes` is not provided", "8:1"),
    ("rke-node-no-role", "plugin `rke`: role for node 2 of `nodes` is not provided", "8:1"),
    ("rke-node-no-user", "plugin `rke`: user for node 1 of `nodes` is not provided", "8:1"),
    ("rke-node-unknown-role", "plugin `rke`: role `master` for node 2 of `nodes` is not recognized", "8:1"),
    ("secret-env-unset", "secret: environment variable `GRAPHRUN_CORPUS_NEVER_SET` is not set", "4:27"),
    ("secret-file-missing", "secret: cannot read bad/no-such-secret: ", "9:16"),
    ("secret-plain-password", "`become_password` must be a secret reference", "4:19"),
    ("self-need", "step `x` needs itself", "6:10"),
    ("step-not-a-table", "`steps.x` must be a table, found a string", "5:5"),
    ("syntax-bare-word", "invalid TOML: invalid boolean, expected `true`", "6:7"),
    ("syntax-repeated-key", "invalid TOML: duplicate key", "7:1"),
    ("syntax-unclosed-table", "invalid TOML: unclosed table, expected `]`", "4:9"),
    ("template-step-not-needed", "template reads `steps.y.outputs.z`: no step `y`", "7:8"),
    ("template-syntax", "template error: syntax error: unexpected end of input", "6:7"),
    ("template-unknown-root", "template reads `hots.a`: unknown name `hots`", "6:7"),
    ("template-unknown-var", "template reads `vars.y`: no variable `y` in [vars]", "9:7"),
    ("type-needs-number", "`needs` must be a string, found an integer", "7:10"),
    ("type-param", "parameter `creates` must be a string, found an integer", "7:11"),
    ("type-retries-string", "`retries` must be an integer from 0 to 100, found a string", "7:11"),
    ("unknown-group", "unknown host or group `webs`", "9:6"),
    ("unknown-host", "unknown host or group `b`", "6:7"),
    ("unknown-need", "unknown step `y` in `needs`", "6:10"),
    ("unknown-param", "unknown parameter `runn` for plugin `command`", "6:1"),
    ("unknown-plugin", "unknown plugin `comand`", "5:10"),
    ("unknown-step-key", "unknown step key `need`", "7:1"),
    ("unknown-top-table", "unknown table `step`", "4:2"),
    ("wait-host-without-need-on-host", "step `y` runs on `b`, where `x` does not run", "15:10"),
    ("wait-value", "unknown wait `everyone`", "7:8"),
    ("when-not-a-template", "template error: syntax error: unexpected end of input, expected expression", "7:8"),
    ("binary-garbage", "bad/binary-garbage.toml: the file is binary data, not text (a NUL byte at offset", ""),
    ("ten-megabytes", "bad/ten-megabytes.toml: the file is larger than 4 MiB", ""),
];

/// A copy of the corpus in a temporary folder (runs write nothing there, which is checked),
/// with the generated files, and `bin/ssh` that records being started.
struct Corpus {
    dir: tempfile::TempDir,
}

impl Corpus {
    fn new() -> Corpus {
        let dir = tempfile::tempdir().unwrap();
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
        std::fs::create_dir(dir.path().join("bad")).unwrap();
        std::fs::copy(
            source.join("playbook.toml"),
            dir.path().join("playbook.toml"),
        )
        .unwrap();
        for entry in std::fs::read_dir(source.join("bad")).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(
                &path,
                dir.path().join("bad").join(path.file_name().unwrap()),
            )
            .unwrap();
        }
        // Deterministic noise with NUL bytes in it, as a stray binary would have.
        let garbage: Vec<u8> = (0u32..4096)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(dir.path().join("bad/binary-garbage.toml"), garbage).unwrap();
        let line = "# a comment line of a file far too large to be a playbook\n";
        std::fs::write(
            dir.path().join("bad/ten-megabytes.toml"),
            line.repeat(10_000_000 / line.len()),
        )
        .unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let ssh = bin.join("ssh");
        std::fs::write(
            &ssh,
            format!(
                "#!/bin/sh\ntouch {}\nexit 255\n",
                dir.path().join("ssh-started").display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&ssh, PermissionsExt::from_mode(0o755)).unwrap();
        Corpus { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `graphrun SUBCOMMAND` on a case, from the corpus folder, with the recording `ssh` first
    /// on PATH.
    fn run(&self, subcommand: &str, case: &str) -> Output {
        let file: PathBuf = format!("bad/{case}.toml").into();
        let mut command = Command::new(env!("CARGO_BIN_EXE_graphrun"));
        command.current_dir(self.root()).arg(subcommand);
        if case.starts_with("inventory-") {
            command.arg("playbook.toml").arg("--inventory").arg(&file);
        } else {
            command.arg(&file);
        }
        let path = format!(
            "{}:{}",
            self.root().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        command
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }
}

/// The position printed right after the error line, if any.
fn position_after(stderr: &str, message: &str) -> Option<String> {
    let start = stderr.find(&format!("error: {message}"))?;
    let next = stderr[start..].lines().nth(1)?.trim();
    Some(next.strip_prefix("--> ").unwrap_or("").to_string())
}

#[test]
fn the_corpus_has_every_kind_of_mistake_the_issue_lists() {
    assert!(CASES.len() >= 30);
    let on_disk: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/bad"))
            .unwrap()
            .filter_map(|e| {
                e.unwrap()
                    .path()
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
            })
            .filter(|stem| stem != "not-a-plugin")
            .collect();
    for stem in &on_disk {
        assert!(
            CASES.iter().any(|(case, ..)| case == stem),
            "{stem}.toml has no expectation"
        );
    }
}

#[test]
fn every_malformed_file_is_refused_at_its_place_without_touching_anything() {
    let corpus = Corpus::new();
    for (case, message, position) in CASES {
        for subcommand in ["validate", "apply"] {
            let output = corpus.run(subcommand, case);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{subcommand} {case}: {stderr}"
            );
            assert!(
                !stderr.contains("panicked"),
                "{subcommand} {case}: {stderr}"
            );
            let found = position_after(&stderr, message).unwrap_or_else(|| {
                panic!("{subcommand} {case}: no `error: {message}` in\n{stderr}")
            });
            let expected = if position.is_empty() {
                String::new()
            } else {
                format!("bad/{case}.toml:{position}")
            };
            assert_eq!(found, expected, "{subcommand} {case}: {stderr}");
            assert!(
                stderr.contains("nothing was run"),
                "{subcommand} {case}: {stderr}"
            );
        }
    }
    assert!(
        !corpus.root().join("ssh-started").exists(),
        "a malformed playbook started ssh"
    );
    assert!(
        !corpus.root().join("bad/.graphrun").exists(),
        "a malformed playbook wrote state"
    );
    assert!(
        !corpus.root().join(".graphrun").exists(),
        "a malformed playbook wrote state"
    );
}
