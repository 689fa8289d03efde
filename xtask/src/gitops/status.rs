//! `cargo xtask status`: each object in sync / outdated / drifted / missing /
//! extra, its rollout health, counts of each, and the commit last synced
//! against HEAD.

use super::cluster::Cluster;
use super::endpoints::{self, Endpoint};
use super::kinds::ObjectKey;
use super::live;
use super::output::{self, short};
use super::plan::{self, Action, Rules};
use super::rollout::{self, Health};
use super::source::{self, Desired};
use super::synced;
use crate::cli::Format;
use anyhow::Result;
use serde::Serialize;
use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::process::ExitCode;

/// An object's state against git.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    InSync,
    /// Git is ahead; the cluster has the last synced commit's version.
    Outdated,
    /// The cluster differs from what was synced.
    Drifted,
    Missing,
    /// Gone from git, still deployed (and in the inventory).
    Extra,
    /// Labelled as ours but not in the inventory: never pruned.
    ExtraUntracked,
    NotOurs,
}

impl State {
    /// In the order the counts line lists them.
    const ALL: [State; 7] = [
        State::InSync,
        State::Outdated,
        State::Drifted,
        State::Missing,
        State::Extra,
        State::ExtraUntracked,
        State::NotOurs,
    ];

    /// The word in the table and in a document's `objects[].state`.
    pub fn word(self) -> &'static str {
        match self {
            State::InSync => "in sync",
            State::Outdated => "outdated",
            State::Drifted => "drifted",
            State::Missing => "missing",
            State::Extra => "extra",
            State::ExtraUntracked => "extra (not in inventory, kept)",
            State::NotOurs => "not ours",
        }
    }

    /// The key in a document's `summary`.
    fn key(self) -> &'static str {
        match self {
            State::InSync => "inSync",
            State::Outdated => "outdated",
            State::Drifted => "drifted",
            State::Missing => "missing",
            State::Extra => "extra",
            State::ExtraUntracked => "extraUntracked",
            State::NotOurs => "notOurs",
        }
    }
}

impl Serialize for State {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.word())
    }
}

/// One object's line of the status: its state against git and its rollout.
#[derive(Serialize)]
pub struct Row {
    #[serde(skip)]
    pub key: ObjectKey,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

/// Everything `status` shows, decided before anything is printed.
struct Report<'a> {
    desired: &'a Desired,
    context: &'a str,
    rows: Vec<Row>,
    synced: Option<String>,
    ahead: Option<usize>,
    /// How each Service is reached (NodePort, LoadBalancer, ClusterIP).
    endpoints: Vec<Endpoint>,
}

impl Report<'_> {
    fn not_ready(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| r.health.as_ref().is_some_and(|h| *h != Health::Ready))
            .count()
    }

    fn count(&self, state: State) -> usize {
        self.rows.iter().filter(|r| r.state == state).count()
    }

    fn healthy(&self) -> bool {
        self.not_ready() == 0 && self.rows.iter().all(|r| r.state == State::InSync)
    }
}

/// Exit 0 when everything is in sync and healthy, 1 otherwise (2, an error,
/// is main's).
pub async fn status(
    cluster: &Cluster,
    repo: &Path,
    desired: &Desired,
    git_label: &str,
    format: Format,
) -> Result<ExitCode> {
    let report = report(cluster, repo, desired).await?;
    match format {
        Format::Json | Format::Yaml => crate::cli::output::emit(format, &document(&report))?,
        Format::Text => print_text(&report, git_label)?,
    }
    Ok(if report.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn report<'a>(cluster: &'a Cluster, repo: &Path, desired: &'a Desired) -> Result<Report<'a>> {
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
    let node = endpoints::node_host(&cluster.server);
    let endpoints = plan
        .changes
        .iter()
        .filter(|c| c.key.kind == "Service")
        .filter_map(|c| c.live.as_ref())
        .map(|service| endpoints::of(service, &node))
        .collect();
    Ok(Report {
        desired,
        context: &cluster.context,
        rows,
        synced,
        ahead,
        endpoints,
    })
}

/// Git moved on since the sync: what a sync would update (outdated), as
/// opposed to what changed in the cluster (drifted). A synced commit this
/// repository lacks leaves every difference `drifted`.
pub async fn outdated(
    cluster: &Cluster,
    repo: &Path,
    desired: &Desired,
    synced: Option<&str>,
    changes: &[plan::Change],
) -> Result<HashSet<ObjectKey>> {
    match synced {
        Some(s) if s != desired.commit => match source::read(repo, &desired.env.name, Some(s)) {
            Ok(was) => synced::outdated(cluster, &was, changes).await,
            Err(_) => Ok(HashSet::new()),
        },
        _ => Ok(HashSet::new()),
    }
}

fn row(change: &plan::Change, outdated: bool) -> Row {
    let state = match change.action {
        Action::Unchanged => State::InSync,
        _ if outdated => State::Outdated,
        Action::Configure => State::Drifted,
        Action::Create => State::Missing,
        Action::Prune | Action::Keep => State::Extra,
        Action::Foreign => State::NotOurs,
    };
    let health = match (&change.live, change.key.info()) {
        (Some(l), Some(info)) if info.has_rollout() => Some(rollout::health(l)),
        _ => None,
    };
    Row {
        key: change.key.clone(),
        kind: change.key.kind.clone(),
        namespace: change.key.namespace.clone(),
        name: change.key.name.clone(),
        state,
        health,
    }
}

/// Every row of the status, in plan order, then the members that are
/// labelled as ours but not in the inventory (never pruned, shown anyway).
/// Pure: the plan is already confirmed and `outdated` already decided.
pub fn rows(
    plan: &plan::Plan,
    outdated: &HashSet<ObjectKey>,
    members: &BTreeSet<ObjectKey>,
    desired: &Desired,
) -> Vec<Row> {
    let mut rows: Vec<Row> = plan
        .changes
        .iter()
        .map(|c| row(c, outdated.contains(&c.key)))
        .collect();
    rows.extend(untracked_rows(desired, members, plan));
    rows
}

fn untracked_rows(desired: &Desired, members: &BTreeSet<ObjectKey>, plan: &plan::Plan) -> Vec<Row> {
    let wanted: HashSet<_> = desired.objects.iter().map(|o| &o.key).collect();
    let planned: HashSet<_> = plan.changes.iter().map(|c| &c.key).collect();
    members
        .iter()
        .filter(|k| !wanted.contains(k) && !planned.contains(k))
        .map(|key| Row {
            key: key.clone(),
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            state: State::ExtraUntracked,
            health: None,
        })
        .collect()
}

/// How many rows are in each state, in the order the counts line lists
/// them; `in sync` always, the others when there are any.
pub fn counts(rows: &[Row]) -> Vec<(&'static str, usize)> {
    State::ALL
        .iter()
        .map(|state| {
            (
                state.word(),
                rows.iter().filter(|r| r.state == *state).count(),
            )
        })
        .filter(|(word, n)| *n > 0 || *word == State::InSync.word())
        .collect()
}

fn document(report: &Report) -> serde_json::Value {
    let summary: serde_json::Map<String, serde_json::Value> = State::ALL
        .iter()
        .map(|state| (state.key().to_string(), report.count(*state).into()))
        .chain([("notReady".to_string(), report.not_ready().into())])
        .collect();
    serde_json::json!({
        "env": report.desired.env.name, "context": report.context,
        "commit": report.desired.commit, "syncedCommit": report.synced,
        "commitsAhead": report.ahead, "healthy": report.healthy(),
        "summary": summary, "objects": report.rows, "endpoints": report.endpoints,
    })
}

/// Where the system can be reached, between the table and the counts.
fn print_endpoints(endpoints: &[Endpoint]) -> Result<()> {
    if endpoints.is_empty() {
        return Ok(());
    }
    let header = ["SERVICE", "TYPE", "ENDPOINT"].map(String::from).to_vec();
    let rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(
            endpoints
                .iter()
                .map(|e| vec![e.service.clone(), e.kind.clone(), e.endpoint.clone()]),
        )
        .collect();
    outln!()?;
    out!("{}", output::table(&rows))?;
    outln!()?;
    Ok(())
}

fn print_text(report: &Report, git_label: &str) -> Result<()> {
    let header = ["KIND", "NAME", "STATE", "ROLLOUT"]
        .map(String::from)
        .to_vec();
    let table: Vec<Vec<String>> = std::iter::once(header)
        .chain(report.rows.iter().map(|r| {
            let health = r
                .health
                .as_ref()
                .map_or_else(|| "-".into(), ToString::to_string);
            vec![
                r.kind.clone(),
                r.name.clone(),
                r.state.word().to_string(),
                health,
            ]
        }))
        .collect();
    out!("{}", output::table(&table))?;
    print_endpoints(&report.endpoints)?;
    let mut line: Vec<String> = counts(&report.rows)
        .iter()
        .map(|(word, n)| format!("{n} {word}"))
        .collect();
    if report.not_ready() > 0 {
        line.push(format!("{} not ready", report.not_ready()));
    }
    outln!("{}", line.join(", "))?;
    outln!(
        "{}",
        commits_line(
            report.synced.as_deref(),
            report.ahead,
            &report.desired.commit,
            git_label
        )
    )?;
    Ok(())
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
