//! Waiting for an object's condition: node Ready, Deployment Available, CRD Established, ...

use std::time::{Duration, Instant};

use crate::{Cluster, Error, ObjectRef};

/// How often the object is read while waiting. Kubernetes conditions change on the order of
/// seconds; half a second keeps the wait short without loading the API server.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// `object`'s `.status.conditions[type == condition].status` is "True".
#[derive(Clone, Debug)]
pub struct Condition {
    pub object: ObjectRef,
    /// The condition's type, e.g. `Ready`, `Available`, `Established`.
    pub condition: String,
}

impl Condition {
    pub fn new(object: ObjectRef, condition: &str) -> Self {
        Condition {
            object,
            condition: condition.to_string(),
        }
    }
}

/// Hears, while a wait goes on, what was seen last each time it changes ("status False,
/// reason MinimumReplicasUnavailable: ...", "2 of 3 replicas updated").
pub type Progress<'a> = dyn Fn(&str) + Send + Sync + 'a;

/// What one look at the object says.
pub(crate) enum Seen {
    Done,
    /// Not yet: what is missing.
    Pending(String),
    /// It will not get there by itself (e.g. a rollout past its progress deadline).
    Failed(String),
}

impl Cluster {
    /// Waits until the condition is True (an object that does not exist yet is waited for too),
    /// at most `timeout`; returns how long it took. A timeout says what was seen last;
    /// `progress` hears what is seen each time it changes.
    pub async fn wait(
        &self,
        wanted: &Condition,
        timeout: Duration,
        progress: &Progress<'_>,
    ) -> Result<Duration, Error> {
        let waiting_for = format!("{} to be True", wanted.condition);
        self.poll(
            &wanted.object,
            &waiting_for,
            timeout,
            progress,
            |object| match condition(object, &wanted.condition) {
                Some(found) if found["status"] == "True" => Seen::Done,
                Some(found) => Seen::Pending(describe(found)),
                None => Seen::Pending(format!("no {} condition yet", wanted.condition)),
            },
        )
        .await
    }

    /// Reads `object` every POLL_INTERVAL until `look` says it is done or failed, at most
    /// `timeout`.
    pub(crate) async fn poll(
        &self,
        object: &ObjectRef,
        waiting_for: &str,
        timeout: Duration,
        progress: &Progress<'_>,
        look: impl Fn(&serde_json::Value) -> Seen,
    ) -> Result<Duration, Error> {
        let started = Instant::now();
        let mut told = String::new();
        loop {
            let last = match self.get(object).await? {
                None => "the object does not exist".to_string(),
                Some(found) => match look(&found) {
                    Seen::Done => return Ok(started.elapsed()),
                    Seen::Pending(what) => what,
                    Seen::Failed(why) => {
                        return Err(Error::Failed {
                            object: Box::new(object.clone()),
                            waiting_for: waiting_for.to_string(),
                            why,
                        })
                    }
                },
            };
            if last != told {
                progress(&last);
                told = last.clone();
            }
            if started.elapsed() + POLL_INTERVAL > timeout {
                return Err(Error::Timeout {
                    object: Box::new(object.clone()),
                    waiting_for: waiting_for.to_string(),
                    waited: started.elapsed(),
                    last,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

pub(crate) fn condition<'a>(
    object: &'a serde_json::Value,
    kind: &str,
) -> Option<&'a serde_json::Value> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|condition| condition["type"] == kind)
}

/// "status False, reason MinimumReplicasUnavailable: Deployment does not have minimum availability."
pub(crate) fn describe(condition: &serde_json::Value) -> String {
    let field = |name: &str| condition[name].as_str().unwrap_or("").to_string();
    let mut text = format!("status {}", field("status"));
    if !field("reason").is_empty() {
        text += &format!(", reason {}", field("reason"));
    }
    if !field("message").is_empty() {
        text += &format!(": {}", field("message"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_condition_is_found_by_type_and_described_for_a_timeout() {
        let deployment = json!({"status": {"conditions": [
            {"type": "Progressing", "status": "True"},
            {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
             "message": "Deployment does not have minimum availability."}
        ]}});
        let available = condition(&deployment, "Available").unwrap();
        assert_eq!(
            describe(available),
            "status False, reason MinimumReplicasUnavailable: Deployment does not have minimum availability."
        );
        assert!(condition(&deployment, "Ready").is_none());
        assert!(condition(&json!({"status": {}}), "Ready").is_none());
    }
}
