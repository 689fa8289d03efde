//! Deleting objects sync created earlier that are gone from git, in reverse
//! dependency order (Deployments before the Services and ConfigMaps they use).

use super::cluster::CONCURRENCY;
use super::cluster::{Cluster, is_not_found};
use super::kinds::ObjectKey;
use anyhow::Result;
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::{DeleteParams, PropagationPolicy};

/// Delete `keys` stage by stage, from the last stage to the first.
pub async fn prune(cluster: &Cluster, keys: &[ObjectKey], dry_run: bool) -> Result<()> {
    let mut stages: Vec<u8> = keys.iter().map(ObjectKey::stage).collect();
    stages.sort_unstable_by(|a, b| b.cmp(a));
    stages.dedup();
    for stage in stages {
        let batch: Vec<&ObjectKey> = keys.iter().filter(|k| k.stage() == stage).collect();
        stream::iter(batch)
            .map(|key| delete(cluster, key, dry_run))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
    }
    Ok(())
}

async fn delete(cluster: &Cluster, key: &ObjectKey, dry_run: bool) -> Result<()> {
    let Some(kind) = key.info() else {
        return Ok(());
    };
    let params = DeleteParams {
        dry_run,
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    match cluster
        .api(kind, &key.namespace)
        .delete(&key.name, &params)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(cluster.explain(&format!("pruning {key}"), e)),
    }
}
