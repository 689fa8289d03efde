//! What reviewers miss in a raw diff, said in one line each: lowered
//! replicas, new requests or limits, a Service type change, a change to a
//! field the API server will not change in place, deleted data, a
//! NetworkPolicy that allows more, an image without a digest, a Secret in git.
//! Secret values never appear here: only that a Secret changed, and its keys.

use super::compare::{ChangeKind, EnvChanges, ObjectChange, ObjectId};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Serialize)]
pub struct Callout {
    pub env: String,
    pub object: ObjectId,
    pub message: String,
}

/// Every callout of one environment, in object order.
pub fn callouts(env: &EnvChanges) -> Vec<Callout> {
    let mut out = Vec::new();
    for change in &env.changes {
        for message in object_callouts(change) {
            out.push(Callout {
                env: env.env.clone(),
                object: change.id.clone(),
                message,
            });
        }
    }
    out
}

fn object_callouts(change: &ObjectChange) -> Vec<String> {
    let mut messages = Vec::new();
    let kind = change.id.kind.as_str();
    let (before, after) = (change.before.as_ref(), change.after.as_ref());
    if let (Some(old), Some(new)) = (before, after) {
        messages.extend(replicas_lowered(old, new));
        messages.extend(resources_changed(old, new));
        messages.extend(immutable_changes(kind, old, new));
    }
    if kind == "Service" {
        messages.extend(service_type(before, after));
    }
    if kind == "NetworkPolicy" {
        messages.extend(network_policy(before, after));
    }
    if change.change == ChangeKind::Deleted {
        messages.extend(deleted_data(kind, before));
    }
    if let Some(new) = after {
        messages.extend(unpinned_images(new));
    }
    if kind == "Secret" {
        messages.push(secret_in_git(change));
    }
    messages
}

/// The pod template's containers (init containers too), or a Pod's own.
fn containers(object: &Value) -> Vec<&Value> {
    let spec = object
        .pointer("/spec/template/spec")
        .or_else(|| object.pointer("/spec/jobTemplate/spec/template/spec"))
        .or_else(|| {
            (object.get("kind").and_then(Value::as_str) == Some("Pod"))
                .then(|| object.get("spec"))
                .flatten()
        });
    let Some(spec) = spec else { return Vec::new() };
    ["initContainers", "containers"]
        .iter()
        .filter_map(|field| spec.get(*field).and_then(Value::as_array))
        .flatten()
        .collect()
}

fn name_of(container: &Value) -> &str {
    container.get("name").and_then(Value::as_str).unwrap_or("?")
}

/// `spec.replicas`, with the API's default of 1.
fn replicas(object: &Value) -> Option<f64> {
    object.pointer("/spec/template")?;
    Some(
        object
            .pointer("/spec/replicas")
            .and_then(Value::as_f64)
            .unwrap_or(1.0),
    )
}

fn replicas_lowered(old: &Value, new: &Value) -> Option<String> {
    let (before, after) = (replicas(old)?, replicas(new)?);
    (after < before).then(|| format!("replicas lowered {before} → {after}"))
}

fn scalar(value: Option<&Value>) -> String {
    match value {
        None => "none".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn resources_changed(old: &Value, new: &Value) -> Vec<String> {
    let old_containers = containers(old);
    let mut messages = Vec::new();
    for container in containers(new) {
        let name = name_of(container);
        let Some(previous) = old_containers.iter().find(|c| name_of(c) == name) else {
            continue;
        };
        let mut parts = Vec::new();
        for section in ["requests", "limits"] {
            let get = |c: &Value| {
                c.pointer(&format!("/resources/{section}"))
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default()
            };
            let (was, now) = (get(previous), get(container));
            let mut names: Vec<&String> = was.keys().chain(now.keys()).collect();
            names.sort();
            names.dedup();
            for resource in names {
                let (a, b) = (was.get(resource), now.get(resource));
                if a != b {
                    parts.push(format!(
                        "{section} {resource} {} → {}",
                        scalar(a),
                        scalar(b)
                    ));
                }
            }
        }
        if !parts.is_empty() {
            messages.push(format!("container {name}: {}", parts.join(", ")));
        }
    }
    messages
}

/// Fields the API server refuses to change in place: sync fails on them.
fn immutable_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        "Deployment" | "ReplicaSet" | "DaemonSet" => &["/spec/selector"],
        "StatefulSet" => &[
            "/spec/selector",
            "/spec/volumeClaimTemplates",
            "/spec/serviceName",
            "/spec/podManagementPolicy",
        ],
        "Job" => &["/spec/selector", "/spec/template"],
        "Service" => &["/spec/clusterIP"],
        "PersistentVolumeClaim" => &[
            "/spec/accessModes",
            "/spec/storageClassName",
            "/spec/volumeName",
        ],
        _ => &[],
    }
}

fn immutable_changes(kind: &str, old: &Value, new: &Value) -> Vec<String> {
    immutable_fields(kind)
        .iter()
        .filter(|pointer| old.pointer(pointer) != new.pointer(pointer))
        .map(|pointer| {
            let field = pointer.trim_start_matches('/').replace('/', ".");
            format!(
                "{field} changed: it is immutable, sync will fail until the object is deleted and re-created"
            )
        })
        .collect()
}

fn service_type(before: Option<&Value>, after: Option<&Value>) -> Option<String> {
    let type_of = |v: &Value| {
        v.pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string()
    };
    let now = type_of(after?);
    let effect = match now.as_str() {
        "LoadBalancer" => " (a new cloud load balancer, reachable from outside)",
        "NodePort" => " (a port open on every node)",
        _ => "",
    };
    match before.map(type_of) {
        Some(was) if was != now => Some(format!("Service type {was} → {now}{effect}")),
        None if now != "ClusterIP" => Some(format!("new {now} Service{effect}")),
        _ => None,
    }
}

fn rules<'v>(policy: &'v Value, direction: &str) -> Vec<&'v Value> {
    policy
        .pointer(&format!("/spec/{direction}"))
        .and_then(Value::as_array)
        .map(|r| r.iter().collect())
        .unwrap_or_default()
}

fn policy_types(policy: &Value) -> Vec<String> {
    match policy
        .pointer("/spec/policyTypes")
        .and_then(Value::as_array)
    {
        Some(types) => types
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        // The API's default: Ingress, plus Egress when there are egress rules.
        None => {
            let mut types = vec!["Ingress".to_string()];
            if policy.pointer("/spec/egress").is_some() {
                types.push("Egress".to_string());
            }
            types
        }
    }
}

fn peers(rule: &Value, field: &str) -> String {
    let Some(list) = rule
        .get(field)
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    else {
        return "anywhere".to_string();
    };
    list.iter()
        .map(|peer| {
            if let Some(cidr) = peer.pointer("/ipBlock/cidr").and_then(Value::as_str) {
                return format!("ipBlock {cidr}");
            }
            let mut parts = Vec::new();
            for (selector, what) in [("namespaceSelector", "namespaces"), ("podSelector", "pods")] {
                if let Some(s) = peer.get(selector) {
                    let labels = s.get("matchLabels").and_then(Value::as_object);
                    parts.push(match labels {
                        Some(l) if !l.is_empty() => {
                            let pairs: Vec<String> = l
                                .iter()
                                .map(|(k, v)| format!("{k}={}", scalar(Some(v))))
                                .collect();
                            format!("{what} {}", pairs.join(","))
                        }
                        _ if s.get("matchExpressions").is_some() => format!("{what} by expression"),
                        _ => format!("all {what}"),
                    });
                }
            }
            parts.join(" in ")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn ports(rule: &Value) -> String {
    match rule
        .get("ports")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
    {
        None => "all ports".to_string(),
        Some(list) => list
            .iter()
            .map(|p| {
                format!(
                    "{}/{}",
                    scalar(p.get("port")),
                    scalar(p.get("protocol")).replace("none", "TCP")
                )
            })
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// New rules (or a dropped policy type, or a deleted policy) allow more.
fn network_policy(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    let Some(new) = after else {
        return vec![
            "NetworkPolicy deleted: the pods it selected may accept traffic it restricted"
                .to_string(),
        ];
    };
    let mut messages = Vec::new();
    for (direction, peer_field, word) in [("ingress", "from", "from"), ("egress", "to", "to")] {
        let old_rules = before.map(|b| rules(b, direction)).unwrap_or_default();
        for rule in rules(new, direction) {
            if !old_rules.contains(&rule) {
                messages.push(format!(
                    "NetworkPolicy now allows more: {direction} {word} {} on {}",
                    peers(rule, peer_field),
                    ports(rule)
                ));
            }
        }
    }
    if let Some(old) = before {
        let now = policy_types(new);
        for dropped in policy_types(old).into_iter().filter(|t| !now.contains(t)) {
            messages.push(format!(
                "NetworkPolicy no longer restricts {dropped}: all of it is allowed"
            ));
        }
        if old.pointer("/spec/podSelector") != new.pointer("/spec/podSelector") {
            messages.push(
                "NetworkPolicy podSelector changed: it applies to other pods now".to_string(),
            );
        }
    }
    messages
}

fn deleted_data(kind: &str, before: Option<&Value>) -> Option<String> {
    let volumes = before
        .and_then(|b| b.pointer("/spec/volumeClaimTemplates"))
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty());
    match kind {
        "StatefulSet" if volumes => Some("StatefulSet with volumes deleted: its data is at stake (sync keeps it unless --prune-data)".to_string()),
        "StatefulSet" => Some("StatefulSet deleted".to_string()),
        "PersistentVolumeClaim" => Some("PersistentVolumeClaim deleted: it holds data (sync keeps it unless --prune-data)".to_string()),
        "Namespace" => Some("Namespace deleted: deleting it deletes everything in it (sync keeps it unless --prune-data)".to_string()),
        _ => None,
    }
}

fn unpinned_images(object: &Value) -> Vec<String> {
    containers(object)
        .into_iter()
        .filter_map(|c| {
            let image = c.get("image").and_then(Value::as_str)?;
            (!image.contains("@sha256:")).then(|| {
                format!(
                    "container {}: image `{image}` is not pinned by digest",
                    name_of(c)
                )
            })
        })
        .collect()
}

/// Only that a Secret is in git and which keys moved: never a value.
fn secret_in_git(change: &ObjectChange) -> String {
    let keys = |v: Option<&Value>| -> Vec<(String, Value)> {
        let Some(v) = v else { return Vec::new() };
        ["data", "stringData"]
            .iter()
            .filter_map(|f| v.get(*f).and_then(Value::as_object))
            .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect()
    };
    let (old, new) = (keys(change.before.as_ref()), keys(change.after.as_ref()));
    let mut moved: Vec<&str> = new
        .iter()
        .filter(|entry| !old.contains(entry))
        .map(|(k, _)| k.as_str())
        .chain(
            old.iter()
                .filter(|(k, _)| !new.iter().any(|(n, _)| n == k))
                .map(|(k, _)| k.as_str()),
        )
        .collect();
    moved.sort();
    moved.dedup();
    let what = match change.change {
        ChangeKind::Deleted => {
            "Secret removed from git (its values stay in the history)".to_string()
        }
        _ => "Secret committed in git: its values are readable by anyone with the repository"
            .to_string(),
    };
    if moved.is_empty() {
        what
    } else {
        format!("{what}; keys changed: {}", moved.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(kind: &str, before: Option<Value>, after: Option<Value>) -> ObjectChange {
        let change = match (&before, &after) {
            (Some(_), Some(_)) => ChangeKind::Changed,
            (None, _) => ChangeKind::Added,
            _ => ChangeKind::Deleted,
        };
        ObjectChange {
            id: ObjectId {
                kind: kind.into(),
                namespace: "micro".into(),
                name: "x".into(),
            },
            change,
            file: "f.yaml".into(),
            before,
            after,
            diff: String::new(),
        }
    }

    fn deployment(replicas: u32, cpu: &str, image: &str) -> Value {
        json!({"kind": "Deployment", "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "x"}},
            "template": {"spec": {"containers": [{"name": "x", "image": image,
                "resources": {"requests": {"cpu": cpu}}}]}}}})
    }

    #[test]
    fn replicas_resources_and_unpinned_images() {
        let c = change(
            "Deployment",
            Some(deployment(3, "100m", "r/x:1@sha256:ab")),
            Some(deployment(2, "250m", "r/x:latest")),
        );
        assert_eq!(
            object_callouts(&c),
            [
                "replicas lowered 3 → 2",
                "container x: requests cpu 100m → 250m",
                "container x: image `r/x:latest` is not pinned by digest"
            ]
        );
    }

    #[test]
    fn volume_claim_templates_and_service_types() {
        let sts = |size: &str| {
            json!({"kind": "StatefulSet", "spec": {"serviceName": "db", "template": {},
            "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": size}}}}]}})
        };
        let c = change("StatefulSet", Some(sts("5Gi")), Some(sts("20Gi")));
        let messages = object_callouts(&c);
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("spec.volumeClaimTemplates changed: it is immutable")),
            "{messages:?}"
        );
        let d = change("StatefulSet", Some(sts("5Gi")), None);
        assert!(object_callouts(&d)[0].contains("its data is at stake"));

        let svc = |t: &str| json!({"kind": "Service", "spec": {"type": t}});
        let c = change("Service", Some(svc("ClusterIP")), Some(svc("LoadBalancer")));
        assert_eq!(
            object_callouts(&c),
            [
                "Service type ClusterIP → LoadBalancer (a new cloud load balancer, reachable from outside)"
            ]
        );
    }

    #[test]
    fn network_policies_that_allow_more_and_secrets_without_values() {
        let policy = |ingress: Value| json!({"kind": "NetworkPolicy", "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress}});
        let narrow = policy(
            json!([{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}], "ports": [{"port": 80}]}]),
        );
        let wide = policy(json!([{"ports": [{"port": 80}]}]));
        let c = change("NetworkPolicy", Some(narrow.clone()), Some(wide));
        assert_eq!(
            object_callouts(&c),
            ["NetworkPolicy now allows more: ingress from anywhere on 80/TCP"]
        );
        assert!(
            object_callouts(&change("NetworkPolicy", Some(narrow.clone()), Some(narrow)))
                .is_empty()
        );

        let secret = |pw: &str| json!({"kind": "Secret", "data": {"pw": pw, "user": "eA=="}});
        let c = change("Secret", Some(secret("b2xk")), Some(secret("bmV3")));
        let messages = object_callouts(&c);
        assert_eq!(messages.len(), 1);
        assert!(messages[0].ends_with("keys changed: pw"), "{messages:?}");
        assert!(!messages[0].contains("bmV3") && !messages[0].contains("b2xk"));
    }
}
