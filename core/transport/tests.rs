//! Every op through a real local shell: guards, changes, idempotence, check mode, framing.

use std::path::Path;

use graphrun_plugin_api::{Attrs, Op, Run};

use super::shell::{Frame, ShellSession};

/// A local `sh` session.
pub(super) async fn shell() -> ShellSession {
    ShellSession::open(
        super::process::Process::local(
            tokio::process::Command::new("sh"),
            super::process::Feed::Pipe,
        )
        .unwrap(),
        std::time::Duration::from_secs(5),
        None,
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
    use std::os::unix::fs::PermissionsExt;
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
    use std::os::unix::fs::PermissionsExt;
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
}

#[tokio::test]
async fn replace_rewrites_matching_lines_only_when_needed() {
    let dir = tempfile::tempdir().unwrap();
    let target = path(dir.path(), "fstab");
    std::fs::write(
        &target,
        "UUID=1 / ext4 defaults 0 1\n/swap.img none swap sw 0 0\n",
    )
    .unwrap();
    let session = shell().await;
    let op = Op::replace(&target, "^([^#].*[[:space:]]swap[[:space:]].*)$", "# \\1");
    assert_eq!(
        outcomes(&run(&session, std::slice::from_ref(&op), true).await),
        ["w"]
    );
    assert_eq!(
        outcomes(&run(&session, &[op.clone(), op], false).await),
        ["", "u"]
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "UUID=1 / ext4 defaults 0 1\n# /swap.img none swap sw 0 0\n"
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
    use std::os::unix::fs::PermissionsExt;
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
        // One backup per file: the next edit's backup replaces it.
        std::fs::write(&target, "old\nolder\n").unwrap();
        assert_eq!(
            outcomes(&run(&session, std::slice::from_ref(&edit), false).await),
            [""]
        );
        assert_eq!(
            std::fs::read_to_string(&backup).unwrap(),
            "old\nolder\n",
            "{edit:?}"
        );
    }
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
