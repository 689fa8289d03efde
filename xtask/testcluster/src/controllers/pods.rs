//! What the scheduler and the kubelet would write for a Pod: Pending at create,
//! Running `rollout_delay` later (a pod IP, Ready conditions, running container
//! statuses), and for a one-off Pod (`restartPolicy` `Never`/`OnFailure`) given an
//! exit code (`bindings::EXIT_CODE`), Succeeded or Failed with terminated
//! container statuses. A Pod whose phase a client wrote itself is left alone.
use super::write_status;
use crate::bindings;
use crate::state::Cluster;
use crate::store::resources::ResourceKind;
use crate::store::{EventType, WatchEvent, name_of, namespace_of};
use serde_json::{Value, json};
use std::sync::Arc;

const NODE_IP: &str = "192.168.49.2";

pub fn on_event(cluster: &Arc<Cluster>, event: &WatchEvent) {
    if !event.kind.is("", "pods") || event.etype == EventType::Deleted {
        return;
    }
    let (ns, name) = (
        namespace_of(&event.object).to_string(),
        name_of(&event.object).to_string(),
    );
    let uid = event.object["metadata"]["uid"].clone();
    match event.object["status"]["phase"].as_str() {
        Some("Pending") if event.etype == EventType::Added => {
            let (cluster, kind) = (cluster.clone(), event.kind);
            tokio::spawn(async move {
                tokio::time::sleep(cluster.rollout_delay).await;
                transition(&cluster, kind, &ns, &name, &uid, "Pending", running);
            });
        }
        Some("Running")
            if one_off(&event.object) && bindings::exit_code(&event.object).is_some() =>
        {
            transition(cluster, event.kind, &ns, &name, &uid, "Running", terminated);
        }
        _ => {}
    }
}

fn one_off(pod: &Value) -> bool {
    matches!(
        pod["spec"]["restartPolicy"].as_str(),
        Some("Never" | "OnFailure")
    )
}

/// Writes `status(pod)` if the Pod (the same one: same uid) is still in phase `from`.
fn transition(
    cluster: &Cluster,
    kind: &'static ResourceKind,
    ns: &str,
    name: &str,
    uid: &Value,
    from: &str,
    status: fn(&Value) -> Value,
) {
    let mut store = cluster.store();
    let Some(pod) = store.get(kind, ns, name).cloned() else {
        return;
    };
    if pod["metadata"]["uid"] != *uid || pod["status"]["phase"] != from {
        return;
    }
    let new = status(&pod);
    write_status(&mut store, kind, &pod, new, "kubelet");
}

fn containers(pod: &Value) -> Vec<&Value> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect()
}

fn condition(ctype: &str, status: &str, now: &str, reason: Option<&str>) -> Value {
    let mut c =
        json!({"type": ctype, "status": status, "lastProbeTime": null, "lastTransitionTime": now});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// A pod IP derived from the uid, so each Pod keeps its own.
fn pod_ip(pod: &Value) -> String {
    let uid = pod["metadata"]["uid"].as_str().unwrap_or("");
    let n = uid
        .bytes()
        .fold(0u32, |a, b| a.wrapping_mul(31).wrapping_add(b as u32));
    format!("10.244.{}.{}", (n >> 8) % 250, n % 250 + 2)
}

fn running(pod: &Value) -> Value {
    let now = crate::store::meta::now();
    let statuses: Vec<Value> = containers(pod)
        .into_iter()
        .map(|c| {
            json!({"name": c["name"], "image": c["image"], "imageID": "", "containerID": format!("testcluster://{}", c["name"].as_str().unwrap_or("")),
                   "ready": true, "started": true, "restartCount": 0, "state": {"running": {"startedAt": now}}})
        })
        .collect();
    let ip = pod_ip(pod);
    json!({
        "phase": "Running",
        "conditions": [
            condition("PodReadyToStartContainers", "True", &now, None),
            condition("Initialized", "True", &now, None),
            condition("Ready", "True", &now, None),
            condition("ContainersReady", "True", &now, None),
            condition("PodScheduled", "True", &now, None),
        ],
        "hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}],
        "podIP": ip, "podIPs": [{"ip": ip}],
        "startTime": now,
        "containerStatuses": statuses,
        "qosClass": pod["status"]["qosClass"].as_str().unwrap_or("BestEffort"),
    })
}

fn terminated(pod: &Value) -> Value {
    let now = crate::store::meta::now();
    let code = bindings::exit_code(pod).unwrap_or(0);
    let (phase, reason) = if code == 0 {
        ("Succeeded", "Completed")
    } else {
        ("Failed", "Error")
    };
    let mut status = pod["status"].clone();
    status["phase"] = json!(phase);
    status["conditions"] = json!([
        condition("PodReadyToStartContainers", "False", &now, None),
        condition("Initialized", "True", &now, None),
        condition("Ready", "False", &now, Some("PodCompleted")),
        condition("ContainersReady", "False", &now, Some("PodCompleted")),
        condition("PodScheduled", "True", &now, None),
    ]);
    if let Some(statuses) = status["containerStatuses"].as_array_mut() {
        for s in statuses {
            let started = s["state"]["running"]["startedAt"].clone();
            s["ready"] = json!(false);
            s["started"] = json!(false);
            s["state"] = json!({"terminated": {"exitCode": code, "reason": reason,
                "startedAt": started, "finishedAt": now, "containerID": s["containerID"]}});
        }
    }
    status
}
