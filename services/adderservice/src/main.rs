//! The adderservice binary: logs, signals, and the HTTP server around `adderservice::app`.

use micro_common::{Metrics, Readiness, server, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init(adderservice::SERVICE);
    let shutdown = server::shutdown_on_signals();
    server::serve(
        adderservice::SERVICE,
        adderservice::DEFAULT_PORT,
        adderservice::app(),
        Readiness::new(),
        Metrics::new(),
        shutdown,
    )
    .await
}
