//! Field validation against the Kubernetes types of k8s-openapi: a value of the
//! wrong type is a 400; a field the type does not declare is a 400 under
//! `fieldValidation=Strict` (kubectl's default) and silently dropped otherwise,
//! as kube-apiserver does.
use crate::errors::ApiError;
use crate::store::resources::ResourceKind;
use k8s_openapi::api::{
    apps::v1 as apps, coordination::v1 as coordination, core::v1 as core, networking::v1 as net,
    policy::v1 as policy,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

fn roundtrip<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

fn typed_roundtrip(kind: &ResourceKind, obj: &Value) -> Option<Result<Value, String>> {
    Some(match kind.kind {
        "Namespace" => roundtrip::<core::Namespace>(obj),
        "Service" => roundtrip::<core::Service>(obj),
        "ConfigMap" => roundtrip::<core::ConfigMap>(obj),
        "Secret" => roundtrip::<core::Secret>(obj),
        "PersistentVolumeClaim" => roundtrip::<core::PersistentVolumeClaim>(obj),
        "Pod" => roundtrip::<core::Pod>(obj),
        "ServiceAccount" => roundtrip::<core::ServiceAccount>(obj),
        "Deployment" => roundtrip::<apps::Deployment>(obj),
        "StatefulSet" => roundtrip::<apps::StatefulSet>(obj),
        "PodDisruptionBudget" => roundtrip::<policy::PodDisruptionBudget>(obj),
        "NetworkPolicy" => roundtrip::<net::NetworkPolicy>(obj),
        "Lease" => roundtrip::<coordination::Lease>(obj),
        _ => return None,
    })
}

/// Paths (`spec.foo`, `spec.template.spec.containers[0].bar`) present in `input` but
/// not in `typed` (what the type kept).
fn unknown_fields(input: &Value, typed: &Value, path: &str, out: &mut Vec<String>) {
    match (input, typed) {
        (Value::Object(i), Value::Object(t)) => {
            for (k, v) in i {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match t.get(k) {
                    Some(tv) => unknown_fields(v, tv, &p, out),
                    None if v.is_null() => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(i), Value::Array(t)) if i.len() == t.len() => {
            for (n, (iv, tv)) in i.iter().zip(t).enumerate() {
                unknown_fields(iv, tv, &format!("{path}[{n}]"), out);
            }
        }
        _ => {}
    }
}

fn remove_path(obj: &mut Value, path: &str) {
    // Paths come from unknown_fields: dot-separated keys with [n] list indices.
    let mut cur = obj;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        let (key, indices) = match part.find('[') {
            Some(b) => (&part[..b], &part[b..]),
            None => (*part, ""),
        };
        if i == parts.len() - 1 && indices.is_empty() {
            if let Some(m) = cur.as_object_mut() {
                m.remove(key);
            }
            return;
        }
        let Some(next) = cur.get_mut(key) else { return };
        cur = next;
        for idx in indices.split(']').filter(|s| !s.is_empty()) {
            let Ok(n) = idx.trim_start_matches('[').parse::<usize>() else {
                return;
            };
            let Some(next) = cur.get_mut(n) else { return };
            cur = next;
        }
    }
}

/// Checks `obj` (the object about to be stored) and drops unknown fields unless strict.
/// `apply` selects kube-apiserver's wording for server-side apply.
pub fn check(
    kind: &ResourceKind,
    obj: &mut Value,
    strict: bool,
    apply: bool,
) -> Result<(), ApiError> {
    let Some(result) = typed_roundtrip(kind, obj) else {
        return Ok(());
    };
    let typed = result.map_err(|e| {
        ApiError::bad_request(format!(
            "{k} in version \"{v}\" cannot be handled as a {k}: {e}",
            k = kind.kind,
            v = kind.version
        ))
    })?;
    let mut unknown = Vec::new();
    unknown_fields(obj, &typed, "", &mut unknown);
    if unknown.is_empty() {
        return Ok(());
    }
    if strict {
        let message = if apply {
            let name = obj["metadata"]["name"].as_str().unwrap_or("");
            let fields: Vec<String> = unknown
                .iter()
                .map(|p| format!(".{p}: field not declared in schema"))
                .collect();
            format!(
                "failed to create typed patch object ({}/{name}; {}, Kind={}): {}",
                obj["metadata"]["namespace"].as_str().unwrap_or(""),
                kind.api_version(),
                kind.kind,
                fields.join(", ")
            )
        } else {
            let fields: Vec<String> = unknown
                .iter()
                .map(|p| format!("unknown field \"{p}\""))
                .collect();
            format!("strict decoding error: {}", fields.join(", "))
        };
        return Err(ApiError::bad_request(message));
    }
    for p in unknown.iter().rev() {
        remove_path(obj, p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> &'static ResourceKind {
        crate::store::resources::find("apps", "v1", "deployments").unwrap()
    }

    fn obj(extra: Value) -> Value {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "micro"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}});
        crate::write::patch::merge_patch(&mut d, &extra);
        d
    }

    #[test]
    fn unknown_fields_are_rejected_when_strict_and_dropped_otherwise() {
        let mut good = obj(json!({}));
        assert!(check(deployment(), &mut good, true, false).is_ok());
        let mut bad = obj(json!({"spec": {"replicaz": 3}}));
        let err = check(deployment(), &mut bad, true, false).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(
            err.message.contains("unknown field \"spec.replicaz\""),
            "{}",
            err.message
        );
        check(deployment(), &mut bad, false, false).unwrap();
        assert!(bad["spec"].get("replicaz").is_none());
    }

    #[test]
    fn wrong_types_are_rejected() {
        let mut bad = obj(json!({"spec": {"replicas": "three"}}));
        assert_eq!(
            check(deployment(), &mut bad, false, false)
                .unwrap_err()
                .code,
            400
        );
    }
}
