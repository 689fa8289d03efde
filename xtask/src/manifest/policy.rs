//! Availability and network rules (the aws environment turns them on):
//! PodDisruptionBudgets, and NetworkPolicies derived from the definitions'
//! `dependencies`, so the network rules can never disagree with who talks to whom.

use super::objects::{NAME_LABEL, labels, meta, selector};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// At most one pod of the service down at a time during voluntary disruptions
/// (node drains, cluster upgrades).
pub fn disruption_budget(name: &str, namespace: &str) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(name, namespace, labels(name)),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(selector(name)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Every pod of the namespace: no traffic in or out unless another policy allows it.
pub fn default_deny(namespace: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta("default-deny", namespace, labels(namespace)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            ..Default::default()
        }),
    }
}

/// Every pod of the namespace may ask the cluster DNS (kube-dns / CoreDNS) for names.
pub fn allow_dns(namespace: &str) -> NetworkPolicy {
    let dns_port = |protocol: &str| NetworkPolicyPort {
        port: Some(IntOrString::Int(53)),
        protocol: Some(protocol.to_string()),
        ..Default::default()
    };
    NetworkPolicy {
        metadata: meta("allow-dns", namespace, labels(namespace)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Egress".to_string()]),
            egress: Some(vec![NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(match_label(
                        "kubernetes.io/metadata.name",
                        "kube-system",
                    )),
                    pod_selector: Some(match_label("k8s-app", "kube-dns")),
                    ..Default::default()
                }]),
                ports: Some(vec![dns_port("UDP"), dns_port("TCP")]),
            }]),
            ..Default::default()
        }),
    }
}

/// Who one workload talks to and who talks to it.
pub struct Traffic<'a> {
    pub name: &'a str,
    /// Its own port, if it serves anything.
    pub port: Option<u16>,
    /// Reachable from anywhere (its Service is a NodePort or LoadBalancer).
    pub public: bool,
    /// Workloads that may connect to it, sorted.
    pub clients: Vec<&'a str>,
    /// (name, port) of what it connects to, sorted.
    pub dependencies: Vec<(&'a str, u16)>,
}

/// The policy of one workload, or None when it neither serves nor calls anything.
pub fn workload_policy(traffic: &Traffic, namespace: &str) -> Option<NetworkPolicy> {
    let tcp = |port: u16| NetworkPolicyPort {
        port: Some(IntOrString::Int(i32::from(port))),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    };
    let ingress = match traffic.port {
        // No `from`: any source, inside or outside the cluster.
        Some(port) if traffic.public => Some(vec![NetworkPolicyIngressRule {
            from: None,
            ports: Some(vec![tcp(port)]),
        }]),
        Some(port) if !traffic.clients.is_empty() => Some(vec![NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                pod_selector: Some(LabelSelector {
                    match_expressions: Some(vec![LabelSelectorRequirement {
                        key: NAME_LABEL.to_string(),
                        operator: "In".to_string(),
                        values: Some(traffic.clients.iter().map(|c| c.to_string()).collect()),
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ports: Some(vec![tcp(port)]),
        }]),
        _ => None,
    };
    let egress = (!traffic.dependencies.is_empty()).then(|| {
        traffic
            .dependencies
            .iter()
            .map(|(dep, port)| NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    pod_selector: Some(match_label(NAME_LABEL, dep)),
                    ..Default::default()
                }]),
                ports: Some(vec![tcp(*port)]),
            })
            .collect::<Vec<_>>()
    });
    let mut types = Vec::new();
    if ingress.is_some() {
        types.push("Ingress".to_string());
    }
    if egress.is_some() {
        types.push("Egress".to_string());
    }
    if types.is_empty() {
        return None;
    }
    Some(NetworkPolicy {
        metadata: meta(traffic.name, namespace, labels(traffic.name)),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(traffic.name)),
            policy_types: Some(types),
            ingress,
            egress,
        }),
    })
}

fn match_label(key: &str, value: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(key.to_string(), value.to_string())])),
        ..Default::default()
    }
}
