//! Comparing desired and live objects so that only real differences count.
//!
//! Two checks decide "unchanged" without asking the server:
//! - every field of the desired object has the same value live ([`subset`]);
//! - the fields our field manager owns live are all still in the desired
//!   object ([`owned_within`]); otherwise an apply would remove one.
//!
//! Anything that fails these checks is confirmed by a dry-run apply, compared
//! after [`strip`] has dropped what the server maintains by itself.

use crate::ownership::FIELD_MANAGER;
use serde_json::{Map, Value};

/// Drop what the server maintains (status, bookkeeping, timestamps).
pub fn strip(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in [
                "managedFields",
                "resourceVersion",
                "uid",
                "creationTimestamp",
                "generation",
                "selfLink",
                "deletionTimestamp",
            ] {
                meta.remove(field);
            }
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
                annotations.remove("deployment.kubernetes.io/revision");
                if annotations.is_empty() {
                    meta.remove("annotations");
                }
            }
        }
    }
    object
}

/// Numbers compare by value (`1` equals `1.0`), everything else structurally.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The field identifying an element of a list of maps, when there is one
/// (containers, env, ports and volumes are keyed by `name`).
fn list_key(items: &[Value]) -> Option<&'static str> {
    ["name", "containerPort", "port"]
        .into_iter()
        .find(|key| !items.is_empty() && items.iter().all(|i| i.get(key).is_some()))
}

/// True when every field of `desired` has the same value in `live`.
pub fn subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, dv)| match l.get(k) {
            Some(lv) => subset(dv, lv),
            None => is_empty(dv),
        }),
        (Value::Array(d), Value::Array(l)) => {
            if d.len() != l.len() {
                return false;
            }
            match list_key(d) {
                Some(key) => d.iter().all(|de| {
                    l.iter()
                        .find(|le| le.get(key).is_some_and(|v| same(v, &de[key])))
                        .is_some_and(|le| subset(de, le))
                }),
                None => d.iter().zip(l).all(|(de, le)| subset(de, le)),
            }
        }
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (d, Value::Null) => is_empty(d),
        _ => desired == live,
    }
}

/// The `fieldsV1` our manager applied last time, from live managedFields.
pub fn owned_fields(live: &Value) -> Option<&Value> {
    live.pointer("/metadata/managedFields")?
        .as_array()?
        .iter()
        .find_map(|entry| {
            let ours = entry.get("manager").and_then(Value::as_str) == Some(FIELD_MANAGER)
                && entry.get("operation").and_then(Value::as_str) == Some("Apply")
                && entry
                    .get("subresource")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty);
            if ours { entry.get("fieldsV1") } else { None }
        })
}

/// True when every field in the `fieldsV1` set `owned` is still present in
/// `desired`: applying `desired` would then remove nothing we set before.
pub fn owned_within(owned: &Value, desired: &Value) -> bool {
    let Value::Object(fields) = owned else {
        return true;
    };
    fields.iter().all(|(key, sub)| {
        if key == "." {
            return true;
        }
        if let Some(name) = key.strip_prefix("f:") {
            return desired.get(name).is_some_and(|d| owned_within(sub, d));
        }
        let Value::Array(items) = desired else {
            return false;
        };
        if let Some(json) = key.strip_prefix("k:") {
            let Ok(Value::Object(wanted)) = serde_json::from_str::<Value>(json) else {
                return false;
            };
            // A key field the manifest leaves to a server default (a port's
            // protocol) is absent from the desired element: not a mismatch.
            let matches = |item: &Value| {
                wanted
                    .iter()
                    .all(|(k, v)| item.get(k).is_none_or(|iv| same(iv, v)))
            };
            return items
                .iter()
                .find(|i| matches(i))
                .is_some_and(|i| owned_within(sub, i));
        }
        if let Some(json) = key.strip_prefix("v:") {
            let Ok(wanted) = serde_json::from_str::<Value>(json) else {
                return false;
            };
            return items.iter().any(|i| same(i, &wanted));
        }
        if let Some(index) = key.strip_prefix("i:") {
            return index
                .parse::<usize>()
                .ok()
                .and_then(|i| items.get(i))
                .is_some_and(|i| owned_within(sub, i));
        }
        false
    })
}

/// The cheap "already in its desired state" test (no request).
pub fn unchanged(desired: &Value, live: &Value) -> bool {
    let converted;
    let desired = if desired.get("kind").and_then(Value::as_str) == Some("Secret") {
        converted = secret_as_data(desired);
        &converted
    } else {
        desired
    };
    body_subset(desired, live)
        && owned_fields(live).is_none_or(|owned| owned_within(owned, desired))
}

/// [`subset`] of `desired` without its apiVersion and kind (not always
/// present on listed items), without copying it.
fn body_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .filter(|(k, _)| *k != "apiVersion" && *k != "kind")
            .all(|(k, dv)| match l.get(k) {
                Some(lv) => subset(dv, lv),
                None => is_empty(dv),
            }),
        _ => subset(desired, live),
    }
}

/// The server keeps a Secret's `stringData` as base64 `data`; compare that way.
fn secret_as_data(object: &Value) -> Value {
    let mut object = object.clone();
    let Some(map) = object.as_object_mut() else {
        return object;
    };
    if let Some(Value::Object(strings)) = map.remove("stringData") {
        let data = map
            .entry("data")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(data) = data.as_object_mut() {
            for (k, v) in strings {
                let text = v.as_str().unwrap_or_default();
                data.insert(k, Value::String(base64(text.as_bytes())));
            }
        }
    }
    object
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Replace Secret values before showing them: `***` when both sides agree,
/// `*** (before)` / `*** (after)` when they differ (kubectl diff's convention).
pub fn mask_secrets(before: &mut Value, after: &mut Value) {
    let is_secret = |v: &Value| v.get("kind").and_then(Value::as_str) == Some("Secret");
    if !is_secret(before) && !is_secret(after) {
        return;
    }
    for field in ["data", "stringData"] {
        let old = before.get(field).cloned();
        let new = after.get(field).cloned();
        let mask = |side: &mut Value, other: &Option<Value>, label: &str| {
            if let Some(Value::Object(values)) = side.get_mut(field) {
                for (k, v) in values.iter_mut() {
                    let equal = other
                        .as_ref()
                        .and_then(|o| o.get(k))
                        .is_some_and(|o| o == v);
                    *v = Value::String(if equal {
                        "***".into()
                    } else {
                        format!("*** ({label})")
                    });
                }
            }
        };
        mask(before, &new, "before");
        mask(after, &old, "after");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live_deployment(replicas: u64) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "namespace": "micro", "uid": "u", "resourceVersion": "7", "generation": 2,
                "labels": {"app": "a"},
                "managedFields": [{"manager": "xtask", "operation": "Apply", "fieldsV1": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}
                    }}}}
                }}]},
            "spec": {"replicas": replicas, "revisionHistoryLimit": 10, "template": {"spec": {"containers": [
                {"name": "app", "image": "img:1", "imagePullPolicy": "IfNotPresent",
                 "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}},
            "status": {"replicas": replicas}
        })
    }

    fn desired(image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a", "namespace": "micro", "labels": {"app": "a"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [
                {"name": "app", "image": image, "ports": [{"containerPort": 80}]}]}}}
        })
    }

    #[test]
    fn defaults_and_bookkeeping_do_not_count_as_changes() {
        assert!(unchanged(&desired("img:1"), &live_deployment(1)));
    }

    #[test]
    fn drift_and_new_images_count() {
        assert!(!unchanged(&desired("img:1"), &live_deployment(4)));
        assert!(!unchanged(&desired("img:2"), &live_deployment(1)));
    }

    #[test]
    fn a_field_dropped_from_the_manifest_counts() {
        let mut d = desired("img:1");
        d["metadata"].as_object_mut().unwrap().remove("labels");
        // Still a subset of live, but we own metadata.labels.app: apply would remove it.
        assert!(body_subset(&d, &live_deployment(1)));
        assert!(!unchanged(&d, &live_deployment(1)));
    }

    #[test]
    fn strip_drops_server_fields() {
        let s = strip(&live_deployment(1));
        assert!(s.get("status").is_none());
        assert!(s["metadata"].get("uid").is_none());
        assert!(s["metadata"].get("managedFields").is_none());
        assert_eq!(s["metadata"]["name"], "a");
    }

    #[test]
    fn secrets_compare_as_base64_and_are_masked() {
        assert_eq!(base64(b"hello"), "aGVsbG8=");
        assert_eq!(base64(b"hi!"), "aGkh");
        let d = json!({"kind": "Secret", "metadata": {"name": "s"}, "stringData": {"pw": "hello"}});
        let l = json!({"kind": "Secret", "metadata": {"name": "s"}, "data": {"pw": "aGVsbG8="}});
        assert!(unchanged(&d, &l));
        let mut before = json!({"kind": "Secret", "data": {"pw": "b2xk", "user": "eA=="}});
        let mut after = json!({"kind": "Secret", "data": {"pw": "bmV3", "user": "eA=="}});
        mask_secrets(&mut before, &mut after);
        assert_eq!(before["data"]["pw"], "*** (before)");
        assert_eq!(after["data"]["pw"], "*** (after)");
        assert_eq!(after["data"]["user"], "***");
    }
}
