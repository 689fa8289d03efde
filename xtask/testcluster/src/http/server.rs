//! The HTTP listener: every request goes to `http::handle`; the simulated
//! controllers run beside it until the server stops.
use crate::state::Cluster;
use std::sync::Arc;

pub async fn serve(
    listener: tokio::net::TcpListener,
    cluster: Arc<Cluster>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let controllers = tokio::spawn(crate::controllers::run(cluster.clone()));
    let app = axum::Router::new()
        .fallback(super::handle)
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
