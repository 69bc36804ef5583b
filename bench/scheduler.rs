//! The scheduler alone: HOSTS × STEPS nodes on simulated hosts (no I/O), wall time and peak
//! memory. `cargo run --release --example scheduler-bench -- [HOSTS] [STEPS]` (default 1000 × 10).

use std::sync::Arc;
use std::time::Instant;

use graphrun::engine::{execute, Collector, RunOptions};
use graphrun::plugins::Registry;
use graphrun::transport::{MemoryTransport, Simulated, Transport};

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("HOSTS and STEPS are numbers"));
    let hosts = args.next().unwrap_or(1000);
    let steps = args.next().unwrap_or(10);
    let dir = tempfile_dir();
    let path = dir.join("scheduler-bench.toml");
    std::fs::write(&path, playbook(hosts, steps)).expect("write the playbook");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = Instant::now();
    let mut registry = Registry::builtin();
    let playbook = graphrun::playbook::load(&path, None, &mut registry).expect("valid playbook");
    let loaded = started.elapsed();
    let transport = Transport::Memory(MemoryTransport::new(|_, _| Simulated {
        changed: true,
        ..Simulated::default()
    }));
    let options = RunOptions {
        parallel: 256,
        ..RunOptions::default()
    };
    let summary = runtime
        .block_on(execute(
            playbook,
            Arc::new(registry),
            transport,
            options,
            Arc::new(Collector::default()),
            std::future::pending(),
        ))
        .expect("run");
    let total = started.elapsed();
    assert_eq!(summary.exit_code, 0);
    println!(
        "nodes {}  load+validate {:.3}s  total {:.3}s  peak RSS {:.1} MB",
        hosts * steps,
        loaded.as_secs_f64(),
        total.as_secs_f64(),
        peak_rss_mb()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A chain of STEPS file steps on HOSTS hosts (each step needs the one before, per host).
fn playbook(hosts: usize, steps: usize) -> String {
    let mut text = String::new();
    for h in 0..hosts {
        text.push_str(&format!(
            "[hosts.h{h}]\naddress = \"10.1.{}.{}\"\n",
            h / 250,
            h % 250 + 1
        ));
    }
    for s in 0..steps {
        let needs = if s == 0 {
            String::new()
        } else {
            format!("needs = [\"s{}\"]\n", s - 1)
        };
        text.push_str(&format!("[steps.s{s}]\nplugin = \"file\"\n{needs}path = \"/tmp/{{{{ host.name }}}}/f{s}\"\nline = \"x\"\n"));
    }
    text
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("graphrun-scheduler-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
