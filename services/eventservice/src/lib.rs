//! eventservice: consumes the Redis event queue and keeps the events in
//! PostgreSQL (schema `events`). No public request API; `/healthz`,
//! `/readyz` (Redis and PostgreSQL reachable) and `/metrics` on port 8082.
//!
//! Modules: [`message`] (the queue protocol), [`store`] (SQL), [`queue`]
//! (Redis key layout, recovery of dead workers' lists), [`worker`] (the
//! consume loop), [`heartbeat`] (liveness key + periodic orphan reclaim).

pub mod heartbeat;
pub mod message;
pub mod queue;
pub mod store;
pub mod worker;

use std::time::Duration;

use anyhow::Context as _;
use micro_common::postgres::Db;
use micro_common::redis::Redis;
use micro_common::{CancellationToken, Discovery, Metrics, Readiness, config, server};

pub const SERVICE: &str = "eventservice";
pub const DEFAULT_PORT: u16 = 8082;

/// Worker settings from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `EVENT_QUEUE`, default `eventservice`.
    pub queue: String,
    /// `POD_NAME`, else `HOSTNAME`, else random: names the processing list.
    pub worker_id: String,
    /// `EVENT_WORKER_TTL_SECS` (default 15): how long after its last
    /// heartbeat a worker counts as dead and its list is reclaimed.
    pub heartbeat_ttl: Duration,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let worker_id = ["POD_NAME", "HOSTNAME"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| format!("worker-{:016x}", rand::random::<u64>()));
        let ttl = config::env_or("EVENT_WORKER_TTL_SECS", "15");
        let ttl: u64 = ttl.parse().ok().filter(|&t| t >= 3).with_context(|| {
            format!("EVENT_WORKER_TTL_SECS={ttl:?} is not a number of seconds >= 3")
        })?;
        Ok(Self {
            queue: config::env_or("EVENT_QUEUE", "eventservice"),
            worker_id,
            heartbeat_ttl: Duration::from_secs(ttl),
        })
    }
}

/// The whole service, configured from the environment; returns after SIGTERM
/// once the in-flight message is finished (or left for recovery).
pub async fn run() -> anyhow::Result<()> {
    micro_common::telemetry::init(SERVICE);
    let settings = Settings::from_env()?;
    let shutdown = server::shutdown_on_signals();
    let readiness = Readiness::new();
    let metrics = Metrics::new();
    let discovery = Discovery::from_env();
    let db = Db::start(
        readiness.register("postgres"),
        discovery.clone(),
        store::SCHEMA,
        store::MIGRATIONS,
        shutdown.clone(),
    );
    let redis = Redis::start(readiness.register("redis"), discovery, shutdown.clone());
    let stats = worker::Stats::register(&metrics);
    tracing::info!(
        queue = settings.queue,
        worker = settings.worker_id,
        "consuming"
    );
    let consumer = tokio::spawn(consume(settings, db, redis, stats, shutdown.clone()));

    let served = server::serve(
        SERVICE,
        DEFAULT_PORT,
        axum::Router::new(),
        readiness,
        metrics,
        shutdown.clone(),
    )
    .await;
    // The server only returns early on a start-up error: stop the worker too.
    shutdown.cancel();
    consumer.await.context("worker task failed")?;
    served
}

/// The worker: waits for both dependencies, recovers unfinished work, then
/// consumes until `shutdown`, finishing (or handing back) the message in
/// flight. Public so that other crates' tests can run a real worker in-process.
pub async fn consume(
    settings: Settings,
    db: Db,
    redis: Redis,
    stats: worker::Stats,
    shutdown: CancellationToken,
) {
    let keys = queue::Keys::new(&settings.queue, &settings.worker_id);
    // Both connect (with backoff) in the background; until then we wait.
    let Some(client) = wait_for("Redis", &shutdown, || redis.client()).await else {
        return;
    };
    let Some(_) = wait_for_db(&db, &shutdown).await else {
        return;
    };

    let heartbeat = heartbeat::Heartbeat {
        keys: keys.clone(),
        redis: redis.clone(),
        ttl: settings.heartbeat_ttl,
        requeued: stats.requeued.clone(),
    };
    if !heartbeat.start_up(&shutdown).await {
        return;
    }
    let heartbeat = std::sync::Arc::new(heartbeat);
    let beating = tokio::spawn({
        let hb = heartbeat.clone();
        let shutdown = shutdown.clone();
        async move { hb.run(shutdown).await }
    });

    // A connection of its own: BLMOVE blocks it (the shared one has 2 s timeouts).
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(worker::TAKE_BLOCK + Duration::from_secs(3)));
    let Some(conn) =
        micro_common::retry::with_backoff("open the queue connection", &shutdown, || {
            client.get_connection_manager_with_config(config.clone())
        })
        .await
    else {
        heartbeat.sign_off().await;
        return;
    };
    worker::Worker {
        keys,
        redis: conn,
        db,
        stats,
        shutdown,
    }
    .run()
    .await;
    let _ = beating.await;
    heartbeat.sign_off().await;
}

async fn wait_for<T>(
    what: &str,
    shutdown: &CancellationToken,
    get: impl Fn() -> anyhow::Result<T>,
) -> Option<T> {
    loop {
        if let Ok(v) = get() {
            return Some(v);
        }
        tracing::debug!(what, "waiting for the connection");
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.cancelled() => return None,
        }
    }
}

async fn wait_for_db(db: &Db, shutdown: &CancellationToken) -> Option<()> {
    loop {
        if db.client().await.is_ok() {
            return Some(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            _ = shutdown.cancelled() => return None,
        }
    }
}
