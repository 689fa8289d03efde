//! The auditservice binary: logs, signals, the database pool and the HTTP server.

use micro_common::{Discovery, Metrics, Readiness, server, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init(auditservice::SERVICE);
    let shutdown = server::shutdown_on_signals();
    let ready = Readiness::new();
    let db = auditservice::start_db(&ready, Discovery::from_env(), shutdown.clone());
    server::serve(
        auditservice::SERVICE,
        auditservice::DEFAULT_PORT,
        auditservice::app(db),
        ready,
        Metrics::new(),
        shutdown,
    )
    .await
}
