//! What sync would do to each object: create, configure, leave unchanged,
//! prune, keep, or refuse to take over. Decided without a request where
//! possible (see `normalize`); only objects that look different are confirmed
//! with a dry-run apply.
//!
//! The ownership rules live here, in [`build`]:
//! - an object is *ours* when it carries the environment's ApplySet label or
//!   the environment's inventory lists it; a live object that is neither is
//!   [`Action::Foreign`] and is not applied unless `adopt`;
//! - a prune candidate must be in the inventory *and* carry the label *and*
//!   be in a namespace the commit declares;
//! - a candidate that holds data (a Namespace, a PersistentVolumeClaim, a
//!   StatefulSet with volume claim templates) is [`Action::Keep`] unless
//!   `prune_data`, and so is every candidate under `--no-prune`.

use super::apply;
use super::cluster::Cluster;
use super::kinds::ObjectKey;
use super::live::Live;
use super::normalize::{self, owned_fields, strip};
use super::source::DesiredObject;
use anyhow::Result;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Configure,
    Unchanged,
    Prune,
    /// Gone from git but kept (its reason says why).
    Keep,
    /// Exists live, but not ours: not taken over without `--adopt`.
    Foreign,
}

#[derive(Debug, Clone)]
pub struct Change {
    pub key: ObjectKey,
    pub action: Action,
    /// Why an object is kept or refused, for the table.
    pub reason: Option<String>,
    pub desired: Option<DesiredObject>,
    pub live: Option<Value>,
    /// The object as the server would store it (dry-run apply), for Configure.
    pub preview: Option<Value>,
    /// Set by sync once the change was written (or needed no write).
    pub done: bool,
}

/// What the user allowed. The default is sync's without flags.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Delete objects gone from git (`--no-prune` clears it).
    pub prune: bool,
    /// Also delete Namespaces, PVCs and StatefulSets with volumes (`--prune-data`).
    pub prune_data: bool,
    /// Take over objects that exist without our label (`--adopt`).
    pub adopt: bool,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            prune: true,
            prune_data: false,
            adopt: false,
        }
    }
}

pub struct Plan {
    /// In apply order; prune candidates last.
    pub changes: Vec<Change>,
}

/// Objects per action, as the `summary` of a diff document.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanCounts {
    pub create: usize,
    pub configure: usize,
    pub unchanged: usize,
    pub prune: usize,
    pub keep: usize,
    pub not_ours: usize,
}

impl Action {
    /// The word diff's table and documents use: what a sync would do.
    pub fn word(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Configure => "configure",
            Action::Unchanged => "unchanged",
            Action::Prune => "prune",
            Action::Keep => "keep",
            Action::Foreign => "not ours",
        }
    }
}

/// Compare desired with live. The live objects move into the plan
/// (`live.objects` is left empty). `namespaces` are those the commit declares.
pub fn build(
    desired: &[DesiredObject],
    live: &mut Live,
    namespaces: &BTreeSet<String>,
    rules: Rules,
) -> Plan {
    let mut objects = std::mem::take(&mut live.objects);
    let listed: HashSet<&ObjectKey> = live
        .inventory
        .iter()
        .flat_map(|inv| inv.objects.iter())
        .collect();
    let mut changes: Vec<Change> = desired
        .iter()
        .map(|d| {
            let current = objects.remove(&d.key);
            let ours = live.members.contains(&d.key) || listed.contains(&d.key);
            let (action, reason) = match &current {
                None => (Action::Create, None),
                Some(_) if !ours && !rules.adopt => (
                    Action::Foreign,
                    Some("exists, not ours (pass --adopt to take it over)".to_string()),
                ),
                Some(l) if normalize::unchanged(&d.value, l) => (Action::Unchanged, None),
                Some(_) => (Action::Configure, None),
            };
            Change {
                key: d.key.clone(),
                action,
                reason,
                desired: Some(d.clone()),
                live: current,
                preview: None,
                done: false,
            }
        })
        .collect();
    let wanted: HashSet<&ObjectKey> = desired.iter().map(|d| &d.key).collect();
    let mut candidates: Vec<Change> = listed
        .iter()
        .filter(|k| !wanted.contains(*k) && live.members.contains(*k))
        .map(|k| {
            let current = objects.remove(*k);
            let (action, reason) = prune_or_keep(k, current.as_ref(), namespaces, rules);
            Change {
                key: (*k).clone(),
                action,
                reason,
                desired: None,
                live: current,
                preview: None,
                done: false,
            }
        })
        .collect();
    candidates.sort_by(|a, b| b.key.order().cmp(&a.key.order()));
    changes.extend(candidates);
    Plan { changes }
}

/// Whether a prune candidate may go, and if not, why.
fn prune_or_keep(
    key: &ObjectKey,
    live: Option<&Value>,
    namespaces: &BTreeSet<String>,
    rules: Rules,
) -> (Action, Option<String>) {
    let keep = |why: String| (Action::Keep, Some(why));
    if !key.namespace.is_empty() && !namespaces.contains(&key.namespace) {
        return keep(format!(
            "kept: namespace `{}` is not one this commit declares",
            key.namespace
        ));
    }
    if let Some(data) = holds_data(key, live)
        && !rules.prune_data
    {
        return keep(format!("kept: {data} (--prune-data deletes it)"));
    }
    if !rules.prune {
        return keep("kept: --no-prune".to_string());
    }
    (Action::Prune, None)
}

/// What data deleting this object would destroy, if any.
fn holds_data(key: &ObjectKey, live: Option<&Value>) -> Option<&'static str> {
    match key.kind.as_str() {
        "Namespace" => Some("a namespace takes everything in it"),
        "PersistentVolumeClaim" => Some("a volume claim holds data"),
        "StatefulSet"
            if live
                .and_then(|l| l.pointer("/spec/volumeClaimTemplates"))
                .and_then(Value::as_array)
                .is_some_and(|t| !t.is_empty()) =>
        {
            Some("a StatefulSet with volumes")
        }
        _ => None,
    }
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

    /// How many objects each action has: the `summary` of diff's document.
    pub fn counts(&self) -> PlanCounts {
        PlanCounts {
            create: self.count(Action::Create),
            configure: self.count(Action::Configure),
            unchanged: self.count(Action::Unchanged),
            prune: self.count(Action::Prune),
            keep: self.count(Action::Keep),
            not_ours: self.count(Action::Foreign),
        }
    }

    /// Nothing to write. Kept objects do not count: keeping is the decision.
    pub fn in_sync(&self) -> bool {
        self.changes
            .iter()
            .all(|c| matches!(c.action, Action::Unchanged | Action::Keep))
    }

    /// The objects sync refuses to take over.
    pub fn foreign(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action == Action::Foreign)
    }

    /// `2 to change, 1 to create, 1 to prune, 14 unchanged` (+ kept, not ours).
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} to change, {} to create, {} to prune, {} unchanged",
            self.count(Action::Configure),
            self.count(Action::Create),
            self.count(Action::Prune),
            self.count(Action::Unchanged)
        );
        for (action, what) in [(Action::Keep, "kept"), (Action::Foreign, "not ours")] {
            let n = self.count(action);
            if n > 0 {
                text.push_str(&format!(", {n} {what}"));
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::inventory::Inventory;
    use serde_json::json;
    use std::collections::HashMap;

    fn key(kind: &str, namespace: &str, name: &str) -> ObjectKey {
        let group = if matches!(kind, "Deployment" | "StatefulSet") {
            "apps"
        } else {
            ""
        };
        ObjectKey {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn live_with(members: &[&ObjectKey], others: &[&ObjectKey], inventory: &[&ObjectKey]) -> Live {
        let objects: HashMap<ObjectKey, Value> = members
            .iter()
            .chain(others)
            .map(|k| {
                (
                    (*k).clone(),
                    json!({"spec": {"volumeClaimTemplates": [{}]}}),
                )
            })
            .collect();
        Live {
            objects,
            members: members.iter().map(|k| (*k).clone()).collect(),
            inventory: Some(Inventory {
                objects: inventory.iter().map(|k| (*k).clone()).collect(),
                ..Inventory::default()
            }),
            elsewhere: Vec::new(),
            in_scope: Default::default(),
        }
    }

    fn actions(plan: &Plan) -> Vec<(String, Action)> {
        plan.changes
            .iter()
            .map(|c| (c.key.name.clone(), c.action))
            .collect()
    }

    const ALL: Rules = Rules {
        prune: true,
        prune_data: false,
        adopt: false,
    };

    #[test]
    fn the_default_rules_are_syncs_without_flags() {
        let rules = Rules::default();
        assert!(rules.prune && !rules.prune_data && !rules.adopt);
    }

    fn micro() -> BTreeSet<String> {
        BTreeSet::from(["micro".to_string()])
    }

    #[test]
    fn prune_needs_the_inventory_the_label_and_a_declared_namespace() {
        let ours = key("Deployment", "micro", "gone");
        let unlabelled = key("Deployment", "micro", "relabelled-by-hand");
        let stranger = key("ConfigMap", "micro", "impostor");
        let elsewhere = key("ConfigMap", "kube-system", "listed-elsewhere");
        let mut live = live_with(
            &[&ours, &stranger, &elsewhere],
            &[&unlabelled],
            &[&ours, &unlabelled, &elsewhere],
        );
        let plan = build(&[], &mut live, &micro(), ALL);
        assert_eq!(
            actions(&plan),
            [
                ("gone".to_string(), Action::Prune),
                ("listed-elsewhere".to_string(), Action::Keep)
            ]
        );
        assert_eq!(
            plan.summary(),
            "0 to change, 0 to create, 1 to prune, 0 unchanged, 1 kept"
        );
    }

    #[test]
    fn data_is_kept_unless_prune_data_and_everything_is_kept_under_no_prune() {
        let ns = key("Namespace", "", "micro");
        let pvc = key("PersistentVolumeClaim", "micro", "data-postgres-0");
        let sts = key("StatefulSet", "micro", "postgres");
        let cm = key("ConfigMap", "micro", "settings");
        let all = [&ns, &pvc, &sts, &cm];
        let plan = build(&[], &mut live_with(&all, &[], &all), &micro(), ALL);
        let kept: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Keep)
            .map(|c| c.key.name.clone())
            .collect();
        assert_eq!(kept, ["postgres", "data-postgres-0", "micro"]);
        assert_eq!(plan.count(Action::Prune), 1);

        let data = Rules {
            prune_data: true,
            ..ALL
        };
        let plan = build(&[], &mut live_with(&all, &[], &all), &micro(), data);
        assert_eq!(plan.count(Action::Prune), 4);

        let none = Rules {
            prune: false,
            ..ALL
        };
        let plan = build(&[], &mut live_with(&all, &[], &all), &micro(), none);
        assert_eq!(plan.count(Action::Keep), 4);
        assert!(plan.in_sync(), "kept objects need no write");
    }
}
