//! Every op through a real local shell: guards, changes, idempotence, check mode, framing.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use graphrun_plugin_api::{Attrs, Op, Run};

use super::shell::{Frame, ShellSession};

/// A local `sh` session, in a run of its own.
pub(super) async fn shell() -> ShellSession {
    shell_in_run(&super::shell::random_hex()).await
}

/// A local `sh` session of the run `run`.
async fn shell_in_run(run: &str) -> ShellSession {
    shell_of(tokio::process::Command::new("sh"), run).await
}

/// A session of the shell that `command` starts, in the run `run`.
async fn shell_of(command: tokio::process::Command, run: &str) -> ShellSession {
    ShellSession::open(
        super::process::Process::local(command, super::process::Feed::Pipe).unwrap(),
        std::time::Duration::from_secs(5),
        None,
        run,
    )
    .await
    .unwrap()
}

async fn run(session: &ShellSession, ops: &[Op], check: bool) -> Vec<Frame> {
    let snippets: Vec<String> = ops
        .iter()
        .map(|op| super::script::compile(op, None, false).unwrap())
        .collect();
    session.run(&snippets, check).await.unwrap()
}

/// "" changed, "u" unchanged, "w" would change, "!" failed, "-" not run.
fn outcomes(frames: &[Frame]) -> Vec<String> {
    frames
        .iter()
        .map(|f| match f.exit_code {
            None => "-".to_string(),
            Some(0) => f.status.clone(),
            Some(_) => "!".to_string(),
        })
        .collect()
}

fn path(dir: &Path, name: &str) -> String {
    dir.join(name).display().to_string()
}

#[tokio::test]
async fn file_content_is_written_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let target = path(dir.path(), "sub/conf");
    let session = shell().await;
    let op = Op::file(&target, "a = 1\n").with_mode("0640");
    assert_eq!(
        outcomes(&run(&session, std::slice::from_ref(&op), true).await),
        ["w"]
    );
    assert!(!Path::new(&target).exists(), "check mode changes nothing");
    assert_eq!(
        outcomes(&run(&session, std::slice::from_ref(&op), false).await),
        [""]
    );
    assert_eq!(
        outcomes(&run(&session, std::slice::from_ref(&op), false).await),
        ["u"]
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "a = 1\n");
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        outcomes(&run(&session, &[op], false).await),
        [""],
        "a wrong mode is a change"
    );
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

#[tokio::test]
async fn replacing_a_file_keeps_its_mode_when_none_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let target = path(dir.path(), "secret");
    std::fs::write(&target, "old").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let session = shell().await;
    assert_eq!(
        outcomes(&run(&session, &[Op::file(&target, "new")], false).await),
        [""]
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
    assert_eq!(
        std::fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn lines_are_added_once_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let target = path(dir.path(), "hosts");
    std::fs::write(&target, "127.0.0.1 localhost").unwrap();
    let session = shell().await;
    let add = Op::line(&target, "10.0.0.1 master");
    assert_eq!(
        outcomes(&run(&session, &[add.clone(), add.clone()], false).await),
        ["", "u"]
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "127.0.0.1 localhost\n10.0.0.1 master\n"
    );
    let remove = Op::line_absent(&target, "127.0.0.1 localhost");
    assert_eq!(
        outcomes(&run(&session, &[remove.clone(), remove], false).await),
        ["", "u"]
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "10.0.0.1 master\n"
    );
    // Only a whole line, compared literally, counts as present.
    std::fs::write(
        &target,
        "10.0.0.1 masters\n10.0.0.1.master\n#10.0.0.1 master\n",
    )
    .unwrap();
    let add = Op::line(&target, "10.0.0.1 master");
    assert_eq!(outcomes(&run(&session, &[add], false).await), [""]);
    assert!(std::fs::read_to_string(&target)
        .unwrap()
        .ends_with("#10.0.0.1 master\n10.0.0.1 master\n"));
}

#[tokio::test]
async fn replace_rewrites_matching_lines_only_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    replaces_only_when_needed(&shell().await, dir.path()).await;
}

#[tokio::test]
async fn replace_works_with_a_sed_without_gnu_extensions() {
    // A sed that refuses GNU's `Q`, as busybox's does.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::write(
        bin.join("sed"),
        "#!/bin/sh\nfor a; do case $a in *' Q '*) echo 'sed: unsupported command Q' >&2; exit 1 ;; esac; done\nexec /bin/sed \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(bin.join("sed"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = tokio::process::Command::new("sh");
    command.env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    let session = shell_of(command, &super::shell::random_hex()).await;
    replaces_only_when_needed(&session, dir.path()).await;
}

/// `replace` through `session`, on files in `dir`: it changes what matches once, leaves a file
/// whose regex still matches its own result alone, and fails on an invalid regex.
async fn replaces_only_when_needed(session: &ShellSession, dir: &Path) {
    let target = path(dir, "fstab");
    std::fs::write(
        &target,
        "UUID=1 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n",
    )
    .unwrap();
    let op = Op::replace(&target, "^([^#].*[[:space:]]swap[[:space:]].*)$", "# \\1");
    assert_eq!(
        outcomes(&run(session, std::slice::from_ref(&op), true).await),
        ["w"]
    );
    assert_eq!(
        outcomes(&run(session, &[op.clone(), op], false).await),
        ["", "u"]
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "UUID=1 / ext4 defaults 0 1\n# /swap.img none swap sw 0 0\n"
    );
    // A regex that still matches its own result: the file is left as it is, not rewritten.
    let config = path(dir, "sshd_config");
    std::fs::write(&config, "PermitRootLogin yes\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let op = Op::replace(&config, "^PermitRootLogin .*", "PermitRootLogin no");
    assert_eq!(
        outcomes(&run(session, std::slice::from_ref(&op), false).await),
        [""]
    );
    let edited = std::fs::metadata(&config).unwrap();
    assert_eq!(
        edited.permissions().mode() & 0o777,
        0o600,
        "the mode is kept"
    );
    assert_eq!(outcomes(&run(session, &[op], false).await), ["u"]);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "PermitRootLogin no\n"
    );
    assert_eq!(std::fs::metadata(&config).unwrap().ino(), edited.ino());
    let bad = Op::replace(&target, "^(unclosed", "x");
    assert_eq!(
        outcomes(&run(session, &[bad], false).await),
        ["!"],
        "an invalid regex fails, never 'unchanged'"
    );
}

#[tokio::test]
async fn a_block_is_inserted_updated_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let target = path(dir.path(), "resolv");
    std::fs::write(&target, "search lan\n").unwrap();
    let session = shell().await;
    let first = Op::block(&target, "dns", "nameserver 10.0.0.53");
    assert_eq!(
        outcomes(&run(&session, &[first.clone(), first], false).await),
        ["", "u"]
    );
    let second = Op::block(
        &target,
        "dns",
        "nameserver 10.0.0.54\nnameserver 10.0.0.55\n",
    );
    assert_eq!(outcomes(&run(&session, &[second], false).await), [""]);
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "search lan\n# BEGIN graphrun dns\nnameserver 10.0.0.54\nnameserver 10.0.0.55\n# END graphrun dns\n"
    );
}

#[tokio::test]
async fn directories_and_absent_paths() {
    let dir = tempfile::tempdir().unwrap();
    let target = path(dir.path(), "a/b/c");
    let session = shell().await;
    let make = Op::directory(&target).with_attrs(Attrs {
        mode: Some("0750".into()),
        ..Attrs::default()
    });
    assert_eq!(
        outcomes(&run(&session, &[make.clone(), make], false).await),
        ["", "u"]
    );
    let remove = Op::Absent {
        path: path(dir.path(), "a"),
    };
    assert_eq!(
        outcomes(&run(&session, &[remove.clone(), remove], false).await),
        ["", "u"]
    );
    assert!(!dir.path().join("a").exists());
}

#[tokio::test]
async fn command_guards_checks_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let marker = path(dir.path(), "done");
    let session = shell().await;
    let guarded = Op::command_creating(Run::Argv(vec!["touch".into(), marker.clone()]), &marker);
    assert_eq!(
        outcomes(&run(&session, std::slice::from_ref(&guarded), true).await),
        ["w"]
    );
    assert_eq!(
        outcomes(&run(&session, &[guarded.clone(), guarded], false).await),
        ["", "u"]
    );
    let unless = Op::command_unless(
        Run::Shell("exit 3".into()),
        Run::Shell(format!("test -e {marker}")),
    );
    assert_eq!(outcomes(&run(&session, &[unless], false).await), ["u"]);
    let check = Op::check(Run::Shell("echo out; echo err >&2".into()));
    let frames = run(&session, &[check], true).await;
    assert_eq!(
        (frames[0].stdout.as_slice(), frames[0].stderr.as_slice()),
        (&b"out\n"[..], &b"err\n"[..])
    );
    let failing = Op::command(Run::Shell("echo partial; exit 7".into()));
    let frames = run(
        &session,
        &[failing, Op::command(Run::Shell("true".into()))],
        false,
    )
    .await;
    assert_eq!(
        outcomes(&frames),
        ["!", "-"],
        "the first failure stops the batch"
    );
    assert_eq!(frames[0].exit_code, Some(7));
    let broken = Op::command(Run::Shell("echo 'unterminated".into()));
    let frames = run(&session, &[broken], false).await;
    assert_eq!(
        outcomes(&frames),
        ["!"],
        "a syntax error in user text stays inside its op"
    );
    assert_eq!(
        outcomes(&run(&session, &[Op::check(Run::Shell("exit 0".into()))], false).await),
        [""],
        "the session survives `exit`"
    );
}

#[tokio::test]
async fn output_without_trailing_newline_and_binary_bytes_frame_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let binary = path(dir.path(), "blob");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    std::fs::write(&binary, &bytes).unwrap();
    let session = shell().await;
    let frames = run(
        &session,
        &[
            Op::check(Run::Shell("printf 'no newline'".into())),
            Op::Fetch {
                path: binary,
                to: "x".into(),
            },
        ],
        false,
    )
    .await;
    assert_eq!(frames[0].stdout, b"no newline");
    assert_eq!(frames[1].stdout, bytes);
}

#[tokio::test]
async fn staged_uploads_move_into_place_keep_a_backup_and_are_then_in_place() {
    use super::script::Arrival;
    let dir = tempfile::tempdir().unwrap();
    let target = path(dir.path(), "tool");
    std::fs::write(&target, "old").unwrap();
    let staged = path(dir.path(), ".tool.graphrun-staged");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(&staged, &bytes).unwrap();
    let session = shell().await;
    let op = Op::Upload {
        source: "unused".into(),
        path: target.clone(),
        sha256: None,
        attrs: Attrs {
            mode: Some("0755".into()),
            ..Attrs::default()
        },
    };
    let compile = |arrival: Arrival| super::script::compile(&op, Some(&arrival), false).unwrap();
    let frames = session
        .run(&[compile(Arrival::NotSent)], true)
        .await
        .unwrap();
    assert_eq!(outcomes(&frames), ["w"], "plan: the target differs");
    let frames = session
        .run(
            &[
                compile(Arrival::Staged(staged.clone())),
                compile(Arrival::InPlace),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(outcomes(&frames), ["", "u"]);
    assert_eq!(std::fs::read(&target).unwrap(), bytes);
    assert!(!Path::new(&staged).exists(), "moved, not copied");
    assert_eq!(
        std::fs::read_to_string(format!("{target}.graphrun.bak")).unwrap(),
        "old"
    );
    let mode = std::fs::metadata(&target).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755);
}

#[tokio::test]
async fn concurrent_batches_get_their_own_answers() {
    let session = std::sync::Arc::new(shell().await);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let session = session.clone();
        tasks.push(tokio::spawn(async move {
            let op = Op::check(Run::Shell(format!("echo {i}")));
            let snippet = super::script::compile(&op, None, false).unwrap();
            (i, session.run(&[snippet], false).await.unwrap())
        }));
    }
    for task in tasks {
        let (i, frames) = task.await.unwrap();
        assert_eq!(frames[0].stdout, format!("{i}\n").into_bytes());
    }
}

#[tokio::test]
async fn a_dead_shell_fails_requests_instead_of_hanging() {
    let session = shell().await;
    session.kill("test");
    let snippet =
        super::script::compile(&Op::check(Run::Shell("true".into())), None, false).unwrap();
    assert!(session.run(&[snippet], false).await.is_err());
}

#[tokio::test]
async fn a_busy_shell_is_not_idle_and_killing_it_fails_every_waiting_batch() {
    let session = std::sync::Arc::new(shell().await);
    let hang =
        super::script::compile(&Op::check(Run::Shell("sleep 30".into())), None, false).unwrap();
    let quick = super::script::compile(&Op::check(Run::Shell("true".into())), None, false).unwrap();
    let first = {
        let session = session.clone();
        tokio::spawn(async move { session.run(&[hang], false).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let second = {
        let session = session.clone();
        tokio::spawn(async move { session.run(&[quick], false).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(
        !session.is_idle(),
        "a shell that owes answers is never lent out"
    );
    session.kill("timed out after 1s");
    assert!(first.await.unwrap().is_err());
    assert!(
        second.await.unwrap().is_err(),
        "the batch queued behind is not answered"
    );
    assert!(!session.is_idle());
}

#[tokio::test]
async fn every_edit_of_an_existing_file_keeps_one_backup() {
    let dir = tempfile::tempdir().unwrap();
    let session = shell().await;
    let next_run = shell().await;
    let edits = [
        Op::file("F", "new\n"),
        Op::line("F", "added"),
        Op::line_absent("F", "old"),
        Op::replace("F", "^(old)$", "# \\1"),
        Op::block("F", "id", "inside"),
        Op::Absent { path: "F".into() },
    ];
    for (index, edit) in edits.iter().enumerate() {
        let target = path(dir.path(), &format!("conf{index}"));
        let backup = format!("{target}.graphrun.bak");
        let edit: Op = serde_json::from_str(
            &serde_json::to_string(edit)
                .unwrap()
                .replace("\"F\"", &format!("{target:?}")),
        )
        .unwrap();
        std::fs::write(&target, "old\n").unwrap();
        assert_eq!(
            outcomes(&run(&session, std::slice::from_ref(&edit), true).await),
            ["w"]
        );
        assert!(
            !Path::new(&backup).exists(),
            "{edit:?}: plan keeps no backup"
        );
        assert_eq!(
            outcomes(&run(&session, std::slice::from_ref(&edit), false).await),
            [""]
        );
        assert_eq!(
            std::fs::read_to_string(&backup).unwrap(),
            "old\n",
            "{edit:?}"
        );
        // One backup per file: the next run's edit replaces it.
        std::fs::write(&target, "old\nolder\n").unwrap();
        assert_eq!(
            outcomes(&run(&next_run, std::slice::from_ref(&edit), false).await),
            [""]
        );
        assert_eq!(
            std::fs::read_to_string(&backup).unwrap(),
            "old\nolder\n",
            "{edit:?}"
        );
    }
    // Within one run (its shells share it), the backup stays the file from before the run.
    let hosts = path(dir.path(), "hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    run(&session, &[Op::line(&hosts, "10.0.0.1 a")], false).await;
    run(&session, &[Op::line(&hosts, "10.0.0.2 b")], false).await;
    run(&session, &[Op::replace(&hosts, "^10", "# 10")], false).await;
    assert_eq!(
        std::fs::read_to_string(format!("{hosts}.graphrun.bak")).unwrap(),
        "127.0.0.1 localhost\n"
    );
    // A file the run created had no earlier version: later edits of the run keep none.
    let made = path(dir.path(), "made");
    run(&session, &[Op::line(&made, "one")], false).await;
    run(&session, &[Op::line(&made, "two")], false).await;
    assert!(!Path::new(&format!("{made}.graphrun.bak")).exists());
    let created = path(dir.path(), "created");
    run(&session, &[Op::file(&created, "x")], false).await;
    assert!(
        !Path::new(&format!("{created}.graphrun.bak")).exists(),
        "a new file has no backup"
    );
    // A symlink replaced by a file: the backup holds what it pointed to, not the link.
    let (real, link) = (path(dir.path(), "real"), path(dir.path(), "link"));
    std::fs::write(&real, "old\n").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    run(&session, &[Op::file(&link, "new\n")], false).await;
    let backup = format!("{link}.graphrun.bak");
    assert!(!std::fs::symlink_metadata(&backup).unwrap().is_symlink());
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), "old\n");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "old\n");
}

#[tokio::test]
async fn a_batch_written_to_two_shells_runs_in_one_and_the_other_skips_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = path(dir.path(), "runs");
    let (first, second) = (shell().await, shell().await);
    let op = Op::check(Run::Shell(format!("echo ran >> {log}")));
    let snippet = super::script::compile(&op, None, false).unwrap();
    let (request, answer) = super::batch::Request::new(&[snippet], false);
    first.submit(&request).await.unwrap();
    second.submit(&request).await.unwrap();
    let frames = answer.await.unwrap().unwrap();
    assert_eq!(outcomes(&frames), [""]);
    // Both shells have gone past the batch once each answers another one.
    run(&first, &[Op::check(Run::Shell("true".into()))], false).await;
    run(&second, &[Op::check(Run::Shell("true".into()))], false).await;
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "ran\n");
    assert!(first.is_idle() && second.is_idle());
}

#[tokio::test]
async fn a_shell_leaves_no_temporary_files_whether_closed_or_killed() {
    let dir = tempfile::tempdir().unwrap();
    let leftovers = |prefix: &str| {
        let prefix = Path::new(prefix);
        let stem = prefix.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::read_dir(prefix.parent().unwrap())
            .unwrap()
            .flatten()
            .filter(|entry| entry.file_name().to_string_lossy().starts_with(&stem))
            .count()
    };
    for close in [true, false] {
        let run_name = super::shell::random_hex();
        let session = shell_in_run(&run_name).await;
        let prefix = session.temp_prefix().to_string();
        let marks = Path::new(&prefix).with_file_name(format!("{run_name}."));
        let marks = marks.to_str().unwrap();
        let op = Op::file(&path(dir.path(), &format!("f-{close}")), "content\n");
        run(&session, &[op], false).await;
        assert!(leftovers(&prefix) > 0, "{prefix}: the op's files are there");
        assert_eq!(leftovers(marks), 1, "{marks}: the edited file's mark");
        if close {
            session.close().await;
        } else {
            drop(session);
        }
        assert_eq!(leftovers(&prefix), 0, "{prefix} (closed: {close})");
        assert_eq!(leftovers(marks), 0, "{marks} (closed: {close})");
    }
}

#[tokio::test]
async fn the_shells_of_one_run_keep_one_backup_of_a_file_from_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let run_name = super::shell::random_hex();
    let (first, second) = (shell_in_run(&run_name).await, shell_in_run(&run_name).await);
    let hosts = path(dir.path(), "hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
    run(&first, &[Op::line(&hosts, "10.0.0.1 a")], false).await;
    run(&second, &[Op::file(&hosts, "10.0.0.2 b\n")], false).await;
    let backup = format!("{hosts}.graphrun.bak");
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap(),
        "127.0.0.1 localhost\n"
    );
    // The next run keeps the version it found.
    run(&shell().await, &[Op::line(&hosts, "10.0.0.3 c")], false).await;
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), "10.0.0.2 b\n");
}
