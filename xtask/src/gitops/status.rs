//! `cargo xtask status`: each object in sync / outdated / drifted / missing /
//! extra, its rollout health, counts of each, and the commit last synced
//! against HEAD.

use super::cluster::Cluster;
use super::endpoints;
use super::live;
use super::output::{self, short};
use super::plan::{self, Action, Rules};
use super::rollout::{self, Health};
use super::source::{self, Desired};
use super::synced;
use crate::cli::Format;
use anyhow::Result;
use serde::Serialize;
use std::collections::HashSet;
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

/// The states in the order the counts line lists them.
const STATES: &[&str] = &[
    "in sync", "outdated", "drifted", "missing", "extra", EXTRA_KEPT, "not ours",
];
const EXTRA_KEPT: &str = "extra (not in inventory, kept)";

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
    // Git moved on since the sync: tell what a sync would update (outdated)
    // from what changed in the cluster (drifted). A synced commit this
    // repository lacks leaves every difference `drifted`.
    let outdated = match synced.as_deref() {
        Some(s) if s != desired.commit => match source::read(repo, &env.name, Some(s)) {
            Ok(was) => synced::outdated(cluster, &was, &plan.changes).await?,
            Err(_) => HashSet::new(),
        },
        _ => HashSet::new(),
    };
    let mut rows: Vec<Row> = plan
        .changes
        .iter()
        .map(|c| {
            let state = match c.action {
                Action::Unchanged => "in sync",
                _ if outdated.contains(&c.key) => "outdated",
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
    let wanted: HashSet<_> = desired.objects.iter().map(|o| &o.key).collect();
    for key in live.members.iter().filter(|k| !wanted.contains(k)) {
        if plan.changes.iter().any(|c| &c.key == key) {
            continue;
        }
        rows.push(Row {
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            state: EXTRA_KEPT,
            health: None,
        });
    }
    let not_ready = rows
        .iter()
        .filter(|r| r.health.as_ref().is_some_and(|h| *h != Health::Ready))
        .count();
    let counts: Vec<(&str, usize)> = STATES
        .iter()
        .map(|state| (*state, rows.iter().filter(|r| r.state == *state).count()))
        .filter(|(state, n)| *n > 0 || *state == "in sync")
        .collect();
    let healthy = not_ready == 0 && rows.iter().all(|r| r.state == "in sync");
    let node = endpoints::node_host(&cluster.server);
    let endpoints: Vec<endpoints::Endpoint> = plan
        .changes
        .iter()
        .filter(|c| c.key.kind == "Service")
        .filter_map(|c| c.live.as_ref())
        .map(|svc| endpoints::of(svc, &node))
        .collect();

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
                "endpoints": endpoints,
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
            if !endpoints.is_empty() {
                let mut reach = vec![vec!["SERVICE".into(), "TYPE".into(), "ENDPOINT".into()]];
                for e in &endpoints {
                    reach.push(vec![e.service.clone(), e.kind.clone(), e.endpoint.clone()]);
                }
                outln!()?;
                out!("{}", output::table(&reach))?;
                outln!()?;
            }
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
