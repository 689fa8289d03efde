//! The ownership contract: the labels, field manager and object names that say
//! an object belongs to micro, and to which environment's sync.
//!
//! Render writes these labels, sync stamps the environment's ApplySet label,
//! prune trusts nothing else. They are defined here once so that the writers
//! and the deleter cannot drift apart.
//!
//! Ownership follows kubectl's ApplySet design (KEP-3659): the inventory
//! ConfigMap of an environment is the ApplySet *parent*; every object sync
//! applies carries `applyset.kubernetes.io/part-of=<that parent's id>`. The id
//! is derived from the parent's name and namespace, so two environments (or
//! one environment moved to another namespace) never share it.

use base64::Engine;
use sha2::{Digest, Sha256};

/// The server-side apply field manager of sync (and of its inventory).
pub const FIELD_MANAGER: &str = "xtask";

/// `app.kubernetes.io/managed-by`: who writes an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Its value on everything render writes and sync applies.
pub const MANAGED_BY_SYNC: &str = "xtask";
/// Its value on the Secrets `cargo xtask secrets` makes: not sync's, never pruned.
pub const MANAGED_BY_SECRETS: &str = "xtask-secrets";

/// `app.kubernetes.io/part-of`: the system an object belongs to.
pub const SYSTEM_LABEL: &str = "app.kubernetes.io/part-of";
pub const SYSTEM: &str = "micro";

/// On every applied object: the id of the environment's ApplySet parent.
pub const APPLYSET_PART_OF: &str = "applyset.kubernetes.io/part-of";
/// On the parent (the inventory ConfigMap): its own id.
pub const APPLYSET_ID: &str = "applyset.kubernetes.io/id";
/// On the parent: which tool manages the set (kubectl leaves it alone).
pub const APPLYSET_TOOLING: &str = "applyset.kubernetes.io/tooling";
pub const TOOLING: &str = "xtask/v1";
/// On the parent: the kinds its members have, `Deployment.apps,Service`.
pub const APPLYSET_GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";

/// On the inventory ConfigMap: the environment it belongs to. Lets sync find
/// an environment's inventory in any namespace (a namespace change).
pub const INVENTORY_LABEL: &str = "xtask.micro/inventory";

/// One environment deployed into one namespace: the owner of a set of objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub env: String,
    pub namespace: String,
}

impl Owner {
    pub fn new(env: &str, namespace: &str) -> Owner {
        Owner {
            env: env.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// The inventory ConfigMap (the ApplySet parent), in `namespace`.
    pub fn inventory_name(&self) -> String {
        inventory_name(&self.env)
    }

    /// The Lease a sync of this environment holds, beside the inventory.
    pub fn lease_name(&self) -> String {
        format!("xtask-sync-{}", self.env)
    }

    /// kubectl's ApplySet id of the parent: `applyset-<base64url(sha256(
    /// <name>.<namespace>.<kind>.<group>))>-v1` (55 characters, a valid label value).
    pub fn applyset_id(&self) -> String {
        let key = format!("{}.{}.ConfigMap.", self.inventory_name(), self.namespace);
        let digest = Sha256::digest(key.as_bytes());
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest);
        format!("applyset-{encoded}-v1")
    }

    /// The label selector of this owner's objects.
    pub fn member_selector(&self) -> String {
        format!("{APPLYSET_PART_OF}={}", self.applyset_id())
    }
}

/// `xtask-inventory-<env>`.
pub fn inventory_name(env: &str) -> String {
    format!("xtask-inventory-{env}")
}

/// The label selector of every inventory of `env`, in whatever namespace.
pub fn inventory_selector(env: &str) -> String {
    format!("{INVENTORY_LABEL}={env}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applyset_ids_follow_kubectls_formula_and_differ_per_namespace() {
        let id = Owner::new("minikube", "micro").applyset_id();
        // base64url(sha256("xtask-inventory-minikube.micro.ConfigMap.")), computed with Python's
        // hashlib and base64 as a reference.
        assert_eq!(
            id,
            "applyset-XXFNldmK9agWOvfvsGQHbjXtDE_HDBM3PVTpVqw2vgk-v1"
        );
        assert_eq!(id.len(), 55);
        assert!(id.len() <= 63, "a label value has at most 63 characters");
        assert_ne!(id, Owner::new("minikube", "other").applyset_id());
        assert_ne!(id, Owner::new("aws", "micro").applyset_id());
    }
}
