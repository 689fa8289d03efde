//! The defaults kube-apiserver fills in (so that they do not show up as diffs
//! after an apply), and the allocations it makes (ClusterIPs, NodePorts).
use crate::store::Store;
use crate::store::resources::ResourceKind;
use serde_json::{Value, json};

/// Sets `obj[key]` to `value` when absent.
fn or_insert(obj: &mut Value, key: &str, value: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.entry(key.to_string()).or_insert(value);
    }
}

fn each<'a>(v: &'a mut Value, key: &str) -> impl Iterator<Item = &'a mut Value> {
    v.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flat_map(|a| a.iter_mut())
}

/// `Always` for `:latest` or an untagged image, `IfNotPresent` otherwise (digests too).
pub fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn probe(p: &mut Value) {
    or_insert(p, "timeoutSeconds", json!(1));
    or_insert(p, "periodSeconds", json!(10));
    or_insert(p, "successThreshold", json!(1));
    or_insert(p, "failureThreshold", json!(3));
    if let Some(get) = p.get_mut("httpGet") {
        or_insert(get, "scheme", json!("HTTP"));
    }
}

fn container(c: &mut Value) {
    or_insert(c, "terminationMessagePath", json!("/dev/termination-log"));
    or_insert(c, "terminationMessagePolicy", json!("File"));
    let policy = image_pull_policy(c["image"].as_str().unwrap_or(""));
    or_insert(c, "imagePullPolicy", json!(policy));
    or_insert(c, "resources", json!({}));
    for port in each(c, "ports") {
        or_insert(port, "protocol", json!("TCP"));
    }
    for name in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(name) {
            probe(p);
        }
    }
    for env in each(c, "env") {
        if let Some(field_ref) = env.get_mut("valueFrom").and_then(|v| v.get_mut("fieldRef")) {
            or_insert(field_ref, "apiVersion", json!("v1"));
        }
    }
}

pub fn pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    or_insert(spec, "restartPolicy", json!("Always"));
    or_insert(spec, "terminationGracePeriodSeconds", json!(30));
    or_insert(spec, "dnsPolicy", json!("ClusterFirst"));
    or_insert(spec, "securityContext", json!({}));
    or_insert(spec, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers"] {
        for c in each(spec, list) {
            container(c);
        }
    }
    for vol in each(spec, "volumes") {
        for source in ["configMap", "secret"] {
            if let Some(s) = vol.get_mut(source) {
                or_insert(s, "defaultMode", json!(420));
            }
        }
    }
}

fn template(spec: &mut Value) {
    if let Some(ps) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        pod_spec(ps);
    }
}

fn deployment(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec") else {
        return;
    };
    or_insert(spec, "replicas", json!(1));
    or_insert(spec, "revisionHistoryLimit", json!(10));
    or_insert(spec, "progressDeadlineSeconds", json!(600));
    or_insert(spec, "strategy", json!({}));
    let strategy = &mut spec["strategy"];
    or_insert(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        or_insert(strategy, "rollingUpdate", json!({}));
        or_insert(
            &mut strategy["rollingUpdate"],
            "maxUnavailable",
            json!("25%"),
        );
        or_insert(&mut strategy["rollingUpdate"], "maxSurge", json!("25%"));
    }
    template(spec);
}

fn statefulset(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec") else {
        return;
    };
    or_insert(spec, "replicas", json!(1));
    or_insert(spec, "revisionHistoryLimit", json!(10));
    or_insert(spec, "podManagementPolicy", json!("OrderedReady"));
    or_insert(spec, "updateStrategy", json!({}));
    let strategy = &mut spec["updateStrategy"];
    or_insert(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        or_insert(strategy, "rollingUpdate", json!({}));
        or_insert(&mut strategy["rollingUpdate"], "partition", json!(0));
    }
    or_insert(
        spec,
        "persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    for pvc in each(spec, "volumeClaimTemplates") {
        or_insert(pvc, "apiVersion", json!("v1"));
        or_insert(pvc, "kind", json!("PersistentVolumeClaim"));
        if let Some(s) = pvc.get_mut("spec") {
            or_insert(s, "volumeMode", json!("Filesystem"));
        }
        or_insert(pvc, "status", json!({"phase": "Pending"}));
    }
    template(spec);
}

fn service(obj: &mut Value, old: Option<&Value>, store: &mut Store) {
    let Some(spec) = obj.get_mut("spec") else {
        return;
    };
    or_insert(spec, "type", json!("ClusterIP"));
    or_insert(spec, "sessionAffinity", json!("None"));
    let svc_type = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    if svc_type == "ExternalName" {
        return;
    }
    // Allocated values survive an update that omits them, as on the real server.
    let old_spec = old.map(|o| &o["spec"]);
    if spec.get("clusterIP").is_none() {
        let ip = old_spec
            .and_then(|s| s["clusterIP"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| store.allocate_cluster_ip());
        spec["clusterIP"] = json!(ip);
    }
    let ip = spec["clusterIP"].clone();
    or_insert(spec, "clusterIPs", json!([ip]));
    or_insert(spec, "ipFamilies", json!(["IPv4"]));
    or_insert(spec, "ipFamilyPolicy", json!("SingleStack"));
    or_insert(spec, "internalTrafficPolicy", json!("Cluster"));
    let wants_node_port = svc_type == "NodePort" || svc_type == "LoadBalancer";
    if !wants_node_port {
        drop_type_dependent_fields(spec, old_spec);
    }
    if wants_node_port {
        or_insert(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if svc_type == "LoadBalancer" {
        or_insert(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    let old_ports: Vec<Value> = old_spec
        .and_then(|s| s["ports"].as_array().cloned())
        .unwrap_or_default();
    for port in each(spec, "ports") {
        or_insert(port, "protocol", json!("TCP"));
        let number = port["port"].clone();
        or_insert(port, "targetPort", number);
        if wants_node_port && port.get("nodePort").is_none() {
            let kept = old_ports
                .iter()
                .find(|o| o["port"] == port["port"] && o["protocol"] == port["protocol"])
                .and_then(|o| o["nodePort"].as_u64());
            let np = kept.unwrap_or_else(|| store.allocate_node_port() as u64);
            port["nodePort"] = json!(np);
        }
    }
    or_insert(obj, "status", json!({"loadBalancer": {}}));
}

/// A Service that stops being NodePort/LoadBalancer loses the values that type
/// implied, unless the request set them anew (kube-apiserver's dropTypeDependentFields).
fn drop_type_dependent_fields(spec: &mut Value, old_spec: Option<&Value>) {
    let Some(old) = old_spec else { return };
    if !matches!(old["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
        return;
    }
    for field in [
        "externalTrafficPolicy",
        "allocateLoadBalancerNodePorts",
        "healthCheckNodePort",
    ] {
        if spec.get(field).is_some() && spec[field] == old[field] {
            spec.as_object_mut()
                .expect("spec is an object")
                .remove(field);
        }
    }
    let old_ports: Vec<Value> = old["ports"].as_array().cloned().unwrap_or_default();
    for port in each(spec, "ports") {
        let same = old_ports.iter().any(|o| {
            o["port"] == port["port"]
                && o.get("nodePort").is_some()
                && o["nodePort"] == port["nodePort"]
        });
        if same {
            port.as_object_mut()
                .expect("port is an object")
                .remove("nodePort");
        }
    }
}

fn namespace(obj: &mut Value) {
    let name = obj["metadata"]["name"].clone();
    let meta = crate::store::meta::metadata_mut(obj);
    let labels = meta.entry("labels").or_insert(json!({}));
    or_insert(labels, "kubernetes.io/metadata.name", name);
    or_insert(obj, "spec", json!({"finalizers": ["kubernetes"]}));
    or_insert(obj, "status", json!({"phase": "Active"}));
}

fn secret(obj: &mut Value) {
    or_insert(obj, "type", json!("Opaque"));
    // stringData is write-only: folded into data, base64-encoded.
    if let Some(Value::Object(string_data)) =
        obj.as_object_mut().and_then(|m| m.remove("stringData"))
    {
        or_insert(obj, "data", json!({}));
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or("").to_string();
            obj["data"][k] = json!(crate::store::meta::base64(text.as_bytes()));
        }
    }
}

fn network_policy(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec") else {
        return;
    };
    if spec.get("policyTypes").is_none() {
        let mut types = vec![json!("Ingress")];
        if spec.get("egress").is_some() {
            types.push(json!("Egress"));
        }
        spec["policyTypes"] = Value::Array(types);
    }
}

fn pvc(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec") {
        or_insert(spec, "volumeMode", json!("Filesystem"));
    }
    or_insert(obj, "status", json!({"phase": "Pending"}));
}

fn pod(obj: &mut Value) {
    if let Some(spec) = obj.get_mut("spec") {
        pod_spec(spec);
    }
    or_insert(
        obj,
        "status",
        json!({"phase": "Pending", "qosClass": "BestEffort"}),
    );
}

/// Fills in the defaults of `kind` (`old`: the stored object, for allocations to keep).
pub fn apply(kind: &ResourceKind, obj: &mut Value, old: Option<&Value>, store: &mut Store) {
    match kind.kind {
        "Deployment" => deployment(obj),
        "StatefulSet" => statefulset(obj),
        "Service" => service(obj, old, store),
        "Namespace" => namespace(obj),
        "Secret" => secret(obj),
        "NetworkPolicy" => network_policy(obj),
        "PersistentVolumeClaim" => pvc(obj),
        "Pod" => pod(obj),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("web"), "Always");
        assert_eq!(image_pull_policy("web:latest"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/web"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/web:1.2"), "IfNotPresent");
        assert_eq!(image_pull_policy("web@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn a_deployment_gets_the_servers_defaults() {
        let mut store = Store::new();
        let kind = crate::store::resources::find("apps", "v1", "deployments").unwrap();
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "web:1", "ports": [{"containerPort": 80}], "readinessProbe": {"httpGet": {"path": "/", "port": 80}}}
        ]}}}});
        apply(kind, &mut d, None, &mut store);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTP");
        assert_eq!(c["readinessProbe"]["failureThreshold"], 3);
        assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn a_nodeport_service_gets_ips_and_ports_kept_across_updates() {
        let mut store = Store::new();
        let kind = crate::store::resources::find("", "v1", "services").unwrap();
        let mut s = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        apply(kind, &mut s, None, &mut store);
        let np = s["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!((30000..=32767).contains(&np));
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
        let mut again = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
        apply(kind, &mut again, Some(&s), &mut store);
        assert_eq!(
            again["spec"]["ports"][0]["nodePort"],
            s["spec"]["ports"][0]["nodePort"]
        );
        assert_eq!(again["spec"]["clusterIP"], s["spec"]["clusterIP"]);
    }
}
