//! What syncing one commit would do to the live cluster now, as data: the
//! plan `diff` prints, for `review --live`.

use super::output;
use super::plan::{Action, PlanCounts};
use super::{Session, Target, diff};
use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct LiveChange {
    /// `micro/Deployment/adderservice`
    pub object: String,
    /// What sync would do: `create`, `configure`, `prune`, `keep`, `not ours`.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The unified diff live -> what sync would store (none when unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LivePlan {
    pub env: String,
    pub context: String,
    pub commit: String,
    pub in_sync: bool,
    /// Objects per action.
    pub summary: PlanCounts,
    /// `2 to change, 1 to create, 1 to prune, 14 unchanged`, for people.
    #[serde(skip)]
    pub sentence: String,
    /// Everything that is not unchanged.
    pub changes: Vec<LiveChange>,
}

/// The plan of syncing `env` at `rev` of `repo` now (read-only: the only
/// writes are dry-run applies, as `diff` makes).
pub fn preview(
    repo: &Path,
    env: &str,
    rev: &str,
    context: Option<&str>,
    kubeconfig: Option<&Path>,
) -> Result<LivePlan> {
    let target = Target {
        env: env.to_string(),
        rev: Some(rev.to_string()),
        namespace: None,
        selector: None,
        context: context.map(str::to_string),
        kubeconfig: kubeconfig.map(Path::to_path_buf),
        root: Some(PathBuf::from(repo)),
        output: crate::cli::Format::Text,
        strict: false,
    };
    crate::cli::runtime()?.block_on(async {
        let session = Session::open(&target, Some(rev)).await?;
        let desired = session.committed(Some(rev))?;
        let plan = diff::plan_sync(&session.cluster, &desired).await?;
        let changes = plan
            .changes
            .iter()
            .filter(|c| c.action != Action::Unchanged)
            .map(|c| LiveChange {
                object: output::label(&c.key),
                state: c.action.word(),
                reason: c.reason.clone(),
                diff: matches!(c.action, Action::Create | Action::Configure | Action::Prune)
                    .then(|| output::change_diff(c, false)),
            })
            .collect();
        Ok(LivePlan {
            env: env.to_string(),
            context: session.context().to_string(),
            commit: desired.commit.clone(),
            in_sync: plan.in_sync(),
            summary: plan.counts(),
            sentence: plan.summary(),
            changes,
        })
    })
}
