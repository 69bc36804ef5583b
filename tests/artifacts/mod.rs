//! Artifacts: files the control machine downloads once per run (through a mirror, or from a
//! local folder), verifies and uploads only where the host's copy differs. The mirror is a
//! real HTTP server (python3's http.server) on loopback, or on a lab host for the SSH test.

mod lab;
mod local;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use crate::support::events;

/// An upstream URL and its checksum file (dl.k8s.io's layout: a lone hash beside the file).
pub(crate) const KUBECTL: &str = "https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl";

/// An HTTP server on loopback serving a folder in upstream layout (`HOST/PATH`); its request
/// log is kept to count downloads.
pub(crate) struct Mirror {
    child: Child,
    pub(crate) root: tempfile::TempDir,
    pub(crate) port: u16,
    log: Arc<Mutex<String>>,
}

impl Mirror {
    pub(crate) fn start() -> Mirror {
        let root = tempfile::tempdir().unwrap();
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .arg("--directory")
            .arg(root.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 serves the test mirror");
        let mut banner = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut banner)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 41234 (http://127.0.0.1:41234/) ..."
        let port = banner
            .split_whitespace()
            .skip_while(|word| *word != "port")
            .nth(1)
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {banner:?}"));
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut chunk) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&chunk[..n]));
            }
        });
        Mirror {
            child,
            root,
            port,
            log,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Serves `bytes` as the mirror's copy of the upstream `url`.
    pub(crate) fn put(&self, url: &str, bytes: &[u8]) {
        put_in_layout(self.root.path(), url, bytes);
    }

    /// How many GET requests asked for a path ending in `suffix`.
    pub(crate) fn gets(&self, suffix: &str) -> usize {
        let needle = format!("{suffix} HTTP/");
        self.log
            .lock()
            .unwrap()
            .lines()
            .filter(|line| line.contains("\"GET ") && line.contains(&needle))
            .count()
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `bytes` under `root` where the upstream `url` maps to (`HOST/PATH`, %-escapes
/// decoded as files are named).
pub(crate) fn put_in_layout(root: &Path, url: &str, bytes: &[u8]) {
    let relative = url.split_once("://").unwrap().1.replace("%2B", "+");
    let path = root.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// Bytes that differ from run to run (so no cache of another test has them).
pub(crate) fn unique_bytes(size: usize) -> Vec<u8> {
    let seed = crate::ssh::run_id();
    let mut bytes = seed.into_bytes();
    let mut state = bytes
        .iter()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(*b as u64));
    while bytes.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(size);
    bytes
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `transfer` of every upload/artifact op, by node.
pub(crate) fn transfers(output: &Output) -> std::collections::BTreeMap<String, String> {
    events(output, "op_finished")
        .filter_map(|event| {
            let transfer = event["transfer"].as_str()?;
            Some((event["node"].as_str()?.to_string(), transfer.to_string()))
        })
        .collect()
}

/// The one `artifact_ready` event of a run.
pub(crate) fn ready(output: &Output) -> serde_json::Value {
    let ready: Vec<_> = events(output, "artifact_ready").collect();
    assert_eq!(ready.len(), 1, "one artifact, made ready once: {ready:?}");
    ready[0].clone()
}
