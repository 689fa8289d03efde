//! The inventory: a ConfigMap in the environment's namespace listing every
//! object sync applied (group/kind/namespace/name) and the commit synced. It
//! is the environment's ApplySet parent (see `crate::ownership`).
//!
//! Prune deletes only objects listed here *and* carrying this parent's id, so
//! a hand-made object or another environment's is never deleted. Updates are
//! crash-safe: widened to old ∪ new before applying, narrowed to new after
//! pruning, so an interrupted sync never forgets an object it created. Every
//! write carries the resourceVersion last read: a concurrent writer makes it
//! fail with a conflict instead of losing the other's entries.

use super::cluster::Cluster;
use super::kinds::{self, ObjectKey};
use crate::ownership::{
    APPLYSET_GROUP_KINDS, APPLYSET_ID, APPLYSET_TOOLING, FIELD_MANAGER, INVENTORY_LABEL,
    MANAGED_BY_LABEL, MANAGED_BY_SYNC, Owner, SYSTEM, SYSTEM_LABEL, TOOLING,
};
use anyhow::{Result, anyhow};
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub objects: BTreeSet<ObjectKey>,
    /// The commit of the last completed sync.
    pub commit: Option<String>,
    /// The namespace the ConfigMap lives in (where it was found).
    pub namespace: String,
    /// The resourceVersion it was read or last written with; None if it does not exist.
    pub resource_version: Option<String>,
}

impl Inventory {
    /// A new, empty inventory for `owner` (not stored yet).
    pub fn empty(owner: &Owner) -> Inventory {
        Inventory {
            namespace: owner.namespace.clone(),
            ..Inventory::default()
        }
    }

    pub fn from_configmap(cm: &Value) -> Inventory {
        let data = cm.get("data");
        let text = |k: &str| {
            data.and_then(|d| d.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let meta = |k: &str| {
            cm.pointer(&format!("/metadata/{k}"))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let objects = text("objects")
            .lines()
            .filter_map(ObjectKey::from_inventory_line)
            .collect();
        let commit = Some(text("commit").to_string()).filter(|c| !c.is_empty());
        Inventory {
            objects,
            commit,
            namespace: meta("namespace").unwrap_or_default(),
            resource_version: meta("resourceVersion"),
        }
    }

    /// The ConfigMap, as an ApplySet parent: its id label, the tooling and
    /// the member kinds (what ApplySet-aware tools read).
    pub fn to_configmap(&self, owner: &Owner) -> Value {
        let lines: Vec<String> = self
            .objects
            .iter()
            .map(ObjectKey::to_inventory_line)
            .collect();
        let mut group_kinds: Vec<String> = self
            .objects
            .iter()
            .map(|k| {
                if k.group.is_empty() {
                    k.kind.clone()
                } else {
                    format!("{}.{}", k.kind, k.group)
                }
            })
            .collect();
        group_kinds.sort();
        group_kinds.dedup();
        let mut metadata = json!({
            "name": owner.inventory_name(),
            "namespace": owner.namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY_SYNC,
                SYSTEM_LABEL: SYSTEM,
                INVENTORY_LABEL: owner.env,
                APPLYSET_ID: owner.applyset_id(),
            },
            "annotations": {
                APPLYSET_TOOLING: TOOLING,
                APPLYSET_GROUP_KINDS: group_kinds.join(","),
            },
        });
        if let Some(version) = &self.resource_version {
            metadata["resourceVersion"] = json!(version);
        }
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": {
                "env": owner.env,
                "commit": self.commit.clone().unwrap_or_default(),
                "objects": lines.join("\n"),
            },
        })
    }

    /// Store this inventory (server-side apply, like every other object), on
    /// the condition that nobody wrote it since it was read; remember the new
    /// resourceVersion for the next write.
    pub async fn write(&mut self, cluster: &Cluster, owner: &Owner, dry_run: bool) -> Result<()> {
        let kind = kinds::lookup("v1", "ConfigMap").expect("ConfigMap is a known kind");
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        let name = owner.inventory_name();
        let stored = cluster
            .patch_value(
                kind,
                &owner.namespace,
                &name,
                &params,
                &Patch::Apply(&self.to_configmap(owner)),
            )
            .await
            .map_err(|e| match &e {
                kube::Error::Api(status) if status.code == 409 => anyhow!(
                    "writing the inventory ConfigMap/{name}: it changed since this sync read it \
                     (another sync of `{}` at the same time?); nothing more was written, run sync again",
                    owner.env
                ),
                _ => cluster.explain(&format!("writing the inventory ConfigMap/{name}"), e),
            })?;
        if !dry_run {
            self.resource_version = stored
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        Ok(())
    }

    /// Delete this (superseded) inventory ConfigMap, on the same condition.
    /// Only the ConfigMap: the objects it lists stay where they are.
    pub async fn delete(&self, cluster: &Cluster, env: &str) -> Result<()> {
        let kind = kinds::lookup("v1", "ConfigMap").expect("ConfigMap is a known kind");
        let name = crate::ownership::inventory_name(env);
        let params = kube::api::DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: self.resource_version.clone(),
                uid: None,
            }),
            ..Default::default()
        };
        match cluster
            .api(kind, &self.namespace)
            .delete(&name, &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if super::cluster::is_not_found(&e) => Ok(()),
            Err(e) => Err(cluster.explain(
                &format!(
                    "deleting the superseded inventory {}/ConfigMap/{name}",
                    self.namespace
                ),
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmap_round_trip_as_an_applyset_parent() {
        let owner = Owner::new("minikube", "micro");
        let inv = Inventory {
            objects: [
                "apps/Deployment/micro/a",
                "/Service/micro/a",
                "/Namespace//micro",
            ]
            .iter()
            .map(|l| ObjectKey::from_inventory_line(l).unwrap())
            .collect(),
            commit: Some("abc".into()),
            namespace: "micro".into(),
            resource_version: Some("42".into()),
        };
        let cm = inv.to_configmap(&owner);
        assert_eq!(cm["metadata"]["name"], "xtask-inventory-minikube");
        assert_eq!(cm["metadata"]["resourceVersion"], "42");
        assert_eq!(cm["metadata"]["labels"][APPLYSET_ID], owner.applyset_id());
        assert_eq!(
            cm["metadata"]["annotations"][APPLYSET_GROUP_KINDS],
            "Deployment.apps,Namespace,Service"
        );
        assert!(
            cm["metadata"]["labels"]
                .get(crate::ownership::APPLYSET_PART_OF)
                .is_none(),
            "a parent is not its own member"
        );
        assert_eq!(Inventory::from_configmap(&cm), inv);
        assert_eq!(Inventory::from_configmap(&json!({})), Inventory::default());
    }
}
