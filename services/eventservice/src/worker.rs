//! The consume loop: take one message, do its work, acknowledge it.
//!
//! Invariant: a message leaves this worker's processing list only after its
//! effect is committed (event row, summary reply or dead-letter entry). If the
//! process dies at any point before that, the message is still in the
//! processing list and is requeued at the next start-up (ours, or another
//! worker's once our heartbeat expires).

use std::time::Duration;

use micro_common::metrics::{Counter, Metrics};
use micro_common::postgres::{Db, PooledClient};
use micro_common::retry::Backoff;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use crate::message::{self, Message};
use crate::queue::Keys;
use crate::store;

/// How long one BLMOVE blocks: also the worst-case delay before the loop
/// notices a shutdown request.
pub const TAKE_BLOCK: Duration = Duration::from_secs(1);
/// Newest dead letters kept: a flood of garbage must not fill Redis.
pub const DEAD_LETTER_LIMIT: isize = 10_000;
/// How long a summary reply list lives if nobody collects it.
pub const REPLY_TTL_SECS: i64 = 60;

/// How long an in-flight database operation may still finish after SIGTERM
/// before it is abandoned (the message then stays in the processing list).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Counters the worker reports on /metrics.
#[derive(Clone)]
pub struct Stats {
    pub processed: Counter,
    pub dead_lettered: Counter,
    pub duplicates: Counter,
    pub requeued: Counter,
}

impl Stats {
    pub fn register(metrics: &Metrics) -> Self {
        Self {
            processed: metrics.counter(
                "eventservice_messages_processed_total",
                "Queue messages handled and acknowledged (events stored, summaries answered).",
                &[],
            ),
            dead_lettered: metrics.counter(
                "eventservice_messages_dead_lettered_total",
                "Queue messages moved to the dead-letter list.",
                &[],
            ),
            duplicates: metrics.counter(
                "eventservice_duplicate_events_total",
                "Redelivered events not stored again (same message id).",
                &[],
            ),
            requeued: metrics.counter(
                "eventservice_messages_requeued_total",
                "Messages moved back from processing lists of stopped or dead workers.",
                &[],
            ),
        }
    }
}

/// Everything the loop touches.
pub struct Worker {
    pub keys: Keys,
    /// A connection of its own: BLMOVE blocks it for [`TAKE_BLOCK`].
    pub redis: ConnectionManager,
    pub db: Db,
    pub stats: Stats,
    pub shutdown: CancellationToken,
}

/// What became of one message.
enum Outcome {
    Done,
    /// Shutting down mid-way: leave it in the processing list.
    Abandoned,
}

impl Worker {
    /// Consumes until `shutdown` is cancelled. Never returns early on bad input
    /// or unreachable dependencies: those are retried or dead-lettered.
    pub async fn run(mut self) {
        let mut backoff = Backoff::default();
        while !self.shutdown.is_cancelled() {
            let taken: redis::RedisResult<Option<Vec<u8>>> = redis::cmd("BLMOVE")
                .arg(&self.keys.queue)
                .arg(&self.keys.processing)
                .arg("RIGHT")
                .arg("LEFT")
                .arg(TAKE_BLOCK.as_secs_f64())
                .query_async(&mut self.redis)
                .await;
            match taken {
                Ok(None) => {}
                Ok(Some(raw)) => {
                    backoff = Backoff::default();
                    if let Outcome::Abandoned = self.handle(&raw).await {
                        break;
                    }
                }
                Err(e) => {
                    let delay = backoff.next_delay();
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "taking from the queue failed");
                    self.pause(delay).await;
                }
            }
        }
        tracing::info!("worker stopped");
    }

    async fn handle(&mut self, raw: &[u8]) -> Outcome {
        match message::parse(raw) {
            Err(reason) => self.dead_letter(raw, &reason).await,
            Ok(Message::Record(event)) => match self.with_pg(&Insert(&event)).await {
                Some(Ok(fresh)) => {
                    if !fresh {
                        self.stats.duplicates.inc();
                        tracing::info!(id = ?event.id, "duplicate event ignored");
                    }
                    self.ack(raw).await
                }
                Some(Err(reason)) => self.dead_letter(raw, &reason).await,
                None => Outcome::Abandoned,
            },
            Ok(Message::Summary { return_path }) => match self.with_pg(&Summary).await {
                Some(Ok(counts)) => {
                    let reply = serde_json::to_string(&counts).expect("a map of counts");
                    match self.reply(&return_path, &reply).await {
                        Some(Ok(())) => self.ack(raw).await,
                        Some(Err(reason)) => self.dead_letter(raw, &reason).await,
                        None => Outcome::Abandoned,
                    }
                }
                Some(Err(reason)) => self.dead_letter(raw, &reason).await,
                None => Outcome::Abandoned,
            },
        }
    }

    /// Runs `op` against PostgreSQL until it succeeds or fails for a reason
    /// that retrying cannot fix (`Some(Err(reason))`: bad data). `None` when
    /// shutdown came first.
    async fn with_pg<O: PgOp>(&self, op: &O) -> Option<Result<O::Output, String>> {
        let mut backoff = Backoff::default();
        loop {
            let error = match self.db.client().await {
                Ok(mut client) => {
                    // Let a running operation finish after SIGTERM, within a grace period.
                    let grace = async {
                        self.shutdown.cancelled().await;
                        tokio::time::sleep(SHUTDOWN_GRACE).await;
                    };
                    let result = tokio::select! {
                        r = op.run(&mut client) => r,
                        _ = grace => return None,
                    };
                    match result {
                        Ok(v) => return Some(Ok(v)),
                        Err(e) if is_permanent(&e) => {
                            let why = e
                                .as_db_error()
                                .map_or_else(|| e.to_string(), |db| db.message().to_string());
                            return Some(Err(format!("rejected by the database: {why}")));
                        }
                        Err(e) => {
                            self.db.mark_unreachable();
                            e.to_string()
                        }
                    }
                }
                Err(e) => format!("{e:#}"),
            };
            let delay = backoff.next_delay();
            tracing::warn!(what = op.what(), %error, retry_in_ms = delay.as_millis() as u64, "postgres unavailable");
            if !self.pause(delay).await {
                return None;
            }
        }
    }

    /// Pushes a summary reply. `Some(Err)` when the return path cannot hold
    /// it (e.g. the key is not a list): retrying would not help.
    async fn reply(&mut self, return_path: &str, reply: &str) -> Option<Result<(), String>> {
        let mut pipe = redis::pipe();
        pipe.lpush(return_path, reply).ignore();
        pipe.expire(return_path, REPLY_TTL_SECS).ignore();
        let mut backoff = Backoff::default();
        loop {
            match pipe.query_async::<()>(&mut self.redis).await {
                Ok(()) => return Some(Ok(())),
                Err(e) if e.code() == Some("WRONGTYPE") => {
                    return Some(Err(format!("returnPath {return_path:?} is not a list")));
                }
                Err(e) => {
                    if !self.redis_retry(&mut backoff, "replying", &e).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Removes the message from the processing list: it is done.
    async fn ack(&mut self, raw: &[u8]) -> Outcome {
        let mut backoff = Backoff::default();
        loop {
            let removed: redis::RedisResult<i64> = redis::cmd("LREM")
                .arg(&self.keys.processing)
                .arg(1)
                .arg(raw)
                .query_async(&mut self.redis)
                .await;
            match removed {
                Ok(_) => {
                    self.stats.processed.inc();
                    return Outcome::Done;
                }
                Err(e) => {
                    if !self.redis_retry(&mut backoff, "acknowledging", &e).await {
                        return Outcome::Abandoned;
                    }
                }
            }
        }
    }

    /// Moves the message to the dead-letter list with its reason, atomically.
    async fn dead_letter(&mut self, raw: &[u8], reason: &str) -> Outcome {
        tracing::warn!(reason, "dead-lettering a message");
        let entry = message::dead_letter(reason, raw);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .lpush(&self.keys.dead, &entry)
            .ignore()
            .ltrim(&self.keys.dead, 0, DEAD_LETTER_LIMIT - 1)
            .ignore()
            .cmd("LREM")
            .arg(&self.keys.processing)
            .arg(1)
            .arg(raw)
            .ignore();
        let mut backoff = Backoff::default();
        loop {
            match pipe.query_async::<()>(&mut self.redis).await {
                Ok(()) => {
                    self.stats.dead_lettered.inc();
                    return Outcome::Done;
                }
                Err(e) => {
                    if !self.redis_retry(&mut backoff, "dead-lettering", &e).await {
                        return Outcome::Abandoned;
                    }
                }
            }
        }
    }

    async fn redis_retry(&self, backoff: &mut Backoff, what: &str, e: &redis::RedisError) -> bool {
        let delay = backoff.next_delay();
        tracing::warn!(what, error = %e, retry_in_ms = delay.as_millis() as u64, "redis unavailable");
        self.pause(delay).await
    }

    /// Sleeps; false if shutdown was requested meanwhile.
    async fn pause(&self, delay: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = self.shutdown.cancelled() => false,
        }
    }
}

/// One kind of database work a message needs (a trait rather than a closure
/// keeps the worker future `Send`).
trait PgOp: Sync {
    type Output: Send;
    fn what(&self) -> &'static str;
    fn run<'a>(
        &'a self,
        client: &'a mut PooledClient,
    ) -> impl Future<Output = Result<Self::Output, tokio_postgres::Error>> + Send + 'a;
}

struct Insert<'e>(&'e crate::message::Event);

impl PgOp for Insert<'_> {
    type Output = bool;
    fn what(&self) -> &'static str {
        "storing an event"
    }
    fn run<'a>(
        &'a self,
        client: &'a mut PooledClient,
    ) -> impl Future<Output = Result<bool, tokio_postgres::Error>> + Send + 'a {
        store::insert(client, self.0)
    }
}

struct Summary;

impl PgOp for Summary {
    type Output = std::collections::BTreeMap<String, i64>;
    fn what(&self) -> &'static str {
        "summarising events"
    }
    fn run<'a>(
        &'a self,
        client: &'a mut PooledClient,
    ) -> impl Future<Output = Result<Self::Output, tokio_postgres::Error>> + Send + 'a {
        store::summary(client)
    }
}

/// Errors about the data itself (SQLSTATE classes 22 "data exception" and
/// 23 "integrity constraint"): the same message would fail forever.
fn is_permanent(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| matches!(&db.code().code()[..2], "22" | "23"))
}
