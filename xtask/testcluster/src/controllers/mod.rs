//! Simulated controllers: they follow the store's events and write the status
//! that kube-controller-manager, the kubelet and a cloud's load-balancer
//! controller would write.
mod pods;
mod rollout;
mod services;

use crate::state::Cluster;
use crate::store::Store;
use crate::store::resources::ResourceKind;
use serde_json::Value;
use std::sync::Arc;

pub async fn run(cluster: Arc<Cluster>) {
    let mut rx = cluster.store().subscribe_live();
    loop {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        rollout::on_event(&cluster, &event);
        pods::on_event(&cluster, &event);
        services::on_event(&cluster, &event);
    }
}

/// Stores `old` with a new status, recorded in managedFields as `manager`'s write
/// of the `status` subresource.
fn write_status(
    store: &mut Store,
    kind: &'static ResourceKind,
    old: &Value,
    status: Value,
    manager: &str,
) {
    let mut new = old.clone();
    new["status"] = status;
    let api_version = kind.api_version();
    let now = crate::store::meta::now();
    let writer = crate::write::apply::managed::Writer {
        manager,
        subresource: Some("status"),
        api_version: &api_version,
        now: &now,
    };
    crate::write::apply::managed::record_update(Some(old), &mut new, &writer);
    store.put(kind, new);
}
