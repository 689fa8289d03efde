//! `cargo xtask diff`: what sync would change, as a unified diff per object.

use super::cluster::Cluster;
use super::live;
use super::output;
use super::plan::{self, Action, Plan, Rules};
use super::source::Desired;
use crate::cli::Format;
use anyhow::Result;
use serde_json::json;
use std::process::ExitCode;

/// What a sync of `desired` with the default rules would do now: the plan
/// `diff` shows and `review --live` reports.
pub async fn plan_sync(cluster: &Cluster, desired: &Desired) -> Result<Plan> {
    let mut live = live::fetch(cluster, desired).await?;
    let mut plan = plan::build(
        &desired.objects,
        &mut live,
        &desired.namespaces(),
        Rules::default(),
    );
    plan::confirm(cluster, &mut plan).await?;
    Ok(plan)
}

/// Exit 0 in sync, 1 with differences (kubectl diff's convention).
pub async fn diff(cluster: &Cluster, desired: &Desired, format: Format) -> Result<ExitCode> {
    let env = &desired.env;
    let plan = plan_sync(cluster, desired).await?;
    match format {
        Format::Json | Format::Yaml => {
            let objects: Vec<_> = plan
                .changes
                .iter()
                .map(|c| {
                    json!({
                        "kind": c.key.kind, "namespace": c.key.namespace, "name": c.key.name,
                        "state": c.action.word(), "reason": c.reason,
                        "diff": if matches!(c.action, Action::Unchanged | Action::Keep | Action::Foreign) { None } else { Some(output::change_diff(c, false)) },
                    })
                })
                .collect();
            let doc = json!({
                "env": env.name, "context": cluster.context, "commit": desired.commit,
                "inSync": plan.in_sync(), "summary": plan.counts(), "objects": objects,
            });
            crate::cli::output::emit(format, &doc)?;
        }
        Format::Text => {
            let colour = crate::cli::colour::enabled();
            for change in plan
                .changes
                .iter()
                .filter(|c| c.action != Action::Unchanged)
            {
                match (&change.reason, change.action) {
                    (Some(reason), Action::Keep | Action::Foreign) => {
                        outln!("{}: {reason}", output::label(&change.key))?;
                    }
                    _ => out!("{}", output::change_diff(change, colour))?,
                }
            }
            outln!("{}", plan.summary())?;
        }
    }
    Ok(if plan.in_sync() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
