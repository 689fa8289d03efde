//! Output: the change set table, diffs, JSON for machines, colour for people.

use super::kinds::ObjectKey;
use super::normalize::{mask_secrets, strip};
use super::plan::{Action, Change, Plan};
use super::source::Desired;
use super::sync::Outcome;
use crate::cli::Format;
use anyhow::Result;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

pub fn paint(text: &str, code: &str, on: bool) -> String {
    if on {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub use crate::cli::short;
pub use crate::cli::table::table;

#[derive(Serialize)]
pub struct ObjectLine {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// What happened to it: `created`, `configured`, `unchanged`, `pruned`, ...
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What happened to one change: `created`, `kept`, `not applied`, ...
pub fn past_tense(change: &Change, dry_run: bool) -> &'static str {
    if !change.done {
        return "not applied";
    }
    match (change.action, dry_run) {
        (Action::Create, false) => "created",
        (Action::Configure, false) => "configured",
        (Action::Prune, false) => "pruned",
        (Action::Create, true) => "created (dry run)",
        (Action::Configure, true) => "configured (dry run)",
        (Action::Prune, true) => "pruned (dry run)",
        (Action::Unchanged, _) => "unchanged",
        (Action::Keep, _) => "kept",
        (Action::Foreign, _) => "not ours",
    }
}

pub fn lines(plan: &Plan, dry_run: bool) -> Vec<ObjectLine> {
    plan.changes
        .iter()
        .map(|c| ObjectLine {
            kind: c.key.kind.clone(),
            namespace: c.key.namespace.clone(),
            name: c.key.name.clone(),
            state: past_tense(c, dry_run),
            reason: c.reason.clone(),
        })
        .collect()
}

/// `3 created, 1 configured, 14 unchanged, 1 pruned` (+ kept, not applied).
pub fn sync_summary(plan: &Plan) -> String {
    let done = |action: Action| {
        plan.changes
            .iter()
            .filter(|c| c.action == action && c.done)
            .count()
    };
    let mut text = format!(
        "{} created, {} configured, {} unchanged, {} pruned",
        done(Action::Create),
        done(Action::Configure),
        done(Action::Unchanged),
        done(Action::Prune)
    );
    let kept = done(Action::Keep);
    if kept > 0 {
        text.push_str(&format!(", {kept} kept"));
    }
    let not_applied = plan.changes.iter().filter(|c| !c.done).count();
    if not_applied > 0 {
        text.push_str(&format!(", {not_applied} not applied"));
    }
    text
}

/// The change set of a sync, for people or machines.
pub fn print_sync(
    desired: &Desired,
    context: &str,
    outcome: &Outcome,
    dry_run: bool,
    took: Duration,
    format: Format,
) -> Result<()> {
    let plan = &outcome.plan;
    match format {
        Format::Json | Format::Yaml => {
            let done = |action: Action| {
                plan.changes
                    .iter()
                    .filter(|c| c.action == action && c.done)
                    .count()
            };
            let doc = json!({
                "env": desired.env.name, "context": context, "commit": desired.commit,
                "dryRun": dry_run, "objects": lines(plan, false),
                "summary": {
                    "created": done(Action::Create), "configured": done(Action::Configure),
                    "unchanged": done(Action::Unchanged), "pruned": done(Action::Prune),
                    "kept": done(Action::Keep), "notApplied": plan.changes.iter().filter(|c| !c.done).count(),
                },
                "leftBehind": outcome.left_behind,
                "durationMs": took.as_millis() as u64, "error": outcome.rollout_error,
            });
            crate::cli::output::emit_streamed(format, &doc)?;
        }
        Format::Text => {
            print_table(outcome, dry_run)?;
            let verb = if outcome.rollout_error.is_some() {
                "did not finish syncing"
            } else {
                "synced"
            };
            let scope = match desired.scope.is_everything() {
                true => String::new(),
                false => format!(" (only {})", desired.scope.describe()),
            };
            outln!(
                "{}{verb} {} to context `{}`{scope}: {} ({:.2}s)",
                if dry_run { "(dry run) " } else { "" },
                short(&desired.commit),
                context,
                sync_summary(plan),
                took.as_secs_f64()
            )?;
        }
    }
    Ok(())
}

/// What a sync is about to do, for the prompt: one line per object it
/// changes (`  prune  Service micro/webapp`), unchanged ones left out.
pub fn planned_changes(plan: &Plan) -> String {
    let rows: Vec<Vec<String>> = plan
        .changes
        .iter()
        .filter(|c| c.action != Action::Unchanged)
        .map(|c| {
            vec![
                format!("  {}", c.action.word()),
                c.key.kind.clone(),
                namespaced_name(&c.key),
            ]
        })
        .collect();
    table(&rows)
}

/// The object table of a sync, then a line for each object kept and each
/// namespace left behind.
pub fn print_table(outcome: &Outcome, dry_run: bool) -> Result<()> {
    let plan = &outcome.plan;
    let mut rows = vec![vec![
        "KIND".to_string(),
        "NAME".to_string(),
        "RESULT".to_string(),
    ]];
    for line in lines(plan, dry_run) {
        let result = match line.reason {
            Some(reason) if line.state == "kept" => reason,
            _ => line.state.to_string(),
        };
        rows.push(vec![line.kind, line.name, result]);
    }
    out!("{}", table(&rows))?;
    // Gone from git but still in the cluster: name each one, so "0 pruned"
    // never hides what stayed.
    for change in plan.changes.iter().filter(|c| c.action == Action::Keep) {
        let why = change.reason.as_deref().unwrap_or("kept");
        outln!(
            "kept {} {}: gone from git, not deleted ({})",
            change.key.kind,
            namespaced_name(&change.key),
            why.strip_prefix("kept: ").unwrap_or(why)
        )?;
    }
    for namespace in &outcome.left_behind {
        outln!(
            "left namespace `{namespace}` as it is: its objects are no longer tracked and never pruned"
        )?;
    }
    Ok(())
}

fn to_yaml(value: &Value) -> String {
    if value.is_null() {
        String::new()
    } else {
        serde_yaml::to_string(value).unwrap_or_default()
    }
}

/// The unified diff of one change (live → what sync would store).
pub fn change_diff(change: &Change, colour: bool) -> String {
    let mut before = change.live.as_ref().map(strip).unwrap_or(Value::Null);
    let mut after = match change.action {
        Action::Prune => Value::Null,
        Action::Configure => change.preview.as_ref().map(strip).unwrap_or(Value::Null),
        _ => change
            .desired
            .as_ref()
            .map(|d| strip(&d.value))
            .unwrap_or(Value::Null),
    };
    mask_secrets(&mut before, &mut after);
    let (old, new) = (to_yaml(&before), to_yaml(&after));
    let name = label(&change.key);
    let diff = similar::TextDiff::from_lines(&old, &new);
    let text = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("live/{name}"), &format!("git/{name}"))
        .to_string();
    coloured_diff(&text, colour)
}

/// A unified diff with ANSI colours on headers, additions, removals and hunks.
pub fn coloured_diff(diff: &str, colour: bool) -> String {
    diff.lines()
        .map(|line| {
            let code = if line.starts_with("+++") || line.starts_with("---") {
                "1"
            } else if line.starts_with('+') {
                "32"
            } else if line.starts_with('-') {
                "31"
            } else if line.starts_with("@@") {
                "36"
            } else {
                ""
            };
            if code.is_empty() {
                format!("{line}\n")
            } else {
                format!("{}\n", paint(line, code, colour))
            }
        })
        .collect()
}

/// `micro/webapp`, or `micro` for a cluster-scoped object.
pub fn namespaced_name(key: &ObjectKey) -> String {
    if key.namespace.is_empty() {
        key.name.clone()
    } else {
        format!("{}/{}", key.namespace, key.name)
    }
}

pub fn label(key: &ObjectKey) -> String {
    if key.namespace.is_empty() {
        key.to_string()
    } else {
        format!("{}/{}", key.namespace, key)
    }
}

/// A failed rollout's error: its message, then the command that deploys the
/// commit synced before this one (when there was another one).
pub fn rollout_failure(desired: &Desired, outcome: &Outcome, message: &str) -> String {
    match outcome.previous_commit.as_deref() {
        Some(previous) if previous != desired.commit => format!(
            "{message}; roll back with `cargo xtask sync --env {} --rev {}`",
            desired.env.name,
            short(previous)
        ),
        _ => message.to_string(),
    }
}
