//! `cargo xtask status`: each object in sync / drifted / missing / extra, its
//! rollout health, and the commit last synced against HEAD.

use super::cluster::Cluster;
use super::live;
use super::plan::{self, Action, Rules};
use super::report::{self, Output, short};
use super::rollout::{self, Health};
use super::source::{self, Desired};
use anyhow::Result;
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;

#[derive(Serialize)]
struct Row {
    kind: String,
    namespace: String,
    name: String,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<Health>,
}

/// Exit 0 when everything is in sync and healthy, 1 otherwise.
pub async fn status(
    cluster: &Cluster,
    repo: &Path,
    desired: &Desired,
    output: Output,
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
    let mut rows: Vec<Row> = plan
        .changes
        .iter()
        .map(|c| {
            let state = match c.action {
                Action::Unchanged => "in sync",
                Action::Configure => "drifted",
                Action::Create => "missing",
                Action::Prune | Action::Keep => "extra",
                Action::Foreign => "not ours",
            };
            let health = match (&c.live, c.key.info()) {
                (Some(l), Some(info)) if info.has_rollout() => Some(rollout::health(l)),
                _ => None,
            };
            Row {
                kind: c.key.kind.clone(),
                namespace: c.key.namespace.clone(),
                name: c.key.name.clone(),
                state,
                health,
            }
        })
        .collect();
    // Labelled as ours but not in the inventory: never pruned, shown anyway.
    let wanted: std::collections::HashSet<_> = desired.objects.iter().map(|o| &o.key).collect();
    for key in live.members.iter().filter(|k| !wanted.contains(k)) {
        if plan.changes.iter().any(|c| &c.key == key) {
            continue;
        }
        rows.push(Row {
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            state: "extra (not in inventory, kept)",
            health: None,
        });
    }
    let synced = live.inventory.as_ref().and_then(|i| i.commit.clone());
    let ahead = synced
        .as_deref()
        .and_then(|s| source::commits_ahead(repo, s, &desired.commit));
    let healthy = rows
        .iter()
        .all(|r| r.state == "in sync" && r.health.as_ref().is_none_or(|h| *h == Health::Ready));

    match output {
        Output::Json => {
            let doc = serde_json::json!({
                "env": env.name, "context": cluster.context, "head": desired.commit,
                "syncedCommit": synced, "commitsAhead": ahead, "healthy": healthy, "objects": rows,
            });
            outln!("{}", serde_json::to_string_pretty(&doc)?)?;
        }
        Output::Text => {
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
            out!("{}", report::table(&table))?;
            let head = short(&desired.commit);
            match (&synced, ahead) {
                (None, _) => outln!("never synced by xtask; HEAD is {head}")?,
                (Some(s), Some(0)) => outln!("last synced commit {} (= {head})", short(s))?,
                (Some(s), Some(n)) => outln!(
                    "last synced commit {}; {head} is {n} commit(s) ahead",
                    short(s)
                )?,
                (Some(s), None) => outln!(
                    "last synced commit {} (not an ancestor of {head})",
                    short(s)
                )?,
            }
        }
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
