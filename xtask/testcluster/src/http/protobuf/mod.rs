//! `application/vnd.kubernetes.protobuf` bodies, as client-go's typed clients
//! (kubectl's `create` generators, `run`, `expose`) send them: the `k8s\0` magic,
//! then a `runtime.Unknown` whose `raw` is the object's message. Decoded into the
//! JSON objects the store keeps, and encoded back for clients that ask for it.
mod bridge;
mod kinds;

use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde_json::Value;

pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

/// The request's object as JSON (with `apiVersion` and `kind` from the envelope),
/// or why it cannot be read.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("the body does not start with the protobuf magic number k8s\\0")?;
    let unknown = Unknown::decode(envelope).map_err(|e| format!("invalid envelope: {e}"))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let (decode, _) = kinds::codec(&api_version, &kind)
        .ok_or_else(|| format!("protobuf is not served for {api_version} {kind}"))?;
    let mut obj = decode(unknown.raw.as_deref().unwrap_or_default())
        .map_err(|e| format!("{kind}: {}", e.0))?;
    if let Some(m) = obj.as_object_mut() {
        let mut head = serde_json::Map::new();
        head.insert("apiVersion".into(), Value::String(api_version));
        head.insert("kind".into(), Value::String(kind));
        head.append(m);
        *m = head;
    }
    Ok(obj)
}

/// The object in the protobuf envelope, or `None` when a field of it has no
/// protobuf table here (the caller answers JSON then).
pub fn encode(obj: &Value) -> Option<Vec<u8>> {
    let api_version = obj["apiVersion"].as_str()?;
    let kind = obj["kind"].as_str()?;
    let (_, encode) = kinds::codec(api_version, kind)?;
    let raw = encode(obj).ok()?;
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_string()),
            kind: Some(kind.to_string()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut out = MAGIC.to_vec();
    unknown.encode(&mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stored_deployment_goes_through_protobuf_and_back_unchanged() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "micro", "uid": "u-1", "resourceVersion": "1001",
                "generation": 1, "creationTimestamp": "2026-01-02T03:04:05Z", "labels": {"app": "web"},
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
                    "time": "2026-01-02T03:04:05Z", "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                    "name": "web", "image": "web:1", "ports": [{"name": "main", "containerPort": 3000, "protocol": "TCP"}],
                    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "main"}, "periodSeconds": 10},
                    "resources": {"limits": {"memory": "64Mi"}}}],
                    "restartPolicy": "Always"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}},
            "status": {"observedGeneration": 1, "replicas": 2, "conditions": [{"type": "Available", "status": "True",
                "lastUpdateTime": "2026-01-02T03:04:05Z", "lastTransitionTime": "2026-01-02T03:04:05Z",
                "reason": "MinimumReplicasAvailable", "message": "ok"}]}
        });
        let bytes = encode(&deployment).expect("every field has a table");
        assert!(bytes.starts_with(b"k8s\0"));
        assert_eq!(decode(&bytes).unwrap(), deployment);
    }

    #[test]
    fn a_field_without_a_table_is_named_not_dropped() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}], "tolerations": [{"key": "k"}]}});
        assert_eq!(encode(&pod), None, "answered as JSON instead");
        let whole = k8s_pb::api::core::v1::Pod {
            spec: Some(k8s_pb::api::core::v1::PodSpec {
                tolerations: vec![Default::default()],
                ..Default::default()
            }),
            ..Default::default()
        };
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
            }),
            raw: Some(whole.encode_to_vec()),
            ..Default::default()
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        let err = decode(&body).unwrap_err();
        assert!(
            err.contains("PodSpec") && err.contains("tolerations"),
            "{err}"
        );
        assert!(decode(b"{}").unwrap_err().contains("magic"));
    }
}
