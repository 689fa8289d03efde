//! webapp: the user-facing pages of micro, plain server-side HTML (no
//! JavaScript needed). `GET /` → `/add`; `GET /add` the form;
//! `POST /add/calculate` asks adderservice, records the calculation in
//! auditservice and shows the result; `GET /audit` lists the latest
//! calculations. Every page request is also recorded as a page event on the
//! event queue, without waiting for Redis.
//!
//! Modules: [`html`] (rendering, escaping), [`backends`] (HTTP clients of
//! the other services), [`events`] (the page-event pipeline), [`routes`].

pub mod backends;
pub mod events;
pub mod html;
pub mod routes;

use axum::Router;
use micro_common::redis::Redis;
use micro_common::{CancellationToken, Discovery, Metrics, Readiness, ReadyFlag, config, server};

pub const SERVICE: &str = "webapp";
pub const DEFAULT_PORT: u16 = 3000;

/// The webapp's routes with their dependencies: services found through
/// `discovery`, page events pushed onto `queue` through `redis`.
pub fn build(
    discovery: Discovery,
    redis: Redis,
    queue: String,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<Router> {
    let counters = events::EventCounters::register(metrics);
    let events = events::start(redis, queue, counters, shutdown);
    let backends = backends::Backends::new(discovery)?;
    Ok(routes::routes(routes::AppState { backends, events }))
}

/// The whole service, configured from the environment (see the crate docs
/// of micro-common); returns after SIGTERM once in-flight requests are done.
pub async fn run() -> anyhow::Result<()> {
    micro_common::telemetry::init(SERVICE);
    let shutdown = server::shutdown_on_signals();
    let metrics = Metrics::new();
    let discovery = Discovery::from_env();
    // Not registered with readiness: a webapp without Redis still serves pages.
    let redis = Redis::start(ReadyFlag::default(), discovery.clone(), shutdown.clone());
    let queue = config::env_or("EVENT_QUEUE", "eventservice");
    let app = build(discovery, redis, queue, &metrics, shutdown.clone())?;
    server::serve(
        SERVICE,
        DEFAULT_PORT,
        app,
        Readiness::new(),
        metrics,
        shutdown,
    )
    .await
}
