//! Artifacts on the control machine itself (`connection = "local"`), through a mirror on
//! loopback or a local folder: no lab needed.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use super::*;
use crate::support::{assert_exit, files_under, TempPlaybook};

/// A playbook on this machine whose `[artifacts]` table is `artifacts` (its cache inside
/// the playbook's folder) and whose `steps` follow.
fn playbook(artifacts: &str, steps: &str) -> TempPlaybook {
    TempPlaybook::new(&format!(
        "[hosts.local]\nconnection = \"local\"\n\n[artifacts]\ncache = \"cache\"\n{artifacts}\n{steps}"
    ))
}

/// A step putting the artifact at `url` (verified by `checksum_url`) at `path`.
fn step(id: &str, url: &str, checksum_url: &str, path: &Path) -> String {
    format!(
        "[steps.{id}]\nplugin = \"file\"\non = \"local\"\nurl = \"{url}\"\nchecksum_url = \"{checksum_url}\"\npath = \"{}\"\nmode = \"0755\"\n\n",
        path.display()
    )
}

fn graphrun(args: &[&str], playbook: &TempPlaybook) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(args)
        .arg(&playbook.path)
        .output()
        .unwrap()
}

fn cached_files(playbook: &TempPlaybook) -> usize {
    std::fs::read_dir(playbook.dir.path().join("cache/sha256")).map_or(0, |dir| dir.count())
}

#[test]
fn an_artifact_is_downloaded_once_then_served_from_the_cache() {
    let mirror = Mirror::start();
    let bytes = unique_bytes(3 << 20);
    mirror.put(KUBECTL, &bytes);
    mirror.put(&format!("{KUBECTL}.sha256"), sha256_hex(&bytes).as_bytes());
    let out = tempfile::tempdir().unwrap();
    let (a, b) = (out.path().join("a/kubectl"), out.path().join("b/kubectl"));
    let sums = format!("{KUBECTL}.sha256");
    // Two nodes at once want the same artifact: one download between them.
    let playbook = playbook(
        &format!("mirror = \"{}\"", mirror.url()),
        &(step("a", KUBECTL, &sums, &a) + &step("b", KUBECTL, &sums, &b)),
    );
    let first = graphrun(&["apply", "--output", "json"], &playbook);
    assert_exit(&first, 0);
    let ready = ready(&first);
    assert_eq!(ready["origin"], "downloaded");
    assert_eq!(ready["url"], KUBECTL);
    assert_eq!(ready["size_bytes"], bytes.len());
    assert_eq!(ready["sha256"], sha256_hex(&bytes));
    let sent = transfers(&first);
    assert_eq!(sent["a@local"], "sent");
    assert_eq!(sent["b@local"], "sent");
    for target in [&a, &b] {
        assert_eq!(std::fs::read(target).unwrap(), bytes);
        let mode = std::fs::metadata(target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }
    assert_eq!(
        mirror.gets("/dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl"),
        1
    );
    assert_eq!(cached_files(&playbook), 1);
    let cache = std::fs::metadata(playbook.dir.path().join("cache")).unwrap();
    assert_eq!(cache.permissions().mode() & 0o777, 0o700);

    let second = graphrun(&["apply", "--output", "json"], &playbook);
    assert_exit(&second, 0);
    assert_eq!(super::ready(&second)["origin"], "cache");
    let present = transfers(&second);
    assert_eq!(
        present["a@local"], "present",
        "already there: not sent again"
    );
    assert_eq!(present["b@local"], "present");
    // Neither the file nor its checksum file was asked for again.
    assert_eq!(mirror.gets("/kubectl"), 1);
    assert_eq!(mirror.gets("/kubectl.sha256"), 1);
}

#[test]
fn a_checksum_mismatch_is_refused_before_any_upload() {
    let mirror = Mirror::start();
    let bytes = unique_bytes(1 << 20);
    let wrong = "0".repeat(64);
    mirror.put(KUBECTL, &bytes);
    mirror.put(
        &format!("{KUBECTL}.sha256"),
        format!("{wrong}\n").as_bytes(),
    );
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("bin/kubectl");
    let playbook = playbook(
        &format!("mirror = \"{}\"", mirror.url()),
        &step("kubectl", KUBECTL, &format!("{KUBECTL}.sha256"), &target),
    );
    let run = graphrun(&["apply"], &playbook);
    assert_exit(&run, 1);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let expected = format!(
        "checksum mismatch for {KUBECTL} (read from {}/dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl): expected sha256 {wrong}, got {}; nothing was uploaded",
        mirror.url(),
        sha256_hex(&bytes)
    );
    assert!(stdout.contains(&expected), "{stdout}");
    assert!(
        !target.exists() && !target.parent().unwrap().exists(),
        "nothing reached the host"
    );
    assert_eq!(cached_files(&playbook), 0, "a bad file is not cached");
    // The mirror's checksum file is fixed: the next run reads it again.
    mirror.put(&format!("{KUBECTL}.sha256"), sha256_hex(&bytes).as_bytes());
    assert_exit(&graphrun(&["apply"], &playbook), 0);
    assert_eq!(std::fs::read(&target).unwrap(), bytes);
}

#[test]
fn an_air_gapped_site_takes_artifacts_from_a_local_folder() {
    let url = "https://github.com/rancher/rke2/releases/download/v1.31.4%2Brke2r1/rke2.linux-amd64.tar.gz";
    let sums =
        "https://github.com/rancher/rke2/releases/download/v1.31.4%2Brke2r1/sha256sum-amd64.txt";
    let bytes = unique_bytes(200_000);
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("rke2.tar.gz");
    let playbook = playbook("dir = \"artifacts\"", &step("rke2", url, sums, &target));
    let folder = playbook.dir.path().join("artifacts");
    put_in_layout(&folder, url, &bytes);
    let listing = format!(
        "{}  rke2-images.linux-amd64.tar.zst\n{}  rke2.linux-amd64.tar.gz\n",
        "1".repeat(64),
        sha256_hex(&bytes)
    );
    put_in_layout(&folder, sums, listing.as_bytes());
    let run = graphrun(&["apply", "--output", "json"], &playbook);
    assert_exit(&run, 0);
    assert_eq!(ready(&run)["origin"], "folder");
    assert_eq!(transfers(&run)["rke2@local"], "sent");
    assert_eq!(std::fs::read(&target).unwrap(), bytes);
    assert_eq!(
        cached_files(&playbook),
        0,
        "a folder's files are used where they are"
    );
}

#[test]
fn plan_shows_each_artifact_without_downloading_it() {
    let mirror = Mirror::start();
    let bytes = unique_bytes(500_000);
    mirror.put(KUBECTL, &bytes);
    mirror.put(&format!("{KUBECTL}.sha256"), sha256_hex(&bytes).as_bytes());
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("kubectl");
    let playbook = playbook(
        &format!("mirror = \"{}\"", mirror.url()),
        &step("kubectl", KUBECTL, &format!("{KUBECTL}.sha256"), &target),
    );
    let before = graphrun(&["plan"], &playbook);
    assert_exit(&before, 0);
    let text = String::from_utf8_lossy(&before.stdout);
    assert!(
        text.contains(&format!("artifact {KUBECTL}: to download")),
        "{text}"
    );
    assert!(
        text.contains(&format!("~ artifact {KUBECTL} → {}", target.display())),
        "{text}"
    );
    assert!(text.contains("(to upload)"), "{text}");
    assert_eq!(mirror.gets("/kubectl"), 0, "plan downloads nothing");
    assert!(!target.exists());

    let apply = graphrun(&["apply"], &playbook);
    assert_exit(&apply, 0);
    let after = graphrun(&["plan"], &playbook);
    let text = String::from_utf8_lossy(&after.stdout);
    assert!(
        text.contains(&format!("artifact {KUBECTL}: in the cache")),
        "{text}"
    );
    assert!(text.contains("(on the host already)"), "{text}");
}

#[test]
fn mirror_credentials_never_reach_the_output() {
    let mirror = Mirror::start();
    let token = "s3cret-mirror-token";
    let with_credentials = mirror
        .url()
        .replace("http://", &format!("http://deploy:{token}@"));
    let out = tempfile::tempdir().unwrap();
    // Nothing is served at this URL: the error names it, without the credentials.
    let playbook = playbook(
        &format!("mirror = \"{with_credentials}\""),
        &step(
            "kubectl",
            KUBECTL,
            &format!("{KUBECTL}.sha256"),
            &out.path().join("k"),
        ),
    );
    for args in [
        &["apply"][..],
        &["apply", "--output", "json"],
        &["plan", "-v"],
    ] {
        let run = graphrun(args, &playbook);
        assert_exit(&run, 1);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&run.stdout),
            String::from_utf8_lossy(&run.stderr)
        );
        assert!(!all.contains(token), "{all}");
        assert!(
            all.contains(&format!("http://***@127.0.0.1:{}/dl.k8s.io/", mirror.port)),
            "{all}"
        );
        assert!(all.contains("HTTP 404"), "{all}");
    }
    for file in files_under(&playbook.dir.path().join(".graphrun")) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(!text.contains(token), "{}: {text}", file.display());
    }
}

#[test]
fn a_secret_in_an_artifact_url_is_redacted_in_events() {
    let mirror = Mirror::start();
    let bytes = unique_bytes(100_000);
    mirror.put(KUBECTL, &bytes);
    mirror.put(&format!("{KUBECTL}.sha256"), sha256_hex(&bytes).as_bytes());
    let out = tempfile::tempdir().unwrap();
    let token = "url-token-that-is-secret";
    let playbook = playbook(
        &format!(
            "mirror = \"{}\"\n\n[vars]\ntoken = {{ env = \"GRAPHRUN_TEST_URL_TOKEN\" }}\n",
            mirror.url()
        ),
        &step(
            "kubectl",
            &format!("{KUBECTL}?token={{{{ vars.token }}}}"),
            &format!("{KUBECTL}.sha256"),
            &out.path().join("kubectl"),
        ),
    );
    let run = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(["apply", "--output", "json"])
        .arg(&playbook.path)
        .env("GRAPHRUN_TEST_URL_TOKEN", token)
        .output()
        .unwrap();
    assert_exit(&run, 0);
    assert_eq!(ready(&run)["url"], format!("{KUBECTL}?token=***"));
    assert!(!String::from_utf8_lossy(&run.stdout).contains(token));
    assert_eq!(std::fs::read(out.path().join("kubectl")).unwrap(), bytes);
}

/// Sets the modification time of every cached file to `days` ago.
fn age_cache(playbook: &TempPlaybook, days: u64) {
    let at = std::time::SystemTime::now() - std::time::Duration::from_secs(days * 86_400);
    for entry in std::fs::read_dir(playbook.dir.path().join("cache/sha256")).unwrap() {
        std::fs::File::options()
            .write(true)
            .open(entry.unwrap().path())
            .unwrap()
            .set_modified(at)
            .unwrap();
    }
}

#[test]
fn cache_prune_removes_artifacts_no_run_used_for_a_while() {
    let mirror = Mirror::start();
    let bytes = unique_bytes(3 << 20);
    mirror.put(KUBECTL, &bytes);
    mirror.put(&format!("{KUBECTL}.sha256"), sha256_hex(&bytes).as_bytes());
    let out = tempfile::tempdir().unwrap();
    let sums = format!("{KUBECTL}.sha256");
    let playbook = playbook(
        &format!("mirror = \"{}\"", mirror.url()),
        &step("a", KUBECTL, &sums, &out.path().join("kubectl")),
    );
    assert_exit(&graphrun(&["apply"], &playbook), 0);
    let cache = playbook.dir.path().join("cache");
    let prune = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_graphrun"))
            .args(["cache", "prune", "--cache"])
            .arg(&cache)
            .args(args)
            .output()
            .unwrap()
    };

    // Unused for 40 days, then a run uses it: it stays.
    age_cache(&playbook, 40);
    assert_exit(&graphrun(&["apply"], &playbook), 0);
    let kept = prune(&["--unused-for", "30d"]);
    assert_exit(&kept, 0);
    assert_eq!(
        String::from_utf8_lossy(&kept.stdout),
        "removed 0 files (0.0 MiB); 3.0 MiB kept\n"
    );
    assert_eq!(cached_files(&playbook), 1);

    // Unused for 40 days: listed by a dry run, then removed.
    age_cache(&playbook, 40);
    let listed = prune(&["--dry-run"]);
    assert_exit(&listed, 0);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.starts_with("would remove ") && text.contains("(3.0 MiB, unused for 40 days)"),
        "{text}"
    );
    assert_eq!(cached_files(&playbook), 1, "a dry run removes nothing");
    let removed = prune(&[]);
    assert_exit(&removed, 0);
    assert!(String::from_utf8_lossy(&removed.stdout)
        .ends_with("removed 1 file (3.0 MiB); 0.0 MiB kept\n"));
    assert_eq!(cached_files(&playbook), 0);

    // The next run downloads it again.
    assert_exit(&graphrun(&["apply"], &playbook), 0);
    assert_eq!(mirror.gets("/kubectl"), 2);

    let bad = prune(&["--unused-for", "soon"]);
    assert_exit(&bad, 2);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--unused-for"));
}
