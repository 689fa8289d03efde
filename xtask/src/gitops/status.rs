//! `cargo xtask status`: each object in sync / outdated / drifted / missing /
//! extra, its rollout health, counts of each, and the commit last synced
//! against HEAD.

use super::cluster::Cluster;
use super::kinds::ObjectKey;
use super::live;
use super::output::{self, short};
use super::plan::{self, Action, Change, Plan, Rules};
use super::rollout::{self, Health};
use super::source::{self, Desired};
use super::synced;
use crate::cli::Format;
use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::ExitCode;

/// One object's line of the status: its state against git and its rollout.
#[derive(Serialize)]
pub struct Row {
    #[serde(skip)]
    pub key: ObjectKey,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// The states in the order the counts line lists them.
const STATES: &[&str] = &[
    "in sync", "outdated", "drifted", "missing", "extra", EXTRA_KEPT, "not ours",
];
pub const EXTRA_KEPT: &str = "extra (not in inventory, kept)";

/// Exit 0 when everything is in sync and healthy, 1 otherwise (2, an error,
/// is main's).
pub async fn status(
    cluster: &Cluster,
    repo: &Path,
    desired: &Desired,
    git_label: &str,
    format: Format,
) -> Result<ExitCode> {
    let env = &desired.env;
    let mut live = live::fetch(cluster, desired).await?;
    let mut plan = plan::build(
        &desired.objects,
        &mut live,
        &desired.namespaces(),
        Rules::default(),
    );
    plan::confirm(cluster, &mut plan).await?;
    let synced = live.inventory.as_ref().and_then(|i| i.commit.clone());
    let ahead = synced
        .as_deref()
        .and_then(|s| source::commits_ahead(repo, s, &desired.commit));
    let outdated = outdated(cluster, repo, desired, synced.as_deref(), &plan.changes).await?;
    let rows = rows(&plan, &outdated, &live.members, desired);
    let not_ready = rows
        .iter()
        .filter(|r| r.health.as_ref().is_some_and(|h| *h != Health::Ready))
        .count();
    let counts = counts(&rows);
    let healthy = not_ready == 0 && rows.iter().all(|r| r.state == "in sync");

    match format {
        Format::Json | Format::Yaml => {
            let counts: serde_json::Map<String, serde_json::Value> = counts
                .iter()
                .map(|(state, n)| (state.to_string(), (*n).into()))
                .collect();
            let doc = serde_json::json!({
                "env": env.name, "context": cluster.context, "head": desired.commit,
                "syncedCommit": synced, "commitsAhead": ahead, "healthy": healthy,
                "counts": counts, "notReady": not_ready, "objects": rows,
            });
            crate::cli::output::emit(format, &doc)?;
        }
        Format::Text => {
            let mut table = vec![vec![
                "KIND".into(),
                "NAME".into(),
                "STATE".into(),
                "ROLLOUT".into(),
            ]];
            for r in &rows {
                let health = r
                    .health
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "-".into());
                table.push(vec![
                    r.kind.clone(),
                    r.name.clone(),
                    r.state.to_string(),
                    health,
                ]);
            }
            out!("{}", output::table(&table))?;
            let mut line: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
            if not_ready > 0 {
                line.push(format!("{not_ready} not ready"));
            }
            outln!("{}", line.join(", "))?;
            outln!(
                "{}",
                commits_line(synced.as_deref(), ahead, &desired.commit, git_label)
            )?;
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Git moved on since the sync: tell what a sync would update (outdated)
/// from what changed in the cluster (drifted). A synced commit this
/// repository lacks leaves every difference `drifted`.
pub async fn outdated(
    cluster: &Cluster,
    repo: &Path,
    desired: &Desired,
    synced: Option<&str>,
    changes: &[Change],
) -> Result<HashSet<ObjectKey>> {
    Ok(match synced {
        Some(s) if s != desired.commit => match source::read(repo, &desired.env.name, Some(s)) {
            Ok(was) => synced::outdated(cluster, &was, changes).await?,
            Err(_) => HashSet::new(),
        },
        _ => HashSet::new(),
    })
}

/// How many rows are in each state, in the order the counts line lists
/// them; `in sync` always, the others when there are any.
pub fn counts(rows: &[Row]) -> Vec<(&'static str, usize)> {
    STATES
        .iter()
        .map(|state| (*state, rows.iter().filter(|r| r.state == *state).count()))
        .filter(|(state, n)| *n > 0 || *state == "in sync")
        .collect()
}

/// The state of one change: `outdated` wins over the plan's verdict when the
/// live object is what the synced commit said.
pub fn state_of(change: &Change, outdated: &HashSet<ObjectKey>) -> &'static str {
    match change.action {
        Action::Unchanged => "in sync",
        _ if outdated.contains(&change.key) => "outdated",
        Action::Configure => "drifted",
        Action::Create => "missing",
        Action::Prune | Action::Keep => "extra",
        Action::Foreign => "not ours",
    }
}

/// Every row of the status, in plan order, then the members that are
/// labelled as ours but not in the inventory (never pruned, shown anyway).
/// Pure: the plan is already confirmed and `outdated` already decided.
pub fn rows(
    plan: &Plan,
    outdated: &HashSet<ObjectKey>,
    members: &BTreeSet<ObjectKey>,
    desired: &Desired,
) -> Vec<Row> {
    let mut rows: Vec<Row> = plan
        .changes
        .iter()
        .map(|c| {
            let health = match (&c.live, c.key.info()) {
                (Some(l), Some(info)) if info.has_rollout() => Some(rollout::health(l)),
                _ => None,
            };
            Row {
                key: c.key.clone(),
                kind: c.key.kind.clone(),
                namespace: c.key.namespace.clone(),
                name: c.key.name.clone(),
                state: state_of(c, outdated),
                health,
            }
        })
        .collect();
    let wanted: HashSet<_> = desired.objects.iter().map(|o| &o.key).collect();
    let planned: HashSet<_> = plan.changes.iter().map(|c| &c.key).collect();
    for key in members
        .iter()
        .filter(|k| !wanted.contains(k) && !planned.contains(k))
    {
        rows.push(Row {
            key: key.clone(),
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            state: EXTRA_KEPT,
            health: None,
        });
    }
    rows
}

/// `last synced commit 60d654c; HEAD is a1b2c3d, 1 commit ahead`.
fn commits_line(synced: Option<&str>, ahead: Option<usize>, head: &str, label: &str) -> String {
    let head = short(head);
    match (synced, ahead) {
        (None, _) => format!("last synced commit: none (never synced by xtask); {label} is {head}"),
        (Some(s), Some(0)) => format!(
            "last synced commit {}; {label} is {head}, the same commit",
            short(s)
        ),
        (Some(s), Some(1)) => format!(
            "last synced commit {}; {label} is {head}, 1 commit ahead",
            short(s)
        ),
        (Some(s), Some(n)) => format!(
            "last synced commit {}; {label} is {head}, {n} commits ahead",
            short(s)
        ),
        (Some(s), None) => format!(
            "last synced commit {}; {label} is {head}, which does not descend from it",
            short(s)
        ),
    }
}
