//! Where each deployed Service can be reached, for `status`: a NodePort on the
//! node (the API server's host, as on minikube), a LoadBalancer's hostname or IP
//! once the cloud assigned one ("pending" until then), a ClusterIP inside the
//! cluster only.

use serde::Serialize;
use serde_json::Value;

#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub namespace: String,
    pub service: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `host:port`, or `pending`, or `-` (headless).
    pub endpoint: String,
}

/// The host of the API server URL (`https://192.168.49.2:8443` → `192.168.49.2`).
pub fn node_host(server: &str) -> String {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host.to_string(),
        _ => authority.to_string(),
    }
}

/// The endpoint of one live Service.
pub fn of(svc: &Value, node: &str) -> Endpoint {
    let spec = &svc["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP").to_string();
    let ports: Vec<&Value> = spec["ports"].as_array().into_iter().flatten().collect();
    let first = |field: &str| {
        ports
            .iter()
            .find_map(|p| p[field].as_u64())
            .map(|p| p.to_string())
            .unwrap_or_default()
    };
    let endpoint = match kind.as_str() {
        "NodePort" => format!("{node}:{}", first("nodePort")),
        "LoadBalancer" => {
            let ingress = &svc["status"]["loadBalancer"]["ingress"][0];
            match ingress["hostname"].as_str().or(ingress["ip"].as_str()) {
                Some(host) => format!("{host}:{}", first("port")),
                None => "pending".to_string(),
            }
        }
        _ => match spec["clusterIP"].as_str() {
            Some(ip) if ip != "None" => format!("{ip}:{}", first("port")),
            _ => "-".to_string(),
        },
    };
    Endpoint {
        namespace: svc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        service: svc["metadata"]["name"].as_str().unwrap_or("").to_string(),
        kind,
        endpoint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: Value, status: Value) -> Value {
        json!({"metadata": {"name": "webapp", "namespace": "micro"}, "spec": spec, "status": status})
    }

    #[test]
    fn each_type_has_its_endpoint() {
        let node = node_host("https://192.168.49.2:8443");
        assert_eq!(node, "192.168.49.2");
        let np = svc(
            json!({"type": "NodePort", "ports": [{"port": 3000, "nodePort": 30080}]}),
            json!({}),
        );
        assert_eq!(of(&np, &node).endpoint, "192.168.49.2:30080");
        let lb = json!({"type": "LoadBalancer", "ports": [{"port": 80, "nodePort": 31000}]});
        assert_eq!(
            of(&svc(lb.clone(), json!({"loadBalancer": {}})), &node).endpoint,
            "pending"
        );
        let assigned = json!({"loadBalancer": {"ingress": [{"hostname": "a.elb.example"}]}});
        assert_eq!(of(&svc(lb, assigned), &node).endpoint, "a.elb.example:80");
        let ip = svc(
            json!({"clusterIP": "10.96.0.7", "ports": [{"port": 8080}]}),
            json!({}),
        );
        assert_eq!(
            (
                of(&ip, &node).kind.as_str(),
                of(&ip, &node).endpoint.as_str()
            ),
            ("ClusterIP", "10.96.0.7:8080")
        );
        let headless = svc(
            json!({"clusterIP": "None", "ports": [{"port": 6379}]}),
            json!({}),
        );
        assert_eq!(of(&headless, &node).endpoint, "-");
        assert_eq!(node_host("http://127.0.0.1:41234"), "127.0.0.1");
    }
}
