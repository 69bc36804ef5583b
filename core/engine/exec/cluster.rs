//! The cluster executor: Kubernetes ops and probes, carried out from this machine with the
//! kube client of the op's kubeconfig (see `clients.rs`). `plan` asks the server for a dry run
//! of each apply and shows the object, Secret values hidden, as a diff against the live one.

use std::path::Path;
use std::time::Duration;

use graphrun_kube::{redacted, Condition, ObjectRef};
use graphrun_plugin_api::{KubeRef, Op, ProbeQuery, ProbeResult, Wait};

pub(crate) use super::clients::Clusters;
use super::OpResult;
use crate::engine::events::{Event, Mode, NodeStatus, OpStatus};
use crate::engine::node::{Failure, Names};
use crate::engine::run::RunContext;
use crate::transport::script::Contents;
use crate::transport::Lease;

/// Runs Kubernetes ops in order (stopping at the first failure). `plan` runs applies as dry
/// runs and leaves waits out (what they wait for is not there yet).
pub(super) async fn run(
    cx: &RunContext,
    names: &Names<'_>,
    session: &Lease,
    ops: &[Op],
    check_mode: bool,
) -> Vec<OpResult> {
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        let result = match op {
            Op::KubeApply {
                kubeconfig,
                object,
                dry_run,
            } => apply(cx, session, kubeconfig, object, check_mode || *dry_run).await,
            Op::KubeWait { .. } if check_mode => OpResult::not_run(),
            Op::KubeWait {
                kubeconfig,
                target,
                wait,
                timeout_secs,
            } => {
                let timeout = Duration::from_secs(*timeout_secs);
                let waiting = Waiting { cx, names, op };
                waiting
                    .run(session, kubeconfig, target, wait, timeout)
                    .await
            }
            other => OpResult::failed(&format!("`{}` is not a Kubernetes op", other.summary())),
        };
        let failed = result.status == OpStatus::Failed;
        results.push(result);
        if failed {
            break;
        }
    }
    results
}

/// Answers a Kubernetes probe: an object (exit code 0, its JSON; 1 when it does not exist) or
/// the server's version. Failing to reach the cluster fails the node.
pub(super) async fn probe(
    cx: &RunContext,
    session: &Lease,
    query: &ProbeQuery,
) -> Result<ProbeResult, Failure> {
    let failed = |message: String| (NodeStatus::Failed, message);
    let (kubeconfig, target) = match query {
        ProbeQuery::KubeGet { kubeconfig, target } => (kubeconfig, Some(target)),
        ProbeQuery::KubeVersion { kubeconfig } => (kubeconfig, None),
        other => return Err(failed(format!("unknown probe {other:?}: update graphrun"))),
    };
    let cluster = cx
        .clusters
        .client(kubeconfig, session)
        .await
        .map_err(failed)?;
    let found = match target {
        Some(target) => cluster.get(&object_ref(target)).await,
        None => cluster.version().await.map(Some),
    }
    .map_err(|e| failed(e.to_string()))?;
    Ok(match found {
        Some(json) => ProbeResult {
            exit_code: 0,
            stdout: json.to_string(),
            stderr: String::new(),
        },
        None => ProbeResult {
            exit_code: 1,
            ..ProbeResult::default()
        },
    })
}

/// A server-side apply, or in `plan` (and for a dry-run op) a server-side dry run of it. It
/// changes (would change) something when the object the server keeps differs from the one it
/// had, or there was none: bookkeeping of the server's own (managed fields, versions) does not
/// count. `plan` and `apply --diff` show what differs, Secret values hidden.
async fn apply(
    cx: &RunContext,
    session: &Lease,
    kubeconfig: &str,
    object: &serde_json::Value,
    dry_run: bool,
) -> OpResult {
    let name = KubeRef::of(object).map_or_else(|| "object".to_string(), |r| r.to_string());
    let check_mode = cx.mode == Mode::Plan;
    if check_mode && !Path::new(kubeconfig).exists() {
        // The cluster step that writes it has not run: its own plan says so.
        let diff = format!("{kubeconfig} does not exist yet: {name} is applied once it does");
        return done(OpStatus::WouldChange, Some(diff));
    }
    let cluster = match cx.clusters.client(kubeconfig, session).await {
        Ok(cluster) => cluster,
        Err(err) => return OpResult::failed(&err),
    };
    let applied = if dry_run {
        cluster.dry_run_apply(object).await
    } else {
        cluster.apply(object).await
    };
    let applied = match applied {
        Ok(applied) => applied,
        Err(err) => return OpResult::failed(&err.to_string()),
    };
    let before = applied.before.as_ref().map(shown).unwrap_or_default();
    let after = shown(&applied.after);
    if before == after {
        return done(OpStatus::Ok, None);
    }
    let status = match (dry_run, check_mode) {
        (false, _) => OpStatus::Changed,
        (true, true) => OpStatus::WouldChange,
        // A dry-run op in `apply` only looks.
        (true, false) => OpStatus::Ok,
    };
    let diff = (check_mode || cx.diff).then(|| {
        let contents = Contents::Both {
            before: before.into_bytes(),
            after: after.into_bytes(),
        };
        crate::engine::diff::describe(&name, &contents, &cx.redactor)
    });
    done(status, diff)
}

/// An object as a plan shows it: YAML, Secret values hidden, without what the server keeps
/// for itself (status, managed fields, versions, timestamps), so that only what an apply
/// changes differs.
fn shown(object: &serde_json::Value) -> String {
    let mut object = redacted(object);
    if let Some(fields) = object.as_object_mut() {
        fields.remove("status");
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        for field in [
            "managedFields",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "uid",
        ] {
            metadata.remove(field);
        }
    }
    serde_yaml_ng::to_string(&object).unwrap_or_else(|_| object.to_string())
}

/// A wait, reporting what it sees as it goes.
struct Waiting<'a> {
    cx: &'a RunContext,
    names: &'a Names<'a>,
    op: &'a Op,
}

impl Waiting<'_> {
    async fn run(
        &self,
        session: &Lease,
        kubeconfig: &str,
        target: &KubeRef,
        wait: &Wait,
        timeout: Duration,
    ) -> OpResult {
        let cluster = match self.cx.clusters.client(kubeconfig, session).await {
            Ok(cluster) => cluster,
            Err(err) => return OpResult::failed(&err),
        };
        let object = object_ref(target);
        let progress = |seen: &str| self.report(seen);
        let waited = match wait {
            Wait::Condition { condition } => {
                let wanted = Condition::new(object, condition);
                cluster.wait(&wanted, timeout, &progress).await
            }
            Wait::Rollout => cluster.wait_rollout(&object, timeout, &progress).await,
        };
        match waited {
            Ok(_) => done(OpStatus::Ok, None),
            Err(err) => OpResult::failed(&err.to_string()),
        }
    }

    fn report(&self, seen: &str) {
        let redactor = &self.cx.redactor;
        self.cx.reporter.event(&Event::WaitProgress {
            node: self.names.node.to_string(),
            host: self.names.host.to_string(),
            op: redactor.redact(&self.op.summary()),
            seen: redactor.redact(seen),
        });
    }
}

fn done(status: OpStatus, diff: Option<String>) -> OpResult {
    OpResult {
        status,
        diff,
        ..OpResult::not_run()
    }
}

fn object_ref(target: &KubeRef) -> ObjectRef {
    ObjectRef::new(
        &target.api_version,
        &target.kind,
        target.namespace.as_deref(),
        &target.name,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_shown_object_leaves_out_the_servers_bookkeeping_and_secret_values() {
        let live = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "t", "resourceVersion": "7", "uid": "u", "generation": 2,
                         "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [{}]},
            "data": {"password": "aHVudGVyMg=="}, "status": {"x": 1}});
        assert_eq!(
            shown(&live),
            "apiVersion: v1\ndata:\n  password: '***'\nkind: Secret\nmetadata:\n  name: t\n"
        );
        let mut later = live.clone();
        later["metadata"]["resourceVersion"] = json!("8");
        assert_eq!(
            shown(&live),
            shown(&later),
            "a new version alone is no change"
        );
    }
}
