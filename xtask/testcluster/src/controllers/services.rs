//! What a cloud's load-balancer controller would write: a LoadBalancer Service
//! gets a hostname in `status.loadBalancer.ingress` `load_balancer_delay` after it is
//! created (or turned into a LoadBalancer); until then clients see it pending.
use super::write_status;
use crate::state::Cluster;
use crate::store::{EventType, WatchEvent, name_of, namespace_of};
use serde_json::{Value, json};
use std::sync::Arc;

/// The hostname given to a Service's load balancer.
pub fn hostname(ns: &str, name: &str) -> String {
    format!("{name}-{ns}.elb.testcluster.local")
}

fn pending(svc: &Value) -> bool {
    svc["spec"]["type"] == "LoadBalancer"
        && svc["status"]["loadBalancer"]["ingress"]
            .as_array()
            .is_none_or(|i| i.is_empty())
}

pub fn on_event(cluster: &Arc<Cluster>, event: &WatchEvent) {
    if !event.kind.is("", "services")
        || event.etype == EventType::Deleted
        || !pending(&event.object)
    {
        return;
    }
    let (cluster, kind) = (cluster.clone(), event.kind);
    let (ns, name) = (
        namespace_of(&event.object).to_string(),
        name_of(&event.object).to_string(),
    );
    tokio::spawn(async move {
        tokio::time::sleep(cluster.load_balancer_delay).await;
        let mut store = cluster.store();
        let Some(svc) = store.get(kind, &ns, &name).cloned() else {
            return;
        };
        if !pending(&svc) {
            return; // assigned meanwhile, or no longer a LoadBalancer
        }
        let mut status = svc["status"].clone();
        status["loadBalancer"] = json!({"ingress": [{"hostname": hostname(&ns, &name)}]});
        write_status(&mut store, kind, &svc, status, "service-controller");
    });
}
