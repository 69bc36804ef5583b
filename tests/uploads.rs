//! Uploads over the connection, on a lab host: a re-upload is skipped when the host already
//! has the checksum, and an upload interrupted midway leaves no file at (or beside) the
//! target. Large files are sparse here: reading them costs no disk.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::ssh::{lab, run_id, statuses};

/// A file of `size` zero bytes (sparse).
fn large_file(path: &Path, size: u64) {
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
}

/// One step: the file plugin uploading `source` to `target` on h1.
fn upload_playbook(source: &str, target: &str) -> String {
    format!(
        "[steps.upload]\nplugin = \"file\"\non = \"h1\"\npath = \"{target}\"\nsource = \"{source}\"\nmode = \"0640\"\n"
    )
}

/// How many `upload_progress` events a `--output json` run printed.
fn progress_events(output: &Output) -> usize {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| line.contains("\"upload_progress\""))
        .count()
}

#[test]
fn a_reupload_is_skipped_when_the_host_has_the_checksum() {
    let Some(lab) = lab() else { return };
    let target = format!("/tmp/gr-upload-{}/data.bin", run_id());
    large_file(&lab.dir.path().join("data.bin"), 20 << 20);
    let playbook = lab.playbook("upload.toml", &upload_playbook("data.bin", &target));
    let first = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    assert_eq!(statuses(&first)["upload@h1"], "changed");
    assert!(progress_events(&first) > 0, "the file was sent");
    let size = lab.ssh("h1", &format!("stat -c '%s %a' {target}"));
    assert_eq!(size.trim(), format!("{} 640", 20 << 20));
    let second = lab.graphrun(&["apply", "--output", "json"], &playbook);
    assert_eq!(second.status.code(), Some(0), "{second:?}");
    assert_eq!(statuses(&second)["upload@h1"], "ok");
    assert_eq!(progress_events(&second), 0, "not a byte sent again");
    lab.ssh(
        "h1",
        &format!("rm -rf {}", Path::new(&target).parent().unwrap().display()),
    );
}

#[test]
fn an_interrupted_upload_leaves_no_partial_file() {
    let Some(lab) = lab() else { return };
    let dir = format!("/tmp/gr-upload-{}", run_id());
    let target = format!("{dir}/big.bin");
    large_file(&lab.dir.path().join("big.bin"), 512 << 20);
    let playbook = lab.playbook("big.toml", &upload_playbook("big.bin", &target));
    let mut child = Command::new(env!("CARGO_BIN_EXE_graphrun"))
        .args(["apply", "--output", "json"])
        .arg(&playbook)
        .arg("--inventory")
        .arg(&lab.inventory)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Ctrl-C once the transfer is under way.
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let under_way = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.contains("\"upload_progress\""));
    assert!(under_way, "the upload started");
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(child.wait().unwrap().code(), Some(130), "{rest:?}");
    // The host side notices the cut and removes its temporary file (the target never
    // existed); give it a moment.
    let listing = |what: &str| lab.ssh("h1", &format!("ls -A {dir} 2>/dev/null; echo {what}"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while listing("end") != "end\n" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        listing("end"),
        "end\n",
        "nothing left at or beside {target}"
    );
    lab.ssh("h1", &format!("rm -rf {dir}"));
}
