//! Rollout health of Deployments and StatefulSets, and waiting for it.
//!
//! Rolled out = the controller has seen the latest spec (observedGeneration ≥
//! generation) and updated == available (ready for StatefulSets) == desired
//! replicas, with no old replicas left. A Deployment whose Progressing
//! condition says ProgressDeadlineExceeded (for the observed spec) has failed
//! and is not waited for. A failure or a timeout names the condition and,
//! when the API server has Events, the last ones of the object's pods.

use super::cluster::{CONCURRENCY, Cluster};
use super::kinds::{KindInfo, ObjectKey};
use anyhow::{Result, bail};
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::ListParams;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "message", rename_all = "lowercase")]
pub enum Health {
    Ready,
    Progressing(String),
    Failed(String),
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Health::Ready => write!(f, "ready"),
            Health::Progressing(m) => write!(f, "progressing: {m}"),
            Health::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// Health of a live Deployment or StatefulSet.
///
/// Nothing in `status` counts before the controller has observed the current
/// spec (observedGeneration ≥ generation), as `kubectl rollout status` and
/// kstatus read it: right after a new spec is applied, the old status (even a
/// ProgressDeadlineExceeded of the previous spec) describes the old one.
pub fn health(live: &Value) -> Health {
    let kind = live.get("kind").and_then(Value::as_str).unwrap_or_default();
    let generation = int(live, "/metadata/generation").unwrap_or(0);
    let observed = int(live, "/status/observedGeneration").unwrap_or(0);
    if observed < generation {
        return Health::Progressing(format!(
            "waiting for the controller to observe generation {generation} (observed {observed})"
        ));
    }
    if let Some(progressing) = condition(live, "Progressing")
        && progressing.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
    {
        let message = progressing
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("progress deadline exceeded");
        return Health::Failed(format!("ProgressDeadlineExceeded: {message}"));
    }
    let desired = int(live, "/spec/replicas").unwrap_or(1);
    let updated = int(live, "/status/updatedReplicas").unwrap_or(0);
    let current = int(live, "/status/replicas").unwrap_or(0);
    let available = if kind == "StatefulSet" {
        int(live, "/status/readyReplicas").unwrap_or(0)
    } else {
        int(live, "/status/availableReplicas").unwrap_or(0)
    };
    if updated < desired {
        return Health::Progressing(format!("{updated} of {desired} updated replicas"));
    }
    if current > updated {
        return Health::Progressing(format!(
            "{} old replicas pending termination",
            current - updated
        ));
    }
    if available < desired {
        let hint = condition(live, "Available")
            .and_then(|c| c.get("message"))
            .and_then(Value::as_str)
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        return Health::Progressing(format!(
            "{available} of {desired} updated replicas available{hint}"
        ));
    }
    Health::Ready
}

/// Waiting for rollouts of one owner's workloads.
pub struct Waiter<'a> {
    pub cluster: &'a Cluster,
    /// Selects the owner's members (one LIST per kind when many are pending).
    pub selector: String,
    pub timeout: Duration,
}

impl Waiter<'_> {
    /// Wait until every object in `keys` is rolled out; fail naming the
    /// object and its condition on a failed rollout or at the timeout.
    /// `known` holds health already read (objects this sync did not write):
    /// those are not read again unless they are not ready yet.
    pub async fn wait(&self, keys: &[ObjectKey], known: &HashMap<ObjectKey, Health>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let bar = crate::cli::verbosity::progress_bar(keys.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} rollout {pos}/{len} ready {wide_msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let started = Instant::now();
        let (mut states, mut pending): (Vec<(ObjectKey, Health)>, Vec<ObjectKey>) =
            (Vec::new(), Vec::new());
        for key in keys {
            match known.get(key) {
                Some(Health::Ready) => states.push((key.clone(), Health::Ready)),
                _ => pending.push(key.clone()),
            }
        }
        let mut pause = Duration::from_millis(100);
        loop {
            states.retain(|(_, h)| *h == Health::Ready);
            states.extend(self.read_states(&pending).await?);
            if let Some((key, Health::Failed(message))) =
                states.iter().find(|(_, h)| matches!(h, Health::Failed(_)))
            {
                bar.finish_and_clear();
                let events = self.pod_events(&[key]).await;
                bail!("rollout of {key} failed: {message}{events}");
            }
            pending = states
                .iter()
                .filter(|(_, h)| *h != Health::Ready)
                .map(|(k, _)| k.clone())
                .collect();
            pending.sort();
            // All ready: finish at once, so that no frame shows `n/n ready waiting for …`.
            let Some(first) = pending.first() else {
                bar.finish_with_message("done");
                return Ok(());
            };
            bar.set_message(format!(
                "waiting for {first}{}",
                if pending.len() > 1 { " …" } else { "" }
            ));
            bar.set_position((keys.len() - pending.len()) as u64);
            if started.elapsed() >= self.timeout {
                bar.finish_and_clear();
                let stuck: Vec<&(ObjectKey, Health)> =
                    states.iter().filter(|(_, h)| *h != Health::Ready).collect();
                let keys: Vec<&ObjectKey> = stuck.iter().map(|(k, _)| k).collect();
                let events = self.pod_events(&keys).await;
                let stuck: Vec<String> = stuck.iter().map(|(k, h)| format!("{k} ({h})")).collect();
                bail!(
                    "rollout not finished after {}s: {}{events}",
                    self.timeout.as_secs(),
                    stuck.join(", ")
                );
            }
            tokio::time::sleep(pause.min(self.timeout.saturating_sub(started.elapsed()))).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// Health of each of `keys`: one LIST per kind and namespace when many
    /// are pending (a first sync of many Deployments), a GET each when few.
    async fn read_states(&self, keys: &[ObjectKey]) -> Result<Vec<(ObjectKey, Health)>> {
        let cluster = self.cluster;
        let mut groups: BTreeMap<(&str, &str), Vec<&ObjectKey>> = BTreeMap::new();
        for key in keys {
            groups
                .entry((key.kind.as_str(), key.namespace.as_str()))
                .or_default()
                .push(key);
        }
        let mut states = Vec::with_capacity(keys.len());
        let mut singles: Vec<&ObjectKey> = Vec::new();
        for ((kind, namespace), group) in groups {
            if group.len() < LIST_FROM {
                singles.extend(group);
                continue;
            }
            let info = group[0].info().expect("rollout kinds are known");
            let listed = cluster
                .list_values(
                    info,
                    namespace,
                    &ListParams::default().labels(&self.selector),
                )
                .await
                .map_err(|e| cluster.explain(&format!("listing {}", info.plural), e))?;
            let mut by_name: BTreeMap<String, Value> = BTreeMap::new();
            for mut value in listed {
                let name = value
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                value["kind"] = Value::String(kind.to_string());
                by_name.insert(name, value);
            }
            for key in group {
                match by_name.get(&key.name) {
                    Some(value) => states.push((key.clone(), health(value))),
                    None => singles.push(key),
                }
            }
        }
        let read: Vec<(ObjectKey, Health)> = stream::iter(singles)
            .map(|key| async move {
                let kind = key.info().expect("rollout kinds are known");
                let mut value = cluster
                    .get_value(kind, &key.namespace, &key.name)
                    .await
                    .map_err(|e| cluster.explain(&format!("reading {key}"), e))?;
                value["kind"] = Value::String(key.kind.clone());
                anyhow::Ok((key.clone(), health(&value)))
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        states.extend(read);
        Ok(states)
    }
}

/// core/v1 Events, read only to explain a failed rollout.
const EVENTS: KindInfo = KindInfo {
    kind: "Event",
    group: "",
    version: "v1",
    plural: "events",
    namespaced: true,
    stage: 0,
};

/// How many of a workload's latest pod events a failure shows.
const LAST_EVENTS: usize = 3;

impl Waiter<'_> {
    /// `; last pod events: …` for the pods of `keys` (named `<workload>-…`),
    /// or nothing when the server has no such Events or cannot list them:
    /// the condition alone then explains the failure.
    async fn pod_events(&self, keys: &[&ObjectKey]) -> String {
        let mut lines = Vec::new();
        let namespaces: std::collections::BTreeSet<&str> =
            keys.iter().map(|k| k.namespace.as_str()).collect();
        for namespace in namespaces {
            let params = ListParams::default().fields("involvedObject.kind=Pod");
            let Ok(events) = self.cluster.list_values(&EVENTS, namespace, &params).await else {
                continue;
            };
            for key in keys.iter().filter(|k| k.namespace == namespace) {
                lines.extend(last_events(&events, &key.name));
            }
        }
        if lines.is_empty() {
            String::new()
        } else {
            format!("; last pod events: {}", lines.join("; "))
        }
    }
}

/// The latest [`LAST_EVENTS`] events of the pods of workload `name`, oldest
/// first, as `Pod/<pod> <reason>: <message>`.
fn last_events(events: &[Value], name: &str) -> Vec<String> {
    let prefix = format!("{name}-");
    let text = |e: &Value, pointer: &str| {
        e.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let when = |e: &Value| {
        [
            "/lastTimestamp",
            "/eventTime",
            "/metadata/creationTimestamp",
        ]
        .iter()
        .map(|p| text(e, p))
        .find(|t| !t.is_empty())
        .unwrap_or_default()
    };
    let mut mine: Vec<&Value> = events
        .iter()
        .filter(|e| text(e, "/involvedObject/name").starts_with(&prefix))
        .collect();
    mine.sort_by_key(|e| when(e));
    let skip = mine.len().saturating_sub(LAST_EVENTS);
    mine.into_iter()
        .skip(skip)
        .map(|e| {
            format!(
                "Pod/{} {}: {}",
                text(e, "/involvedObject/name"),
                text(e, "/reason"),
                text(e, "/message").trim()
            )
        })
        .collect()
}

/// From this many pending objects of one kind on, one LIST replaces the GETs.
const LIST_FROM: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn health_reads_generation_replicas_and_conditions() {
        let ready = json!({"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}});
        assert_eq!(health(&ready), Health::Ready);
        let mut stale = ready.clone();
        stale["metadata"]["generation"] = json!(3);
        assert!(matches!(health(&stale), Health::Progressing(_)));
        let failed = json!({"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "conditions": [{"type": "Progressing", "status": "False",
              "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"a-1\" has timed out progressing."}]}});
        assert!(matches!(health(&failed), Health::Failed(m) if m.contains("timed out")));
        // A new spec not yet observed: the old failure says nothing about it.
        let mut rolled_back = failed.clone();
        rolled_back["metadata"]["generation"] = json!(2);
        assert!(
            matches!(health(&rolled_back), Health::Progressing(m) if m.contains("observe generation 2")),
            "{:?}",
            health(&rolled_back)
        );
        let sts = json!({"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 0}});
        assert!(matches!(health(&sts), Health::Progressing(_)));
    }

    #[test]
    fn last_events_are_the_latest_of_the_workloads_pods() {
        let event = |pod: &str, at: &str, reason: &str| {
            json!({"involvedObject": {"kind": "Pod", "name": pod}, "lastTimestamp": at,
                "reason": reason, "message": format!("{reason} happened ")})
        };
        let events = vec![
            event("webapp-5d9-abcde", "2026-01-01T00:00:04Z", "BackOff"),
            event("webapp-5d9-abcde", "2026-01-01T00:00:01Z", "Scheduled"),
            event("webapp-5d9-abcde", "2026-01-01T00:00:02Z", "Pulling"),
            event("webapp-5d9-abcde", "2026-01-01T00:00:03Z", "Failed"),
            event("webappx-1-fghij", "2026-01-01T00:00:05Z", "Other"),
        ];
        assert_eq!(
            last_events(&events, "webapp"),
            [
                "Pod/webapp-5d9-abcde Pulling: Pulling happened",
                "Pod/webapp-5d9-abcde Failed: Failed happened",
                "Pod/webapp-5d9-abcde BackOff: BackOff happened",
            ]
        );
        assert!(last_events(&events, "redis").is_empty());
    }
}
