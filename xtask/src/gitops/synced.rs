//! Status's question "why does this object differ from git?": when git has
//! moved on since the last sync, an object that still is exactly what the
//! synced commit said is `outdated` (a sync would update it), not `drifted`
//! (someone changed the cluster). Compared like sync compares: normalized,
//! then confirmed by a dry-run apply.

use super::cluster::Cluster;
use super::kinds::ObjectKey;
use super::plan::{self, Action, Change, Plan};
use super::source::{Desired, DesiredObject};
use anyhow::Result;
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The keys (among `changes` that are not in sync) whose live object is the
/// synced commit's version, or that neither the synced commit nor the cluster
/// has (new in git).
pub async fn outdated(
    cluster: &Cluster,
    synced: &Desired,
    changes: &[Change],
) -> Result<HashSet<ObjectKey>> {
    let by_key: HashMap<&ObjectKey, &DesiredObject> =
        synced.objects.iter().map(|o| (&o.key, o)).collect();
    let mut outdated = HashSet::new();
    let mut suspects = Vec::new();
    for change in changes {
        let was = by_key.get(&change.key);
        match (change.action, &change.live, was) {
            // New in git since the sync: the cluster lacks it as synced.
            (Action::Create, None, None) => {
                outdated.insert(change.key.clone());
            }
            (Action::Configure | Action::Prune | Action::Keep, Some(live), Some(was)) => {
                suspects.push(compare(live, was));
            }
            _ => {}
        }
    }
    let mut against_synced = Plan { changes: suspects };
    plan::confirm(cluster, &mut against_synced).await?;
    outdated.extend(
        against_synced
            .changes
            .into_iter()
            .filter(|c| c.action == Action::Unchanged)
            .map(|c| c.key),
    );
    Ok(outdated)
}

/// A change from the live object to the synced commit's version.
fn compare(live: &Value, was: &DesiredObject) -> Change {
    let action = if super::normalize::unchanged(&was.value, live) {
        Action::Unchanged
    } else {
        Action::Configure
    };
    Change {
        key: was.key.clone(),
        action,
        reason: None,
        desired: Some(was.clone()),
        live: Some(live.clone()),
        preview: None,
        done: false,
    }
}
