//! Server-side apply of desired objects, field manager `xtask`, forced (git
//! is the source of truth: a field someone else took over is taken back).

use super::cluster::CONCURRENCY;
use super::cluster::Cluster;
use super::source::DesiredObject;
use crate::ownership::FIELD_MANAGER;
use anyhow::Result;
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{Patch, PatchParams};
use serde_json::Value;

pub async fn apply_one(cluster: &Cluster, object: &DesiredObject, dry_run: bool) -> Result<Value> {
    let mut params = PatchParams::apply(FIELD_MANAGER).force();
    params.dry_run = dry_run;
    cluster
        .patch_value(
            object.kind,
            &object.key.namespace,
            &object.key.name,
            &params,
            &Patch::Apply(&object.value),
        )
        .await
        .map_err(|e| cluster.explain(&format!("applying {} ({})", object.key, object.file), e))
}

/// Apply `objects` with at most [`CONCURRENCY`] requests in flight.
pub async fn apply_all(
    cluster: &Cluster,
    objects: &[&DesiredObject],
    dry_run: bool,
) -> Result<Vec<Value>> {
    apply_counted(cluster, objects, dry_run, &indicatif::ProgressBar::hidden()).await
}

/// [`apply_all`], advancing `progress` by one per object applied.
pub async fn apply_counted(
    cluster: &Cluster,
    objects: &[&DesiredObject],
    dry_run: bool,
    progress: &indicatif::ProgressBar,
) -> Result<Vec<Value>> {
    stream::iter(objects.iter().copied())
        .map(|o| async move {
            let applied = apply_one(cluster, o, dry_run).await;
            progress.inc(1);
            applied
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await
}

/// A progress bar on stderr (drawn only when stderr is a terminal).
pub fn progress_bar(total: usize, what: &str) -> indicatif::ProgressBar {
    let bar = crate::cli::verbosity::progress_bar(total as u64);
    let template = format!("{{spinner}} {what} {{pos}}/{{len}} {{wide_bar}} {{msg}}");
    bar.set_style(
        indicatif::ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Ends `bar` saying so: `applying 12/12 … done`.
pub fn finish(bar: &indicatif::ProgressBar) {
    bar.finish_with_message("done");
}
