//! The pool's policy with real local shells: short batches share a shell, a batch stuck behind
//! a long one moves to another (never beyond `--per-host`), and a stopped batch neither runs
//! later nor takes its neighbours' answers with it. Each op prints `$$`, the pid of the shell
//! that ran it (a subshell keeps its parent's `$$`).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use graphrun_plugin_api::{Op, Run};

use super::{Connections, Transport};
use crate::playbook::{Connection, ConnectionKind, Host, HostKeyChecking};

fn local_host() -> Host {
    Host {
        name: "control".into(),
        address: "localhost".into(),
        groups: Vec::new(),
        vars: Default::default(),
        connection: Connection {
            kind: ConnectionKind::Local,
            user: None,
            port: None,
            identity_file: None,
            known_hosts_file: None,
            host_key_checking: HostKeyChecking::AcceptNew,
            become_root: false,
            become_password: None,
            connect_timeout: Duration::from_secs(5),
            jump: None,
        },
    }
}

fn connections(per_host: usize) -> Arc<Connections> {
    Arc::new(Connections::new(Transport::Real, &[local_host()], per_host).unwrap())
}

/// Runs `script` on the host; returns the pid of the shell that ran it (its last output line).
async fn shell_pid(connections: &Connections, script: &str) -> String {
    let lease = connections.session("control").await.unwrap();
    let op = Op::check(Run::Shell(format!("{script}; echo $$")));
    let frames = lease
        .run(&[op], &HashMap::new(), false, false)
        .await
        .unwrap();
    assert_eq!(frames[0].exit_code, Some(0), "{frames:?}");
    let stdout = String::from_utf8_lossy(&frames[0].stdout).into_owned();
    stdout.lines().last().unwrap_or_default().to_string()
}

#[tokio::test]
async fn short_batches_share_one_shell_instead_of_one_each() {
    let pool = connections(10);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let pool = pool.clone();
        tasks.spawn(async move { shell_pid(&pool, "true").await });
    }
    let pids: BTreeSet<String> = tasks.join_all().await.into_iter().collect();
    // One shell, unless a loaded machine held one batch up for long enough to look stuck;
    // one shell per batch (10) is what a pool without pipelining opens.
    assert!(pids.len() <= 3, "{pids:?}");
    pool.close(false).await;
}

#[tokio::test]
async fn a_batch_stuck_behind_a_long_one_moves_to_another_shell() {
    let pool = connections(2);
    let long = {
        let pool = pool.clone();
        tokio::spawn(async move { shell_pid(&pool, "sleep 2").await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let short = shell_pid(&pool, "true").await;
    assert!(
        !long.is_finished(),
        "the short batch did not wait for the long one"
    );
    assert_ne!(long.await.unwrap(), short);
    pool.close(false).await;
}

#[tokio::test]
async fn per_host_one_keeps_a_stuck_batch_in_its_queue() {
    let pool = connections(1);
    let long = {
        let pool = pool.clone();
        tokio::spawn(async move { shell_pid(&pool, "sleep 0.5").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let short = shell_pid(&pool, "true").await;
    assert!(
        long.is_finished(),
        "one shell: the short batch ran after the long one"
    );
    assert_eq!(long.await.unwrap(), short);
    pool.close(false).await;
}

#[tokio::test]
async fn a_stopped_batch_that_had_not_started_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let pool = connections(1);
    let long = {
        let pool = pool.clone();
        tokio::spawn(async move { shell_pid(&pool, "sleep 1").await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Queued behind the long batch (one shell), then stopped as a timeout stops a node.
    let touch = format!("touch {}", marker.display());
    let stopped = shell_pid(&pool, &touch);
    assert!(tokio::time::timeout(Duration::from_millis(200), stopped)
        .await
        .is_err());
    let pid = long.await.unwrap();
    // The shell has gone past the stopped batch: the next one runs in the same shell.
    assert_eq!(shell_pid(&pool, "true").await, pid);
    assert!(!marker.exists(), "the stopped batch ran");
    pool.close(false).await;
}

#[tokio::test]
async fn stopping_a_running_batch_kills_its_shell_and_spares_the_batches_behind_it() {
    let pool = connections(2);
    let running = shell_pid(&pool, "sleep 30");
    let behind = {
        let pool = pool.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            shell_pid(&pool, "true").await
        })
    };
    assert!(tokio::time::timeout(Duration::from_millis(150), running)
        .await
        .is_err());
    // Answered by another shell, whether it had moved there already or not.
    let spared = behind.await.unwrap();
    assert_eq!(shell_pid(&pool, "true").await, spared);
    pool.close(false).await;
}
