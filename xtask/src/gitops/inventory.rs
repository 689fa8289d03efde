//! The inventory: a ConfigMap in the environment's namespace listing every
//! object sync applied (group/kind/namespace/name) and the commit synced.
//!
//! Prune deletes only objects listed here *and* labelled as ours, so a
//! hand-made object is never deleted whatever its labels say. Updates are
//! crash-safe: widened to old ∪ new before applying, narrowed to new after
//! pruning, so an interrupted sync never forgets an object it created.

use super::cluster::Cluster;
use super::kinds::{self, ObjectKey};
use super::normalize::FIELD_MANAGER;
use anyhow::Result;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use std::collections::BTreeSet;

pub const INVENTORY_LABEL: &str = "xtask.micro/inventory";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by=xtask";

pub fn name(env: &str) -> String {
    format!("xtask-inventory-{env}")
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    pub objects: BTreeSet<ObjectKey>,
    /// The commit of the last completed sync.
    pub commit: Option<String>,
}

impl Inventory {
    pub fn from_configmap(cm: &Value) -> Inventory {
        let data = cm.get("data");
        let text = |k: &str| {
            data.and_then(|d| d.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let objects = text("objects")
            .lines()
            .filter_map(ObjectKey::from_inventory_line)
            .collect();
        let commit = Some(text("commit").to_string()).filter(|c| !c.is_empty());
        Inventory { objects, commit }
    }

    pub fn to_configmap(&self, env: &str, namespace: &str) -> Value {
        let lines: Vec<String> = self
            .objects
            .iter()
            .map(ObjectKey::to_inventory_line)
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name(env),
                "namespace": namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": "xtask",
                    "app.kubernetes.io/part-of": "micro",
                    INVENTORY_LABEL: env,
                },
            },
            "data": {
                "env": env,
                "commit": self.commit.clone().unwrap_or_default(),
                "objects": lines.join("\n"),
            },
        })
    }

    /// Store this inventory (server-side apply, like every other object).
    pub async fn write(
        &self,
        cluster: &Cluster,
        env: &str,
        namespace: &str,
        dry_run: bool,
    ) -> Result<()> {
        let kind = kinds::lookup("v1", "ConfigMap").expect("ConfigMap is a known kind");
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        cluster
            .api(kind, namespace)
            .patch(
                &name(env),
                &params,
                &Patch::Apply(&self.to_configmap(env, namespace)),
            )
            .await
            .map_err(|e| {
                cluster.explain(&format!("writing the inventory ConfigMap/{}", name(env)), e)
            })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configmap_round_trip() {
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
        };
        let cm = inv.to_configmap("minikube", "micro");
        assert_eq!(cm["metadata"]["name"], "xtask-inventory-minikube");
        assert_eq!(Inventory::from_configmap(&cm), inv);
        assert_eq!(Inventory::from_configmap(&json!({})), Inventory::default());
    }
}
