//! The shared server state and the HTTP listener.
use crate::Options;
use crate::audit::AuditLog;
use crate::resources;
use crate::store::Store;
use serde_json::json;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub struct Cluster {
    pub store: Mutex<Store>,
    pub audit: AuditLog,
    pub rollout_delay: Duration,
    pub progress_deadline: Duration,
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
            stopping: tokio::sync::watch::channel(false).0,
        };
        {
            // The namespaces every cluster starts with.
            let mut store = cluster.store();
            for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let mut obj =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                crate::writes::bookkeep_new(resources::namespaces(), &mut obj, "kube-apiserver");
                crate::defaults::apply(resources::namespaces(), &mut obj, None, &mut store);
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

pub async fn serve(
    listener: tokio::net::TcpListener,
    cluster: Arc<Cluster>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let controllers = tokio::spawn(crate::controllers::run(cluster.clone()));
    let app = axum::Router::new()
        .fallback(crate::handlers::handle)
        .with_state(cluster.clone());
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.await;
            let _ = cluster.stopping.send(true);
        })
        .await;
    controllers.abort();
    if let Err(e) = result {
        tracing::error!("testcluster server stopped: {e}");
    }
}
