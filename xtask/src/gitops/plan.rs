//! What sync would do to each object: create, configure, leave unchanged or
//! prune. Decided without a request where possible (see `normalize`); only
//! objects that look different are confirmed with a dry-run apply.

use super::apply;
use super::cluster::Cluster;
use super::kinds::ObjectKey;
use super::live::Live;
use super::normalize::{self, owned_fields, strip};
use super::source::DesiredObject;
use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Configure,
    Unchanged,
    Prune,
}

#[derive(Debug, Clone)]
pub struct Change {
    pub key: ObjectKey,
    pub action: Action,
    pub desired: Option<DesiredObject>,
    pub live: Option<Value>,
    /// The object as the server would store it (dry-run apply), for Configure.
    pub preview: Option<Value>,
}

pub struct Plan {
    /// In apply order; prunes last.
    pub changes: Vec<Change>,
}

/// Compare desired with live; prune candidates are inventory entries that are
/// gone from git and still live with our label. The live objects move into
/// the plan (`live.objects` is left empty).
pub fn build(desired: &[DesiredObject], live: &mut Live) -> Plan {
    let mut objects = std::mem::take(&mut live.objects);
    let mut changes: Vec<Change> = desired
        .iter()
        .map(|d| {
            let current = objects.remove(&d.key);
            let action = match &current {
                None => Action::Create,
                Some(l) if normalize::unchanged(&d.value, l) => Action::Unchanged,
                Some(_) => Action::Configure,
            };
            Change {
                key: d.key.clone(),
                action,
                desired: Some(d.clone()),
                live: current,
                preview: None,
            }
        })
        .collect();
    let wanted: std::collections::HashSet<&ObjectKey> = desired.iter().map(|d| &d.key).collect();
    let mut prunes: Vec<Change> = live
        .inventory
        .iter()
        .flat_map(|inv| inv.objects.iter())
        .filter(|k| !wanted.contains(k) && live.labelled.contains(k))
        .map(|k| Change {
            key: k.clone(),
            action: Action::Prune,
            desired: None,
            live: objects.remove(k),
            preview: None,
        })
        .collect();
    prunes.sort_by(|a, b| b.key.order().cmp(&a.key.order()));
    changes.extend(prunes);
    Plan { changes }
}

/// Dry-run apply every Configure candidate; those the server would store
/// exactly as they are live become Unchanged (e.g. `0.5` vs `500m` CPU).
pub async fn confirm(cluster: &Cluster, plan: &mut Plan) -> Result<()> {
    let candidates: Vec<&DesiredObject> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Configure)
        .filter_map(|c| c.desired.as_ref())
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let previews = apply::apply_all(cluster, &candidates, true).await?;
    let mut previews = previews.into_iter();
    for change in plan
        .changes
        .iter_mut()
        .filter(|c| c.action == Action::Configure)
    {
        let preview = previews.next().expect("one preview per candidate");
        let live = change.live.as_ref().expect("configure has a live object");
        let same_fields = owned_fields(live) == owned_fields(&preview);
        if same_fields && normalize::same(&strip(live), &strip(&preview)) {
            change.action = Action::Unchanged;
        }
        change.preview = Some(preview);
    }
    Ok(())
}

impl Plan {
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.action == action).count()
    }

    pub fn in_sync(&self) -> bool {
        self.changes.iter().all(|c| c.action == Action::Unchanged)
    }

    /// `2 to change, 1 to create, 1 to prune, 14 unchanged`
    pub fn summary(&self) -> String {
        format!(
            "{} to change, {} to create, {} to prune, {} unchanged",
            self.count(Action::Configure),
            self.count(Action::Create),
            self.count(Action::Prune),
            self.count(Action::Unchanged)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::inventory::Inventory;
    use serde_json::json;
    use std::collections::{BTreeSet, HashMap};

    fn key(kind: &str, name: &str) -> ObjectKey {
        let group = if kind == "Deployment" { "apps" } else { "" };
        ObjectKey {
            group: group.into(),
            kind: kind.into(),
            namespace: "micro".into(),
            name: name.into(),
        }
    }

    #[test]
    fn prune_needs_both_the_inventory_and_our_label() {
        let ours = key("Deployment", "gone");
        let unlabelled = key("Deployment", "relabelled-by-hand");
        let stranger = key("ConfigMap", "impostor");
        let objects: HashMap<ObjectKey, Value> = [&ours, &unlabelled, &stranger]
            .iter()
            .map(|k| ((*k).clone(), json!({})))
            .collect();
        let mut live = Live {
            objects,
            labelled: [ours.clone(), stranger.clone()].into_iter().collect(),
            inventory: Some(Inventory {
                objects: [ours.clone(), unlabelled.clone()]
                    .into_iter()
                    .collect::<BTreeSet<_>>(),
                commit: None,
            }),
        };
        let plan = build(&[], &mut live);
        let pruned: Vec<&ObjectKey> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Prune)
            .map(|c| &c.key)
            .collect();
        assert_eq!(pruned, [&ours]);
        assert_eq!(
            plan.summary(),
            "0 to change, 0 to create, 1 to prune, 0 unchanged"
        );
    }
}
