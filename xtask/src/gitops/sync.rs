//! One sync: make the cluster match the desired objects of one commit.
//!
//! [`sync`] holds the environment's lease and runs the named steps of
//! [`Run`]: plan (read, decide, refuse what is unsafe), apply the namespaces,
//! widen the inventory, apply the other stages (StatefulSets ready before
//! Deployments), prune, narrow the inventory, wait for every rollout. Each
//! write step is skipped when it would change nothing, so a no-op sync writes
//! nothing. `dry_run` takes exactly this path with `dryRun=All` on every write
//! (and no lease: it stores nothing).

use super::apply;
use super::cluster::Cluster;
use super::inventory::Inventory;
use super::kinds::{ObjectKey, STATEFULSET_STAGE};
use super::lease::{self, NamespaceMissing};
use super::live::{self, Live};
use super::output::short;
use super::plan::{self, Action, Plan, Rules};
use super::rollout::{self, Health, Waiter};
use super::source::{Desired, DesiredObject};
use crate::ownership::Owner;
use anyhow::{Result, bail};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub dry_run: bool,
    pub rules: Rules,
    pub allow_empty: bool,
    /// Deploy into another namespace than the live inventory's.
    pub allow_namespace_change: bool,
    pub wait: bool,
    pub timeout: Duration,
    /// How long to wait for another sync of the environment to finish.
    pub lock_timeout: Duration,
    /// Show what would be pruned and ask before deleting it (a terminal, no `--yes`).
    pub confirm_prune: bool,
}

pub struct Outcome {
    pub plan: Plan,
    /// Set when the objects were applied (or some of them) but a rollout
    /// failed or timed out; the changes not made are not `done`.
    pub rollout_error: Option<String>,
    /// Namespaces an earlier inventory of the environment was retired from
    /// (`--allow-namespace-change`); their objects were left in place.
    pub left_behind: Vec<String>,
    /// The commit the inventory recorded before this sync: a failed rollout's rollback.
    pub previous_commit: Option<String>,
}

/// Sync `desired` to `cluster`, one sync of the environment at a time.
///
/// Optimistic: the first plan is made without the lease. When it writes
/// nothing (the common case of a watch), no lease is taken either, so a no-op
/// sync stays free of writes. Otherwise the lease is taken and the plan made
/// again under it, since another sync may have changed things meanwhile.
pub async fn sync(cluster: &Cluster, desired: &Desired, options: &SyncOptions) -> Result<Outcome> {
    let run = Run::plan(cluster, desired, options, None).await?;
    if options.dry_run || !run.needs_writes() {
        return run_steps(run).await;
    }
    let agreed = run.confirm_prunes()?;
    let (held, created) = lock(cluster, desired, options).await?;
    let result = async {
        let mut run = Run::plan(cluster, desired, options, Some(&held)).await?;
        run.refuse_unconfirmed_prunes(agreed.as_ref())?;
        run.created_by_lock(created);
        run_steps(run).await
    }
    .await;
    held.release().await;
    result
}

async fn run_steps(mut run: Run<'_>) -> Result<Outcome> {
    run.apply_namespaces().await?;
    run.widen_inventory().await?;
    if run.apply_stages().await? {
        run.prune().await?;
        run.narrow_inventory().await?;
        run.retire_other_inventories().await?;
        run.wait_rollouts().await;
    }
    Ok(run.finish())
}

/// Take the environment's lease. On a first sync the namespace the lease
/// lives in may not exist yet: it is applied first, as the commit declares it
/// (applying it twice is harmless), and its key returned.
async fn lock(
    cluster: &Cluster,
    desired: &Desired,
    options: &SyncOptions,
) -> Result<(lease::Held, Option<ObjectKey>)> {
    let owner = desired.owner();
    match lease::acquire(cluster, &owner, options.lock_timeout).await {
        Ok(held) => Ok((held, None)),
        Err(e) if e.is::<NamespaceMissing>() => {
            let Some(namespace) = desired
                .objects
                .iter()
                .find(|o| o.kind.kind == "Namespace" && o.key.name == owner.namespace)
            else {
                bail!(
                    "namespace `{}` does not exist and commit {} does not create it (env.yaml's `namespace`)",
                    owner.namespace,
                    short(&desired.commit)
                );
            };
            apply::apply_one(cluster, namespace, false).await?;
            let held = lease::acquire(cluster, &owner, options.lock_timeout).await?;
            Ok((held, Some(namespace.key.clone())))
        }
        Err(e) => Err(e),
    }
}

/// The state of one sync as its steps advance.
struct Run<'a> {
    cluster: &'a Cluster,
    desired: &'a Desired,
    options: &'a SyncOptions,
    lease: Option<&'a lease::Held>,
    owner: Owner,
    plan: Plan,
    /// The inventory as stored now (read, then as last written).
    stored: Inventory,
    elsewhere: Vec<Inventory>,
    /// Namespaces created by this (dry) run: nothing in them can be dry-run applied.
    new_namespaces: BTreeSet<String>,
    /// Keys of the live objects in scope (`-n`/`-l`; all of them without).
    in_scope: BTreeSet<ObjectKey>,
    /// Health read with the live state, for workloads this sync does not write.
    known: HashMap<ObjectKey, Health>,
    /// StatefulSets found ready before Deployments were applied.
    gated: Vec<ObjectKey>,
    rollout_error: Option<String>,
    left_behind: Vec<String>,
    /// The commit the inventory recorded before this sync (what a rollback deploys).
    previous_commit: Option<String>,
    /// One bar for every object applied, namespaces included, as the table counts them.
    progress: indicatif::ProgressBar,
}

impl<'a> Run<'a> {
    /// Read the live state, decide every change, and refuse what is unsafe
    /// before anything is written.
    async fn plan(
        cluster: &'a Cluster,
        desired: &'a Desired,
        options: &'a SyncOptions,
        lease: Option<&'a lease::Held>,
    ) -> Result<Run<'a>> {
        let owner = desired.owner();
        let mut live = live::fetch(cluster, desired).await?;
        refuse_namespace_change(desired, &live, options)?;
        let mut plan = plan::build(
            &desired.objects,
            &mut live,
            &desired.namespaces(),
            options.rules,
        );
        refuse_foreign(&plan)?;
        refuse_empty(desired, &plan, options)?;
        plan::confirm(cluster, &mut plan).await?;
        for change in &mut plan.changes {
            change.done = matches!(change.action, Action::Unchanged | Action::Keep);
        }
        let known = plan
            .changes
            .iter()
            .filter(|c| {
                c.action == Action::Unchanged && c.key.info().is_some_and(|k| k.has_rollout())
            })
            .filter_map(|c| Some((c.key.clone(), rollout::health(c.live.as_ref()?))))
            .collect();
        let new_namespaces = if options.dry_run {
            plan.changes
                .iter()
                .filter(|c| c.action == Action::Create && c.key.kind == "Namespace")
                .map(|c| c.key.name.clone())
                .collect()
        } else {
            BTreeSet::new()
        };
        let Live {
            inventory,
            elsewhere,
            in_scope,
            ..
        } = live;
        let previous_commit = inventory.as_ref().and_then(|i| i.commit.clone());
        Ok(Run {
            cluster,
            desired,
            options,
            lease,
            stored: inventory.unwrap_or_else(|| Inventory::empty(&owner)),
            owner,
            plan,
            elsewhere,
            new_namespaces,
            in_scope,
            known,
            gated: Vec::new(),
            rollout_error: None,
            left_behind: Vec::new(),
            previous_commit,
            progress: indicatif::ProgressBar::hidden(),
        })
    }

    /// Would the steps write anything (objects, prunes or the inventory)?
    fn needs_writes(&self) -> bool {
        let objects_change = self
            .plan
            .changes
            .iter()
            .any(|c| !matches!(c.action, Action::Unchanged | Action::Keep));
        objects_change
            || !self.elsewhere.is_empty()
            || self.inventory_objects() != self.stored.objects
            || self.inventory_commit() != self.stored.commit
    }

    /// What the inventory lists after this sync: what is desired plus what
    /// was kept. A scoped sync (`-n`/`-l`) also keeps every entry outside its
    /// scope: it neither pruned nor forgot them.
    fn inventory_objects(&self) -> BTreeSet<ObjectKey> {
        let kept = self
            .plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Keep)
            .map(|c| c.key.clone());
        let mut objects: BTreeSet<ObjectKey> =
            self.desired_keys().into_iter().chain(kept).collect();
        if !self.desired.scope.is_everything() {
            let outside = self.stored.objects.iter().filter(|k| {
                !self.in_scope.contains(*k) && !self.plan.changes.iter().any(|c| &c.key == *k)
            });
            objects.extend(outside.cloned());
        }
        objects
    }

    /// The commit the inventory records as synced. A scoped sync synced only
    /// part of it, so the record stays as it was.
    fn inventory_commit(&self) -> Option<String> {
        if self.desired.scope.is_everything() {
            Some(self.desired.commit.clone())
        } else {
            self.stored.commit.clone()
        }
    }

    fn prunes(&self) -> BTreeSet<ObjectKey> {
        self.plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Prune)
            .map(|c| c.key.clone())
            .collect()
    }

    /// On a terminal: show what would change and ask before deleting
    /// anything. Returns the prunes agreed to (None when nobody was asked).
    fn confirm_prunes(&self) -> Result<Option<BTreeSet<ObjectKey>>> {
        let prunes = self.prunes();
        if !self.options.confirm_prune || prunes.is_empty() {
            return Ok(None);
        }
        let table = super::output::planned_changes(&self.plan);
        let question = format!(
            "sync of {} to context `{}` deletes {} object(s). Continue?",
            short(&self.desired.commit),
            self.cluster.context,
            prunes.len()
        );
        if !crate::cli::prompt::confirm(&table, &question)? {
            bail!("not confirmed: nothing was changed (pass --yes to prune without asking)");
        }
        Ok(Some(prunes))
    }

    /// Under the lease the plan is made again; it must not delete more than
    /// what was agreed to at the prompt.
    fn refuse_unconfirmed_prunes(&self, agreed: Option<&BTreeSet<ObjectKey>>) -> Result<()> {
        let Some(agreed) = agreed else {
            return Ok(());
        };
        let more: Vec<String> = self
            .prunes()
            .difference(agreed)
            .map(super::output::label)
            .collect();
        if more.is_empty() {
            return Ok(());
        }
        bail!(
            "the cluster changed since the prompt: this sync would now also delete {}; nothing was changed, run sync again",
            more.join(", ")
        );
    }

    /// The namespace [`lock`] had to create is reported as created by this sync.
    fn created_by_lock(&mut self, key: Option<ObjectKey>) {
        for change in &mut self.plan.changes {
            if Some(&change.key) == key.as_ref() {
                change.action = Action::Create;
                change.done = true;
            }
        }
    }

    fn still_locked(&self) -> Result<()> {
        self.lease.map_or(Ok(()), lease::Held::check)
    }

    /// The objects to write in `stage` (those reachable in a dry run).
    fn to_write(&self, stage: impl Fn(u8) -> bool) -> Vec<&'a DesiredObject> {
        let desired = self.desired;
        desired
            .objects
            .iter()
            .filter(|o| stage(o.kind.stage))
            .filter(|o| !self.new_namespaces.contains(&o.key.namespace))
            .filter(|o| {
                self.plan.changes.iter().any(|c| {
                    c.key == o.key
                        && !c.done
                        && matches!(c.action, Action::Create | Action::Configure)
                })
            })
            .collect()
    }

    fn mark_done(&mut self, keys: impl IntoIterator<Item = ObjectKey>) {
        let keys: BTreeSet<ObjectKey> = keys.into_iter().collect();
        for change in &mut self.plan.changes {
            if keys.contains(&change.key) {
                change.done = true;
            }
        }
    }

    async fn apply_namespaces(&mut self) -> Result<()> {
        self.still_locked()?;
        // The namespace the lease needed is already applied: counted as done,
        // so the bar's total is the table's created + configured.
        let applied = self
            .plan
            .changes
            .iter()
            .filter(|c| c.done && matches!(c.action, Action::Create | Action::Configure))
            .count();
        let writes = self.to_write(|_| true).len();
        if writes > 0 {
            self.progress = apply::progress_bar(applied + writes, "applying");
            self.progress.set_position(applied as u64);
        }
        let namespaces = self.to_write(|stage| stage == 0);
        apply::apply_counted(
            self.cluster,
            &namespaces,
            self.options.dry_run,
            &self.progress,
        )
        .await?;
        self.mark_done(namespaces.iter().map(|o| o.key.clone()));
        // In a dry run, objects in a namespace that does not exist yet are only listed.
        let listed_only: Vec<ObjectKey> = self
            .desired
            .objects
            .iter()
            .filter(|o| self.new_namespaces.contains(&o.key.namespace))
            .map(|o| o.key.clone())
            .collect();
        self.mark_done(listed_only);
        Ok(())
    }

    /// Can the inventory be written (its namespace exists, or this is no dry run)?
    fn inventory_reachable(&self) -> bool {
        !self.new_namespaces.contains(&self.owner.namespace)
    }

    /// Before anything is applied: the inventory lists old ∪ new, so a cut
    /// sync never forgets an object it created.
    async fn widen_inventory(&mut self) -> Result<()> {
        let new_keys = self.desired_keys();
        if new_keys.is_subset(&self.stored.objects) || !self.inventory_reachable() {
            return Ok(());
        }
        self.still_locked()?;
        self.stored.objects.extend(new_keys);
        self.stored
            .write(self.cluster, &self.owner, self.options.dry_run)
            .await
    }

    fn desired_keys(&self) -> BTreeSet<ObjectKey> {
        self.desired.objects.iter().map(|o| o.key.clone()).collect()
    }

    /// Apply stage by stage. Before the first stage after the StatefulSets,
    /// every StatefulSet of the commit must be ready (changed or not): the
    /// Deployments depend on them. Returns false when that gate failed; the
    /// later stages are then not applied.
    async fn apply_stages(&mut self) -> Result<bool> {
        let progress = self.progress.clone();
        let stages: BTreeSet<u8> = self
            .to_write(|stage| stage > 0)
            .iter()
            .map(|o| o.kind.stage)
            .collect();
        for stage in stages {
            if stage > STATEFULSET_STAGE && !self.gate_statefulsets(&progress).await {
                return Ok(false);
            }
            self.still_locked()?;
            let batch = self.to_write(|s| s == stage);
            apply::apply_counted(self.cluster, &batch, self.options.dry_run, &progress).await?;
            self.mark_done(batch.iter().map(|o| o.key.clone()));
        }
        apply::finish(&progress);
        Ok(true)
    }

    /// Wait (once) until every StatefulSet of the commit is ready; false if
    /// one failed or timed out (the error is kept for the outcome).
    async fn gate_statefulsets(&mut self, progress: &indicatif::ProgressBar) -> bool {
        if !self.options.wait || self.options.dry_run || !self.gated.is_empty() {
            return true;
        }
        let statefulsets: Vec<ObjectKey> = self
            .desired
            .objects
            .iter()
            .filter(|o| o.kind.stage == STATEFULSET_STAGE)
            .map(|o| o.key.clone())
            .collect();
        if statefulsets.is_empty() {
            return true;
        }
        match self.waiter().wait(&statefulsets, &self.known).await {
            Ok(()) => {
                self.gated = statefulsets;
                true
            }
            Err(e) => {
                progress.finish_and_clear();
                self.rollout_error = Some(format!(
                    "{}; the Deployments and everything after them were not applied",
                    crate::cli::one_line(&e)
                ));
                false
            }
        }
    }

    fn waiter(&self) -> Waiter<'a> {
        Waiter {
            cluster: self.cluster,
            selector: self.owner.member_selector(),
            timeout: self.options.timeout,
        }
    }

    /// Delete what the plan prunes, in reverse stage order.
    async fn prune(&mut self) -> Result<()> {
        let prunes: Vec<ObjectKey> = self
            .plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Prune)
            .map(|c| c.key.clone())
            .collect();
        if prunes.is_empty() {
            return Ok(());
        }
        self.still_locked()?;
        super::prune::prune(self.cluster, &prunes, self.options.dry_run).await?;
        self.mark_done(prunes);
        Ok(())
    }

    /// After pruning: the inventory lists what is desired plus what was
    /// kept, and records the commit.
    async fn narrow_inventory(&mut self) -> Result<()> {
        let objects = self.inventory_objects();
        let commit = self.inventory_commit();
        if (objects == self.stored.objects && commit == self.stored.commit)
            || !self.inventory_reachable()
        {
            return Ok(());
        }
        self.still_locked()?;
        self.stored.objects = objects;
        self.stored.commit = commit;
        self.stored
            .write(self.cluster, &self.owner, self.options.dry_run)
            .await
    }

    /// With `--allow-namespace-change`: the environment's inventories in
    /// other namespaces are deleted (only those ConfigMaps; their objects
    /// stay, untracked, and are never pruned).
    async fn retire_other_inventories(&mut self) -> Result<()> {
        if self.options.dry_run {
            return Ok(());
        }
        for old in std::mem::take(&mut self.elsewhere) {
            self.still_locked()?;
            old.delete(self.cluster, &self.owner.env).await?;
            self.left_behind.push(old.namespace);
        }
        Ok(())
    }

    /// Wait for every Deployment and StatefulSet of the commit, not only the
    /// ones written: a sync exits 0 only when the commit really runs.
    async fn wait_rollouts(&mut self) {
        if !self.options.wait || self.options.dry_run {
            return;
        }
        let keys: Vec<ObjectKey> = self
            .desired
            .objects
            .iter()
            .filter(|o| o.kind.has_rollout() && !self.gated.contains(&o.key))
            .map(|o| o.key.clone())
            .collect();
        if let Err(e) = self.waiter().wait(&keys, &self.known).await {
            self.rollout_error = Some(crate::cli::one_line(&e));
        }
    }

    fn finish(self) -> Outcome {
        Outcome {
            plan: self.plan,
            rollout_error: self.rollout_error,
            left_behind: self.left_behind,
            previous_commit: self.previous_commit,
        }
    }
}

/// The environment's inventory lives in another namespace than the commit
/// deploys to: refuse unless told (a rollback across a namespace change must
/// not prune the namespace it came from).
fn refuse_namespace_change(desired: &Desired, live: &Live, options: &SyncOptions) -> Result<()> {
    let Some(old) = live.elsewhere.first() else {
        return Ok(());
    };
    if options.allow_namespace_change {
        return Ok(());
    }
    bail!(
        "environment `{}` is deployed in namespace `{}` (inventory {}/ConfigMap/{}, commit {}) but commit {} deploys it to `{}`; \
         nothing was changed. Pass --allow-namespace-change to deploy to `{}`: the objects in `{}` are then left in place, untracked and never pruned",
        desired.env.name,
        old.namespace,
        old.namespace,
        desired.owner().inventory_name(),
        old.commit.as_deref().map_or("none", short),
        short(&desired.commit),
        desired.env.namespace,
        desired.env.namespace,
        old.namespace,
    );
}

/// Objects that exist without our label: refuse before writing anything.
fn refuse_foreign(plan: &Plan) -> Result<()> {
    let foreign: Vec<String> = plan
        .foreign()
        .map(|c| super::output::label(&c.key))
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    bail!(
        "{} object(s) already exist without this environment's label and would be taken over: {}; \
         nothing was changed. Pass --adopt to take them over (they are then pruned like any other when gone from git)",
        foreign.len(),
        foreign.join(", ")
    );
}

/// A commit with no objects would prune everything: refuse unless told.
fn refuse_empty(desired: &Desired, plan: &Plan, options: &SyncOptions) -> Result<()> {
    let prunes = plan.count(Action::Prune);
    if desired.objects.is_empty() && prunes > 0 && !options.allow_empty {
        let scope = match desired.scope.is_everything() {
            true => String::new(),
            false => format!(" in scope ({})", desired.scope.describe()),
        };
        bail!(
            "commit {} has no objects for `{}`{scope}: refusing to prune all {prunes} objects (pass --allow-empty to do that)",
            short(&desired.commit),
            desired.env.name,
        );
    }
    Ok(())
}
