//! Page events: every page request is recorded on the event queue without
//! delaying the response.
//!
//! The request path only does a `try_send` into a bounded channel; a
//! background task drains it in batches and LPUSHes onto the queue. When the
//! channel is full or Redis is unreachable the event is dropped and counted
//! (`webapp_page_events_dropped_total`): a page never waits for the queue.

use std::time::Duration;

use micro_common::metrics::{Counter, Metrics};
use micro_common::redis::Redis;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events buffered while the sender is busy; beyond this they are dropped.
pub const CHANNEL_CAPACITY: usize = 4096;
/// Events pushed with one LPUSH.
const BATCH: usize = 256;
/// How many 20 ms waits for a Redis connection before a batch is dropped.
const CONNECT_GRACE_POLLS: u32 = 50;

/// The request-side handle. Cheap to clone.
#[derive(Clone)]
pub struct PageEvents {
    tx: mpsc::Sender<String>,
    dropped: Counter,
}

/// The counters the events pipeline reports.
#[derive(Clone)]
pub struct EventCounters {
    pub sent: Counter,
    pub dropped: Counter,
}

impl EventCounters {
    pub fn register(metrics: &Metrics) -> Self {
        Self {
            sent: metrics.counter(
                "webapp_page_events_sent_total",
                "Page events pushed onto the event queue.",
                &[],
            ),
            dropped: metrics.counter(
                "webapp_page_events_dropped_total",
                "Page events dropped because the queue was unreachable or the buffer full.",
                &[],
            ),
        }
    }
}

impl PageEvents {
    /// Queues a page event for `path`; never blocks.
    pub fn record(&self, path: &str) {
        if self.tx.try_send(page_event(path)).is_err() {
            self.dropped.inc();
        }
    }
}

/// The queue message for one page view. The random id lets eventservice
/// ignore a redelivered copy.
pub fn page_event(path: &str) -> String {
    #[derive(serde::Serialize)]
    struct PageEvent<'a> {
        action: &'static str,
        #[serde(rename = "type")]
        kind: &'static str,
        url: &'a str,
        id: &'a str,
    }
    let id = format!("{:032x}", rand::random::<u128>());
    // Serialized straight from borrowed fields (no intermediate JSON value).
    serde_json::to_string(&PageEvent {
        action: "record",
        kind: "page",
        url: path,
        id: &id,
    })
    .expect("a struct of strings always serializes")
}

/// The shared Redis connection; right after start-up it may still be
/// connecting, so wait a moment (events queue up in the channel meanwhile)
/// before giving up on this batch.
async fn connection(redis: &Redis) -> anyhow::Result<redis::aio::ConnectionManager> {
    for _ in 0..CONNECT_GRACE_POLLS {
        if let Ok(con) = redis.connection() {
            return Ok(con);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.connection()
}

/// Starts the sender task; returns the handle for request handlers.
/// `redis` connects (and reconnects) in the background; it is deliberately
/// not a readiness check of the webapp: pages render without Redis.
pub fn start(
    redis: Redis,
    queue: String,
    counters: EventCounters,
    shutdown: CancellationToken,
) -> PageEvents {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let handle = PageEvents {
        tx,
        dropped: counters.dropped.clone(),
    };
    tokio::spawn(drain(rx, redis, queue, counters, shutdown));
    handle
}

async fn drain(
    mut rx: mpsc::Receiver<String>,
    redis: Redis,
    queue: String,
    counters: EventCounters,
    shutdown: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            // On shutdown: push what is already buffered, then stop.
            _ = shutdown.cancelled() => {
                rx.close();
                rx.recv_many(&mut batch, CHANNEL_CAPACITY).await
            }
        };
        if n == 0 {
            return;
        }
        let pushed = match connection(&redis).await {
            Ok(mut con) => redis::cmd("LPUSH")
                .arg(&queue)
                .arg(&batch)
                .query_async::<()>(&mut con)
                .await
                .map_err(anyhow::Error::from),
            Err(not_connected) => Err(not_connected),
        };
        match pushed {
            Ok(()) => {
                counters.sent.add(n as u64);
            }
            Err(e) => {
                counters.dropped.add(n as u64);
                tracing::warn!(error = %format!("{e:#}"), dropped = n, "page events dropped: redis unavailable");
                // Do not hammer a dead Redis; events arriving meanwhile are
                // dropped by the full channel, which is what we want.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        batch.clear();
    }
}
