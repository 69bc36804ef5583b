//! Waiting for a Deployment's rollout to complete, judged as `kubectl rollout status` does.

use std::time::Duration;

use crate::wait::{condition, describe, Progress, Seen};
use crate::{Cluster, Error, ObjectRef};

impl Cluster {
    /// Waits until the Deployment runs its latest spec everywhere: the controller saw the latest
    /// generation, every replica is updated and available, no old replica is left. A rollout
    /// past its progress deadline fails at once instead of waiting out `timeout`.
    pub async fn wait_rollout(
        &self,
        deployment: &ObjectRef,
        timeout: Duration,
        progress: &Progress<'_>,
    ) -> Result<Duration, Error> {
        if deployment.kind != "Deployment" {
            return Err(Error::NoRollout {
                object: Box::new(deployment.clone()),
            });
        }
        self.poll(
            deployment,
            "the rollout to complete",
            timeout,
            progress,
            rollout,
        )
        .await
    }
}

fn rollout(deployment: &serde_json::Value) -> Seen {
    let status = &deployment["status"];
    let count = |field: &str| status[field].as_i64().unwrap_or(0);
    let generation = deployment["metadata"]["generation"].as_i64().unwrap_or(0);
    if count("observedGeneration") < generation {
        return Seen::Pending("the controller has not seen the latest spec yet".into());
    }
    if let Some(progressing) = condition(deployment, "Progressing") {
        if progressing["reason"] == "ProgressDeadlineExceeded" {
            return Seen::Failed(describe(progressing));
        }
    }
    let wanted = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
    let (updated, total, available) = (
        count("updatedReplicas"),
        count("replicas"),
        count("availableReplicas"),
    );
    if updated < wanted {
        Seen::Pending(format!("{updated} of {wanted} replicas updated"))
    } else if total > updated {
        Seen::Pending(format!(
            "{} old replicas pending termination",
            total - updated
        ))
    } else if available < updated {
        Seen::Pending(format!(
            "{available} of {updated} updated replicas available"
        ))
    } else {
        Seen::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(generation: i64, status: serde_json::Value) -> serde_json::Value {
        json!({"metadata": {"generation": generation}, "spec": {"replicas": 3}, "status": status})
    }

    fn pending(seen: Seen) -> String {
        match seen {
            Seen::Pending(what) => what,
            Seen::Done => "done".into(),
            Seen::Failed(why) => format!("failed: {why}"),
        }
    }

    #[test]
    fn a_rollout_is_complete_only_when_every_replica_is_updated_and_available() {
        let seen = |generation, status| pending(rollout(&deployment(generation, status)));
        assert_eq!(
            seen(2, json!({"observedGeneration": 1})),
            "the controller has not seen the latest spec yet"
        );
        assert_eq!(
            seen(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 1, "replicas": 3})
            ),
            "1 of 3 replicas updated"
        );
        assert_eq!(
            seen(
                2,
                json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 4})
            ),
            "1 old replicas pending termination"
        );
        let status = json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3,
                            "availableReplicas": 2});
        assert_eq!(seen(2, status), "2 of 3 updated replicas available");
        let status = json!({"observedGeneration": 2, "updatedReplicas": 3, "replicas": 3,
                            "availableReplicas": 3});
        assert_eq!(seen(2, status), "done");
    }

    #[test]
    fn a_rollout_past_its_progress_deadline_fails() {
        let status = json!({"observedGeneration": 1, "conditions": [{"type": "Progressing",
            "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": "ReplicaSet \"web-1\" has timed out progressing."}]});
        assert_eq!(
            pending(rollout(&deployment(1, status))),
            "failed: status False, reason ProgressDeadlineExceeded: ReplicaSet \"web-1\" has timed out progressing."
        );
    }
}
