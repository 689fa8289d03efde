//! One sync: make the cluster match the desired objects of one commit.
//!
//! Order of writes (each skipped when it would change nothing):
//! 1. Namespaces;
//! 2. the inventory widened to old ∪ new;
//! 3. the other stages in dependency order, StatefulSets ready before Deployments;
//! 4. prune, in reverse order;
//! 5. the inventory narrowed to new, with the commit;
//! 6. wait for rollouts.
//!
//! `dry_run` takes exactly this path with `dryRun=All` on every write.

use super::apply;
use super::cluster::Cluster;
use super::inventory::Inventory;
use super::kinds::{ObjectKey, STATEFULSET_STAGE};
use super::live;
use super::plan::{self, Action, Plan};
use super::rollout;
use super::source::{Desired, DesiredObject};
use crate::environment::Environment;
use anyhow::{Result, bail};
use std::collections::BTreeSet;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub dry_run: bool,
    pub prune: bool,
    pub allow_empty: bool,
    pub wait: bool,
    pub timeout: Duration,
}

pub struct Outcome {
    pub plan: Plan,
    /// Set when the objects were applied but a rollout failed or timed out.
    pub rollout_error: Option<String>,
}

pub async fn sync(
    cluster: &Cluster,
    env: &Environment,
    desired: &Desired,
    options: &SyncOptions,
) -> Result<Outcome> {
    let mut live = live::fetch(cluster, &env.name, &env.namespace, &desired.objects).await?;
    let mut plan = plan::build(&desired.objects, &mut live);
    if !options.prune {
        plan.changes.retain(|c| c.action != Action::Prune);
    }
    if desired.objects.is_empty() && plan.count(Action::Prune) > 0 && !options.allow_empty {
        bail!(
            "commit {} has no objects for `{}`: refusing to prune all {} objects (pass --allow-empty to do that)",
            &desired.commit[..7],
            env.name,
            plan.count(Action::Prune)
        );
    }
    plan::confirm(cluster, &mut plan).await?;

    let to_write: Vec<&DesiredObject> = plan
        .changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Configure))
        .filter_map(|c| c.desired.as_ref())
        .collect();
    // In a dry run a namespace that does not exist yet stays absent, so
    // nothing inside it can be dry-run applied: those objects are only listed.
    let new_namespaces: BTreeSet<&str> = if options.dry_run {
        to_write
            .iter()
            .filter(|o| o.kind.kind == "Namespace")
            .map(|o| o.key.name.as_str())
            .collect()
    } else {
        BTreeSet::new()
    };
    let reachable = |o: &&DesiredObject| !new_namespaces.contains(o.key.namespace.as_str());

    let namespaces: Vec<&DesiredObject> = to_write
        .iter()
        .copied()
        .filter(|o| o.kind.stage == 0)
        .collect();
    apply::apply_all(cluster, &namespaces, options.dry_run).await?;

    let old = live.inventory.clone().unwrap_or_default();
    let new_keys: BTreeSet<ObjectKey> = desired.objects.iter().map(|o| o.key.clone()).collect();
    let inventory_reachable = !new_namespaces.contains(env.namespace.as_str());
    let mut stored = old.clone();
    if !new_keys.is_subset(&old.objects) && inventory_reachable {
        let widened = Inventory {
            objects: old.objects.union(&new_keys).cloned().collect(),
            commit: old.commit.clone(),
        };
        widened
            .write(cluster, &env.name, &env.namespace, options.dry_run)
            .await?;
        stored = widened;
    }

    let progress = apply::progress_bar(to_write.len().saturating_sub(namespaces.len()), "applying");
    let mut waited: Vec<ObjectKey> = Vec::new();
    let stages: BTreeSet<u8> = to_write
        .iter()
        .map(|o| o.kind.stage)
        .filter(|s| *s > 0)
        .collect();
    for stage in stages {
        let batch: Vec<&DesiredObject> = to_write
            .iter()
            .copied()
            .filter(|o| o.kind.stage == stage)
            .filter(reachable)
            .collect();
        apply::apply_counted(cluster, &batch, options.dry_run, &progress).await?;
        if stage == STATEFULSET_STAGE && options.wait && !options.dry_run {
            let keys: Vec<ObjectKey> = batch.iter().map(|o| o.key.clone()).collect();
            if let Err(e) = rollout::wait(cluster, &keys, options.timeout).await {
                progress.finish_and_clear();
                return Ok(Outcome {
                    plan,
                    rollout_error: Some(crate::project::one_line(&e)),
                });
            }
            waited = keys;
        }
    }

    progress.finish_and_clear();
    let prunes: Vec<ObjectKey> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Prune)
        .map(|c| c.key.clone())
        .collect();
    super::prune::prune(cluster, &prunes, options.dry_run).await?;

    // Keep an object in the inventory when pruning was skipped (--no-prune),
    // so that a later sync still knows it created it.
    let kept: BTreeSet<ObjectKey> = if options.prune {
        BTreeSet::new()
    } else {
        stored.objects.clone()
    };
    let narrowed = Inventory {
        objects: new_keys.union(&kept).cloned().collect(),
        commit: Some(desired.commit.clone()),
    };
    if narrowed != stored && inventory_reachable {
        narrowed
            .write(cluster, &env.name, &env.namespace, options.dry_run)
            .await?;
    }

    let mut rollout_error = None;
    if options.wait && !options.dry_run {
        let keys: Vec<ObjectKey> = to_write
            .iter()
            .filter(|o| o.kind.has_rollout() && !waited.contains(&o.key))
            .map(|o| o.key.clone())
            .collect();
        if let Err(e) = rollout::wait(cluster, &keys, options.timeout).await {
            rollout_error = Some(crate::project::one_line(&e));
        }
    }
    Ok(Outcome {
        plan,
        rollout_error,
    })
}
