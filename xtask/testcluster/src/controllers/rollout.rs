//! What the Deployment and StatefulSet controllers (and the kubelet behind them)
//! would write into status after a spec change.
//!
//! A rollout completes `rollout_delay` after the change. A rollout whose pod
//! template uses an image tagged `broken` (`app:broken`, `app:broken@sha256:...`)
//! never becomes available; a Deployment then reports `Progressing=False` with
//! reason `ProgressDeadlineExceeded` after `progress_deadline`.
use crate::state::Cluster;
use crate::store::resources::ResourceKind;
use crate::store::{EventType, WatchEvent, name_of, namespace_of};
use serde_json::{Value, json};
use std::sync::Arc;

/// Is any container image tagged `broken`?
pub fn is_broken(obj: &Value) -> bool {
    obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str())
        .any(|image| {
            let without_digest = image.split('@').next().unwrap_or(image);
            let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
            last.split_once(':').is_some_and(|(_, tag)| tag == "broken")
        })
}

fn generation(obj: &Value) -> i64 {
    obj["metadata"]["generation"].as_i64().unwrap_or(0)
}

fn observed(obj: &Value) -> i64 {
    obj["status"]["observedGeneration"].as_i64().unwrap_or(0)
}

/// Starts a rollout for a workload whose spec changed.
pub fn on_event(cluster: &Arc<Cluster>, event: &WatchEvent) {
    let workload = event.kind.is("apps", "deployments") || event.kind.is("apps", "statefulsets");
    if !workload
        || event.etype == EventType::Deleted
        || generation(&event.object) <= observed(&event.object)
    {
        return;
    }
    let cluster = cluster.clone();
    let kind = event.kind;
    let (ns, name, wanted) = (
        namespace_of(&event.object).to_string(),
        name_of(&event.object).to_string(),
        generation(&event.object),
    );
    tokio::spawn(async move { rollout(cluster, kind, ns, name, wanted).await });
}

/// Writes status for generation `wanted` of one object, if it is still current.
fn write_status(
    cluster: &Cluster,
    kind: &'static ResourceKind,
    ns: &str,
    name: &str,
    wanted: i64,
    healthy: bool,
    deadline_passed: bool,
) {
    let mut store = cluster.store();
    let Some(obj) = store.get(kind, ns, name).cloned() else {
        return;
    };
    if generation(&obj) != wanted {
        return; // a newer spec: its own rollout task takes over
    }
    let status = if kind.kind == "Deployment" {
        deployment_status(&obj, healthy, deadline_passed)
    } else {
        statefulset_status(&obj, healthy)
    };
    if obj.get("status") == Some(&status) {
        return;
    }
    super::write_status(&mut store, kind, &obj, status, "kube-controller-manager");
}

async fn rollout(
    cluster: Arc<Cluster>,
    kind: &'static ResourceKind,
    ns: String,
    name: String,
    wanted: i64,
) {
    tokio::time::sleep(cluster.rollout_delay).await;
    let broken = {
        let store = cluster.store();
        match store.get(kind, &ns, &name) {
            Some(obj) => is_broken(obj),
            None => return,
        }
    };
    write_status(&cluster, kind, &ns, &name, wanted, !broken, false);
    if broken && kind.kind == "Deployment" {
        tokio::time::sleep(cluster.progress_deadline).await;
        write_status(&cluster, kind, &ns, &name, wanted, false, true);
    }
}

fn condition(ctype: &str, status: &str, reason: &str, message: String, now: &str) -> Value {
    json!({"type": ctype, "status": status, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message})
}

fn deployment_status(obj: &Value, healthy: bool, deadline_passed: bool) -> Value {
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let name = name_of(obj);
    let now = crate::store::meta::now();
    let rs = format!("{name}-{:x}", generation(obj) * 0x1f3d5b79 % 0xfffffff);
    // Conditions keep their transition time while their status stays the same.
    let keep = |c: Value| -> Value {
        let old = obj["status"]["conditions"].as_array().and_then(|a| {
            a.iter()
                .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
                .cloned()
        });
        match old {
            Some(o) => {
                let mut c = c;
                c["lastTransitionTime"] = o["lastTransitionTime"].clone();
                c
            }
            None => c,
        }
    };
    if healthy {
        return json!({
            "observedGeneration": generation(obj),
            "replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [
                keep(condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into(), &now)),
                keep(condition("Progressing", "True", "NewReplicaSetAvailable", format!("ReplicaSet \"{rs}\" has successfully progressed."), &now)),
            ],
        });
    }
    let progressing = if deadline_passed {
        condition(
            "Progressing",
            "False",
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{rs}\" has timed out progressing."),
            &now,
        )
    } else {
        condition(
            "Progressing",
            "True",
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs}\" is progressing."),
            &now,
        )
    };
    let mut status = json!({
        "observedGeneration": generation(obj),
        "replicas": replicas, "updatedReplicas": replicas, "unavailableReplicas": replicas,
        "conditions": [
            keep(condition("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.".into(), &now)),
            keep(progressing),
        ],
    });
    if replicas == 0 {
        status
            .as_object_mut()
            .expect("object")
            .remove("unavailableReplicas");
    }
    status
}

fn statefulset_status(obj: &Value, healthy: bool) -> Value {
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let revision = format!(
        "{}-{:x}",
        name_of(obj),
        generation(obj) * 0x2f3d5b79 % 0xfffffff
    );
    let previous = obj["status"]["currentRevision"]
        .as_str()
        .unwrap_or(&revision)
        .to_string();
    if healthy {
        json!({
            "observedGeneration": generation(obj), "replicas": replicas, "readyReplicas": replicas,
            "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas,
            "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
        })
    } else {
        json!({
            "observedGeneration": generation(obj), "replicas": replicas, "readyReplicas": 0,
            "currentReplicas": 0, "updatedReplicas": replicas, "availableReplicas": 0,
            "currentRevision": previous, "updateRevision": revision, "collisionCount": 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_tags_are_recognised_with_and_without_digest() {
        let with = |image: &str| json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": image}]}}}});
        assert!(is_broken(&with("web:broken")));
        assert!(is_broken(&with("localhost:5000/web:broken@sha256:abcd")));
        assert!(!is_broken(&with("localhost:5000/web:1.0")));
        assert!(!is_broken(&with("broken/web:1")));
    }
}
