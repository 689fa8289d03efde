//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`: objects as rows with the
//! columns kubectl prints for each kind (kube-apiserver's table convertors).
use crate::store::meta::{age_seconds, human_age};
use crate::store::resources::ResourceKind;
use serde_json::{Value, json};

fn col(name: &str, typ: &str, priority: u8) -> Value {
    json!({"name": name, "type": typ, "format": if name == "Name" { "name" } else { "" }, "description": "", "priority": priority})
}

fn columns(kind: &str) -> Vec<Value> {
    let mut c = vec![col("Name", "string", 0)];
    let rest: Vec<(&str, &str, u8)> = match kind {
        "Deployment" => vec![
            ("Ready", "string", 0),
            ("Up-to-date", "string", 0),
            ("Available", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1),
        ],
        "StatefulSet" => vec![
            ("Ready", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
        ],
        "Service" => vec![
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        "Namespace" => vec![("Status", "string", 0), ("Age", "string", 0)],
        "ConfigMap" => vec![("Data", "integer", 0), ("Age", "string", 0)],
        "Secret" => vec![
            ("Type", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        "PersistentVolumeClaim" => vec![
            ("Status", "string", 0),
            ("Volume", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("StorageClass", "string", 0),
            ("VolumeAttributesClass", "string", 0),
            ("Age", "string", 0),
        ],
        "Pod" => vec![
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
        ],
        "ServiceAccount" => vec![("Secrets", "string", 0), ("Age", "string", 0)],
        "PodDisruptionBudget" => vec![
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            ("Age", "string", 0),
        ],
        "NetworkPolicy" => vec![("Pod-Selector", "string", 0), ("Age", "string", 0)],
        "Lease" => vec![("Holder", "string", 0), ("Age", "string", 0)],
        _ => vec![("Age", "string", 0)],
    };
    c.extend(rest.into_iter().map(|(n, t, p)| col(n, t, p)));
    c
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

fn joined(list: &Value, field: &str) -> String {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x[field].as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn selector(v: &Value) -> String {
    let labels = v.get("matchLabels").unwrap_or(v);
    or_none(
        labels
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, x)| format!("{k}={}", x.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
    )
}

fn int_or_string(v: &Value) -> String {
    match v {
        Value::Null => "N/A".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn service_ports(spec: &Value) -> String {
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_i64() {
                        Some(np) => format!("{}:{np}/{proto}", int(&p["port"])),
                        None => format!("{}/{proto}", int(&p["port"])),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    or_none(ports.join(","))
}

fn external_ip(obj: &Value) -> String {
    let spec = &obj["spec"];
    match spec["type"].as_str().unwrap_or("ClusterIP") {
        "ExternalName" => spec["externalName"].as_str().unwrap_or("").to_string(),
        "LoadBalancer" => {
            let ingress = &obj["status"]["loadBalancer"]["ingress"];
            // kubectl shows an ingress's IP, or its hostname (AWS load balancers have only that).
            let ingress = [joined(ingress, "ip"), joined(ingress, "hostname")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(",");
            if ingress.is_empty() {
                "<pending>".into()
            } else {
                ingress
            }
        }
        _ => or_none(
            spec["externalIPs"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
        ),
    }
}

fn cells(kind: &str, obj: &Value) -> Vec<Value> {
    let name = obj["metadata"]["name"].clone();
    let age = human_age(age_seconds(
        obj["metadata"]["creationTimestamp"].as_str().unwrap_or(""),
    ));
    let spec = &obj["spec"];
    let status = &obj["status"];
    let containers = &spec["template"]["spec"]["containers"];
    let mut c = vec![name];
    match kind {
        "Deployment" => c.extend([
            json!(format!(
                "{}/{}",
                int(&status["readyReplicas"]),
                int(&spec["replicas"])
            )),
            json!(int(&status["updatedReplicas"])),
            json!(int(&status["availableReplicas"])),
            json!(age),
            json!(joined(containers, "name")),
            json!(joined(containers, "image")),
            json!(selector(&spec["selector"])),
        ]),
        "StatefulSet" => c.extend([
            json!(format!(
                "{}/{}",
                int(&status["readyReplicas"]),
                int(&spec["replicas"])
            )),
            json!(age),
            json!(joined(containers, "name")),
            json!(joined(containers, "image")),
        ]),
        "Service" => c.extend([
            json!(spec["type"].as_str().unwrap_or("ClusterIP")),
            json!(spec["clusterIP"].as_str().unwrap_or("<none>")),
            json!(external_ip(obj)),
            json!(service_ports(spec)),
            json!(age),
            json!(selector(&spec["selector"])),
        ]),
        "Namespace" => c.extend([
            json!(status["phase"].as_str().unwrap_or("Active")),
            json!(age),
        ]),
        "ConfigMap" => c.extend([
            json!(
                obj["data"].as_object().map_or(0, |m| m.len())
                    + obj["binaryData"].as_object().map_or(0, |m| m.len())
            ),
            json!(age),
        ]),
        "Secret" => c.extend([
            json!(obj["type"].as_str().unwrap_or("Opaque")),
            json!(obj["data"].as_object().map_or(0, |m| m.len())),
            json!(age),
        ]),
        "PersistentVolumeClaim" => c.extend([
            json!(status["phase"].as_str().unwrap_or("Pending")),
            json!(spec["volumeName"].as_str().unwrap_or("")),
            json!(status["capacity"]["storage"].as_str().unwrap_or("")),
            json!(""),
            json!(or_none(
                spec["storageClassName"].as_str().unwrap_or("").to_string()
            )),
            json!("<unset>"),
            json!(age),
        ]),
        "Pod" => {
            let total = spec["containers"].as_array().map_or(0, |a| a.len());
            c.extend([
                json!(format!("0/{total}")),
                json!(status["phase"].as_str().unwrap_or("Pending")),
                json!("0"),
                json!(age),
            ])
        }
        "ServiceAccount" => c.extend([
            json!(obj["secrets"].as_array().map_or(0, |a| a.len()).to_string()),
            json!(age),
        ]),
        "PodDisruptionBudget" => c.extend([
            json!(int_or_string(&spec["minAvailable"])),
            json!(int_or_string(&spec["maxUnavailable"])),
            json!(int(&status["disruptionsAllowed"])),
            json!(age),
        ]),
        "NetworkPolicy" => c.extend([json!(selector(&spec["podSelector"])), json!(age)]),
        "Lease" => c.extend([
            json!(spec["holderIdentity"].as_str().unwrap_or("")),
            json!(age),
        ]),
        _ => c.push(json!(age)),
    }
    c
}

fn partial_metadata(obj: &Value) -> Value {
    let mut meta = obj["metadata"].clone();
    if let Some(m) = meta.as_object_mut() {
        m.remove("managedFields");
    }
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta})
}

/// A Table of `objects` (one object for a get, all of them for a list).
pub fn table(kind: &ResourceKind, objects: &[Value], resource_version: &str) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| json!({"cells": cells(kind.kind, o), "object": partial_metadata(o)}))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns(kind.kind),
        "rows": rows,
    })
}
