//! The state every layer above the store shares: the store behind its lock, the
//! audit log, the simulated controllers' timings and the stop signal. It sits
//! above `write` (it seeds the built-in namespaces through it) and below `http`
//! and `controllers`, so no module imports back up.
use crate::Options;
use crate::audit::AuditLog;
use crate::store::Store;
use crate::store::resources;
use serde_json::json;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub struct Cluster {
    pub store: Mutex<Store>,
    pub audit: AuditLog,
    pub rollout_delay: Duration,
    pub progress_deadline: Duration,
    pub load_balancer_delay: Duration,
    /// Flips to true when the server stops: open watches end.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

impl Cluster {
    pub fn new(opts: &Options) -> anyhow::Result<Arc<Cluster>> {
        let cluster = Cluster {
            store: Mutex::new(Store::new()),
            audit: AuditLog::new(opts.audit_log.as_ref())?,
            rollout_delay: opts.rollout_delay,
            progress_deadline: opts.progress_deadline,
            load_balancer_delay: opts.load_balancer_delay,
            stopping: tokio::sync::watch::channel(false).0,
        };
        {
            // The namespaces every cluster starts with.
            let mut store = cluster.store();
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let mut obj =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                crate::write::bookkeep_new(resources::namespaces(), &mut obj, "kube-apiserver");
                crate::write::defaults::apply(resources::namespaces(), &mut obj, None, &mut store);
                store.put(resources::namespaces(), obj);
            }
        }
        Ok(Arc::new(cluster))
    }

    /// The store, locked (never held across an await).
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }
}
