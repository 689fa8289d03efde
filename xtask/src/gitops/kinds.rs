//! The object kinds sync knows, with their API coordinates and the stage in
//! which they are applied. A fixed table instead of API discovery: discovery
//! would cost a request per group on every run, and the manifests only ever
//! use these kinds (the manifest rules: apps/v1 and v1 only, plus policy and networking).

use kube::core::ApiResource;
use std::fmt;

#[derive(Debug, PartialEq, Eq)]
pub struct KindInfo {
    pub kind: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    /// Apply order: lower first; prune runs in the reverse order.
    pub stage: u8,
}

pub const KINDS: &[KindInfo] = &[
    KindInfo {
        kind: "Namespace",
        group: "",
        version: "v1",
        plural: "namespaces",
        namespaced: false,
        stage: 0,
    },
    KindInfo {
        kind: "ServiceAccount",
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        namespaced: true,
        stage: 1,
    },
    KindInfo {
        kind: "NetworkPolicy",
        group: "networking.k8s.io",
        version: "v1",
        plural: "networkpolicies",
        namespaced: true,
        stage: 2,
    },
    KindInfo {
        kind: "ConfigMap",
        group: "",
        version: "v1",
        plural: "configmaps",
        namespaced: true,
        stage: 3,
    },
    KindInfo {
        kind: "Secret",
        group: "",
        version: "v1",
        plural: "secrets",
        namespaced: true,
        stage: 3,
    },
    KindInfo {
        kind: "PersistentVolumeClaim",
        group: "",
        version: "v1",
        plural: "persistentvolumeclaims",
        namespaced: true,
        stage: 4,
    },
    KindInfo {
        kind: "Service",
        group: "",
        version: "v1",
        plural: "services",
        namespaced: true,
        stage: 5,
    },
    KindInfo {
        kind: "StatefulSet",
        group: "apps",
        version: "v1",
        plural: "statefulsets",
        namespaced: true,
        stage: 6,
    },
    KindInfo {
        kind: "Deployment",
        group: "apps",
        version: "v1",
        plural: "deployments",
        namespaced: true,
        stage: 7,
    },
    KindInfo {
        kind: "PodDisruptionBudget",
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        namespaced: true,
        stage: 8,
    },
];

/// The stage whose objects must be ready before the next stage is applied.
pub const STATEFULSET_STAGE: u8 = 6;

impl KindInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.to_string(),
            version: self.version.to_string(),
            api_version: self.api_version(),
            kind: self.kind.to_string(),
            plural: self.plural.to_string(),
        }
    }

    /// Kinds whose rollout sync waits for.
    pub fn has_rollout(&self) -> bool {
        self.kind == "Deployment" || self.kind == "StatefulSet"
    }
}

/// The kind named by a manifest's `apiVersion` and `kind`.
pub fn lookup(api_version: &str, kind: &str) -> Option<&'static KindInfo> {
    KINDS
        .iter()
        .find(|k| k.kind == kind && k.api_version() == api_version)
}

pub fn by_group_kind(group: &str, kind: &str) -> Option<&'static KindInfo> {
    KINDS.iter().find(|k| k.kind == kind && k.group == group)
}

/// Identity of one object: what the inventory stores and what sync reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub group: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn info(&self) -> Option<&'static KindInfo> {
        by_group_kind(&self.group, &self.kind)
    }

    pub fn stage(&self) -> u8 {
        self.info().map_or(u8::MAX, |k| k.stage)
    }

    /// `group/Kind/namespace/name`: the inventory's line format.
    pub fn to_inventory_line(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.group, self.kind, self.namespace, self.name
        )
    }

    pub fn from_inventory_line(line: &str) -> Option<ObjectKey> {
        let parts: Vec<&str> = line.trim().split('/').collect();
        match parts.as_slice() {
            [group, kind, namespace, name] if !kind.is_empty() && !name.is_empty() => {
                Some(ObjectKey {
                    group: group.to_string(),
                    kind: kind.to_string(),
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                })
            }
            _ => None,
        }
    }

    /// Sort key: apply order, then name.
    pub fn order(&self) -> (u8, &str, &str, &str) {
        (
            self.stage(),
            self.kind.as_str(),
            self.namespace.as_str(),
            self.name.as_str(),
        )
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inventory_lines_round_trip() {
        let key = ObjectKey {
            group: "apps".into(),
            kind: "Deployment".into(),
            namespace: "micro".into(),
            name: "adderservice".into(),
        };
        assert_eq!(
            key.to_inventory_line(),
            "apps/Deployment/micro/adderservice"
        );
        assert_eq!(
            ObjectKey::from_inventory_line(&key.to_inventory_line()),
            Some(key)
        );
        let ns = ObjectKey {
            group: "".into(),
            kind: "Namespace".into(),
            namespace: "".into(),
            name: "micro".into(),
        };
        assert_eq!(
            ObjectKey::from_inventory_line("/Namespace//micro"),
            Some(ns)
        );
        assert_eq!(ObjectKey::from_inventory_line("garbage"), None);
    }

    #[test]
    fn stages_follow_dependency_order() {
        let stage = |k: &str| KINDS.iter().find(|i| i.kind == k).unwrap().stage;
        assert!(stage("Namespace") < stage("ConfigMap"));
        assert!(stage("Service") < stage("StatefulSet"));
        assert!(stage("StatefulSet") < stage("Deployment"));
        assert!(stage("Deployment") < stage("PodDisruptionBudget"));
        assert_eq!(
            lookup("apps/v1", "Deployment").unwrap().plural,
            "deployments"
        );
        assert!(lookup("extensions/v1beta1", "Deployment").is_none());
    }
}
