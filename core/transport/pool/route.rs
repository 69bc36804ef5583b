//! Which of its host's shells runs a node's batch. A batch goes to an idle shell, or is queued
//! behind the batches of a busy one: the many short steps cost neither a new shell nor a round
//! trip. Only when the batch running ahead of it has kept that shell busy for much longer than
//! its batches typically take (see [`patience`]) does the batch move on: to an idle shell, or
//! to a new one, up to `--per-host` shells; the claim each batch carries (see `shell.rs`) makes
//! exactly one shell run it. So nodes that do not depend on each other still run side by side
//! when they take long.

use std::sync::Arc;
use std::time::Duration;

use graphrun_plugin_api::shell::quote;
use tokio::time::Instant;

use super::Slot;
use crate::transport::batch::{Answer, Request};
use crate::transport::process::Feed;
use crate::transport::shell::ShellSession;

/// The least and the most [`patience`] gives: short steps take a few milliseconds, so a step
/// that runs 50 ms is likely to run much longer; the most bounds what a long step costs the
/// batches queued behind it.
const PATIENCE: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(400));

/// How long the batch at the front of `shell` may run before the batches queued behind it
/// look for another shell: eight times what its batches typically take, within [`PATIENCE`].
/// On a busy machine short batches take longer, and opening shells for them would only add
/// to the load.
fn patience(shell: &ShellSession) -> Duration {
    let (least, most) = PATIENCE;
    shell
        .typical()
        .map_or(least, |t| (t * 8).clamp(least, most))
}

/// A batch on its way; dropped before its answer (the node was stopped, e.g. by its timeout),
/// it stops the shell running it, whose state is then unknown (see [`Slot::cancel`]).
struct InFlight {
    slot: Arc<Slot>,
    request: Arc<Request>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.request.is_answered() {
            self.slot.cancel(&self.request);
        }
    }
}

impl Slot {
    /// Runs compiled op snippets on one of the host's shells (see the module's policy).
    pub async fn run(self: &Arc<Self>, snippets: &[String], check_mode: bool) -> Answer {
        if snippets.is_empty() {
            return Ok(Vec::new());
        }
        let (request, mut answer) = Request::new(snippets, check_mode);
        let _in_flight = InFlight {
            slot: self.clone(),
            request: request.clone(),
        };
        self.place(&request).await?;
        let rescue = async {
            // After a rescue that found no shell, the next waits a while (no busy loop).
            let mut not_before = Instant::now();
            loop {
                sleep_until(self.stuck_at(&request).map(|at| at.max(not_before))).await;
                self.rescue(&request).await;
                not_before = Instant::now() + PATIENCE.0;
            }
        };
        // The answer wins even over a rescue under way (e.g. a shell still opening).
        tokio::select! {
            reply = &mut answer => reply.unwrap_or_else(|_| Err("the connection was lost".into())),
            never = rescue => never,
        }
    }

    /// Writes `request` to an idle shell, or else behind the fewest batches.
    async fn place(&self, request: &Arc<Request>) -> Result<(), String> {
        self.first_shell().await?;
        let shell = self
            .live_shells()
            .into_iter()
            .min_by_key(|shell| shell.load())
            .ok_or("the connection was lost")?;
        shell.submit(request).await
    }

    /// When `request` should look for another shell: when the batch running ahead of it will
    /// have run for the shell's [`patience`]. `None` while it runs. A batch that no live shell
    /// holds (its shell was stopped and it is on its way to another) looks again soon.
    fn stuck_at(&self, request: &Arc<Request>) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for shell in self.live_shells() {
            match shell.position(request) {
                Some(0) => return None,
                Some(_) => {
                    let since = shell.front_since().unwrap_or_else(Instant::now);
                    let at = since + patience(&shell);
                    earliest = Some(earliest.map_or(at, |e| e.min(at)));
                }
                None => {}
            }
        }
        Some(earliest.unwrap_or_else(|| Instant::now() + PATIENCE.0))
    }

    /// Sends a stuck `request` to an idle shell, or to a new one while the host has fewer
    /// than `--per-host`; the claim lets exactly one of its shells run it. With neither, it
    /// keeps its place and tries again later.
    async fn rescue(&self, request: &Arc<Request>) {
        match self.stuck_at(request) {
            Some(at) if at <= Instant::now() => {}
            _ => return,
        }
        let idle = |shells: Vec<Arc<ShellSession>>| {
            shells
                .into_iter()
                .find(|shell| shell.is_idle() && shell.position(request).is_none())
        };
        let shell = match idle(self.live_shells()) {
            Some(shell) => shell,
            None => {
                let _opening = self.opening.lock().await;
                let shells = self.live_shells();
                match idle(shells.clone()) {
                    Some(shell) => shell,
                    None if shells.len() < self.most => match self.open_shell().await {
                        Ok(shell) => {
                            let shell = Arc::new(shell);
                            self.shells.lock().expect("shells lock").push(shell.clone());
                            shell
                        }
                        // Not this batch's failure: it still has its place in a live shell.
                        Err(_) => return,
                    },
                    None => return,
                }
            }
        };
        if !request.is_answered() {
            let _ = shell.submit(request).await;
        }
    }

    /// Stops `request` after its node let go of it: a shell running it is killed (what it is
    /// doing is unknown), and the other nodes' batches queued behind it go to other shells; a
    /// copy that has not started is claimed away so that it never runs.
    fn cancel(self: &Arc<Self>, request: &Arc<Request>) {
        let mut orphans = Vec::new();
        let mut waiting = false;
        for shell in self.live_shells() {
            match shell.position(request) {
                Some(0) => orphans.extend(shell.abandon("the step was stopped")),
                Some(_) => waiting = true,
                None => {}
            }
        }
        orphans.retain(|orphan| !Arc::ptr_eq(orphan, request));
        let claim = request.claim().filter(|_| waiting);
        if orphans.is_empty() && claim.is_none() {
            return;
        }
        // At the runtime's shutdown nothing is left to save.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let slot = self.clone();
        runtime.spawn(async move {
            if let Some(claim) = claim {
                slot.claim_away(&claim).await;
            }
            for orphan in orphans {
                if let Err(reason) = slot.place(&orphan).await {
                    orphan.answer(Err(reason));
                }
            }
        });
    }

    /// Takes a batch's claim on the host in a session of its own, so no shell runs it.
    async fn claim_away(&self, claim: &str) {
        let script = format!("set -C; : >{}", quote(claim));
        if let Ok(process) = self.spawn_script(&script, Feed::Pipe).await {
            process.handle.wait(Duration::from_secs(10)).await;
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
