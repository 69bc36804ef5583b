//! File ops compiled with `diff` through a real local shell: what `gr_diff` reports before and
//! after, in check mode and when applying, and that it reports nothing when nothing changes.

use std::path::Path;

use graphrun_plugin_api::{Attrs, Op};

use super::script::{compile, parse_diff, Arrival, Contents, DIFF_LIMIT};

/// Runs one op with `diff` on a fresh local shell; its exit code and what it reported.
async fn diff_of(
    op: &Op,
    upload: Option<&Arrival>,
    check: bool,
) -> (Option<i32>, Option<Contents>) {
    let session = super::tests::shell().await;
    let snippet = compile(op, upload, true).unwrap();
    let frame = session.run(&[snippet], check).await.unwrap().remove(0);
    (frame.exit_code, parse_diff(&frame.stdout))
}

fn both(before: &str, after: &str) -> Option<Contents> {
    Some(Contents::Both {
        before: before.into(),
        after: after.into(),
    })
}

fn at(dir: &Path, name: &str, content: Option<&str>) -> String {
    let path = dir.join(name);
    if let Some(content) = content {
        std::fs::write(&path, content).unwrap();
    }
    path.display().to_string()
}

#[tokio::test]
async fn each_file_op_reports_before_and_after_in_check_mode() {
    let dir = tempfile::tempdir().unwrap();
    let conf = at(dir.path(), "conf", Some("a = 1\n"));
    let hosts = at(dir.path(), "hosts", Some("127.0.0.1 localhost"));
    let fstab = at(dir.path(), "fstab", Some("/swap none swap\n"));
    let new = at(dir.path(), "new", None);
    let cases = [
        (Op::file(&conf, "a = 2\n"), both("a = 1\n", "a = 2\n")),
        (Op::file(&new, "x\n"), both("", "x\n")),
        (
            Op::line(&hosts, "10.0.0.1 master"),
            both(
                "127.0.0.1 localhost",
                "127.0.0.1 localhost\n10.0.0.1 master\n",
            ),
        ),
        (Op::line(&new, "one"), both("", "one\n")),
        (
            Op::line_absent(&hosts, "127.0.0.1 localhost"),
            both("127.0.0.1 localhost", ""),
        ),
        (
            Op::replace(&fstab, "^(/swap.*)$", "# \\1"),
            both("/swap none swap\n", "# /swap none swap\n"),
        ),
        (
            Op::block(&conf, "k8s", "b = 3"),
            both(
                "a = 1\n",
                "a = 1\n# BEGIN graphrun k8s\nb = 3\n# END graphrun k8s\n",
            ),
        ),
        (Op::Absent { path: conf.clone() }, both("a = 1\n", "")),
    ];
    for (op, expected) in cases {
        assert_eq!(
            diff_of(&op, None, true).await,
            (Some(0), expected),
            "{op:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        "a = 1\n",
        "check mode changes nothing"
    );
    assert!(!Path::new(&new).exists());
}

#[tokio::test]
async fn applying_reports_the_change_it_makes_and_then_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let conf = at(dir.path(), "conf", Some("a = 1\n"));
    let op = Op::file(&conf, "a = 2\n");
    assert_eq!(
        diff_of(&op, None, false).await,
        (Some(0), both("a = 1\n", "a = 2\n"))
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "a = 2\n");
    assert_eq!(diff_of(&op, None, false).await, (Some(0), None));
    let line = Op::line(&conf, "a = 2");
    assert_eq!(diff_of(&line, None, true).await, (Some(0), None));
    // Ops that end in `gr_put` report once, not once more from inside it.
    let replace = Op::replace(&conf, "^a = 2$", "a = 3");
    let expected = both("a = 2\n", "a = 3\n");
    assert_eq!(diff_of(&replace, None, false).await, (Some(0), expected));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "a = 3\n");
    let absent = Op::line_absent(&conf, "a = 3");
    assert_eq!(
        diff_of(&absent, None, false).await,
        (Some(0), both("a = 3\n", ""))
    );
}

#[tokio::test]
async fn large_uploads_report_sizes_only() {
    let dir = tempfile::tempdir().unwrap();
    let target = at(dir.path(), "blob", Some("small"));
    let bytes = vec![0u8; DIFF_LIMIT as usize + 1];
    let staged = at(dir.path(), ".blob.graphrun-staged", None);
    std::fs::write(&staged, &bytes).unwrap();
    let op = Op::Upload {
        path: target.clone(),
        source: "unused".into(),
        sha256: None,
        attrs: Attrs::default(),
    };
    assert_eq!(
        diff_of(&op, Some(&Arrival::Staged(staged)), false).await,
        (
            Some(0),
            Some(Contents::TooLarge {
                before: 5,
                after: DIFF_LIMIT + 1
            })
        )
    );
}
