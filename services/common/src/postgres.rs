//! PostgreSQL: connection settings from the environment, a small pool that keeps retrying in
//! the background (the service starts before the database is up), and start-up migrations.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;

use crate::discovery::Discovery;
use crate::readiness::ReadyFlag;
use crate::retry::with_backoff;

pub use deadpool_postgres::Object as PooledClient;

/// One schema change, applied once, in `version` order.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// How often the background task checks that the database still answers.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// The server cancels any statement of a service connection that runs longer than this
/// (`statement_timeout`): a lock wait or a runaway query cannot hold a request forever.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest a service waits for one database call (taking a connection included), on
/// its own clock: `statement_timeout` cannot help when the server or the network stops
/// answering at all. A little above [`STATEMENT_TIMEOUT`], so a slow statement gets the
/// server's own error first.
pub const QUERY_TIMEOUT: Duration = Duration::from_millis(2500);

/// Migrations may wait for another replica's migration lock and rewrite tables: they get
/// their own, longer limit (on both clocks).
pub const MIGRATION_TIMEOUT: Duration = Duration::from_secs(60);

/// A database call that did not finish within its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut(pub Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the database did not answer within {:?}", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// `call`, or [`TimedOut`] once `limit` has passed (the call is dropped: its connection
/// goes back to the pool and a late answer is discarded).
pub async fn within<F: std::future::Future>(
    limit: Duration,
    call: F,
) -> Result<F::Output, TimedOut> {
    tokio::time::timeout(limit, call)
        .await
        .map_err(|_| TimedOut(limit))
}

/// The limits every service connection gets: connect, and the server-side statement timeout.
fn with_timeouts(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    config.connect_timeout(Duration::from_secs(3));
    config.options(format!(
        "-c statement_timeout={}",
        STATEMENT_TIMEOUT.as_millis()
    ));
    config
}

/// Connection settings: `DATABASE_URL` when set; otherwise service `postgres` found by
/// [`Discovery`] with `POSTGRES_USER` (default `micro`), `POSTGRES_PASSWORD` (default empty)
/// and `POSTGRES_DB` (default `micro`).
pub async fn config_from_env(discovery: &Discovery) -> anyhow::Result<tokio_postgres::Config> {
    let config = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url
            .parse::<tokio_postgres::Config>()
            .context("DATABASE_URL is not a valid PostgreSQL URL")?,
        _ => {
            let addr = discovery.resolve("postgres").await?;
            let mut c = tokio_postgres::Config::new();
            c.host(addr.ip().to_string())
                .port(addr.port())
                .user(crate::config::env_or("POSTGRES_USER", "micro"))
                .dbname(crate::config::env_or("POSTGRES_DB", "micro"));
            let password = crate::config::env_or("POSTGRES_PASSWORD", "");
            if !password.is_empty() {
                c.password(password);
            }
            c
        }
    };
    Ok(with_timeouts(config))
}

/// A pool over `config`: up to 16 connections, a request waits at most 2 s for one.
pub fn pool(config: tokio_postgres::Config) -> anyhow::Result<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(16)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(2)))
        .create_timeout(Some(Duration::from_secs(3)))
        .recycle_timeout(Some(Duration::from_secs(2)))
        .build()
        .context("cannot build the PostgreSQL pool")
}

enum Source {
    Env(Discovery),
    Url(String),
}

impl Source {
    async fn config(&self) -> anyhow::Result<tokio_postgres::Config> {
        match self {
            Source::Env(discovery) => config_from_env(discovery).await,
            Source::Url(url) => Ok(with_timeouts(
                url.parse().context("not a valid PostgreSQL URL")?,
            )),
        }
    }
}

/// The database of one service: connects and migrates in the background, retrying with
/// backoff, and keeps `ready` up to date. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Arc<OnceLock<Pool>>,
    ready: ReadyFlag,
}

impl Db {
    /// Starts the background connector: settings from [`config_from_env`], then
    /// [`migrate`]`(schema, migrations)`, then a health check every 2 s.
    pub fn start(
        ready: ReadyFlag,
        discovery: Discovery,
        schema: &'static str,
        migrations: &'static [Migration],
        shutdown: CancellationToken,
    ) -> Db {
        Self::start_from(ready, Source::Env(discovery), schema, migrations, shutdown)
    }

    /// Like [`Db::start`] but with an explicit URL instead of the environment (tests that run
    /// several services in one process, each on its own database).
    pub fn start_with_url(
        ready: ReadyFlag,
        url: &str,
        schema: &'static str,
        migrations: &'static [Migration],
        shutdown: CancellationToken,
    ) -> Db {
        Self::start_from(
            ready,
            Source::Url(url.to_string()),
            schema,
            migrations,
            shutdown,
        )
    }

    fn start_from(
        ready: ReadyFlag,
        source: Source,
        schema: &'static str,
        migrations: &'static [Migration],
        shutdown: CancellationToken,
    ) -> Db {
        let db = Db {
            pool: Arc::new(OnceLock::new()),
            ready,
        };
        let task = db.clone();
        tokio::spawn(async move {
            let connected =
                with_backoff("connect to PostgreSQL and migrate", &shutdown, || async {
                    let config = source.config().await?;
                    let pool = pool(config)?;
                    within(MIGRATION_TIMEOUT, async {
                        let mut client = pool.get().await.map_err(|e| anyhow!("{e}"))?;
                        migrate(&mut client, schema, migrations).await
                    })
                    .await??;
                    anyhow::Ok(pool)
                })
                .await;
            let Some(pool) = connected else { return };
            tracing::info!(schema, "PostgreSQL connected and migrated");
            let _ = task.pool.set(pool.clone());
            task.ready.set(true);
            task.watch_health(pool, shutdown).await;
        });
        db
    }

    async fn watch_health(&self, pool: Pool, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(HEALTH_INTERVAL) => {}
                _ = shutdown.cancelled() => return,
            }
            let check = within(QUERY_TIMEOUT, async {
                match pool.get().await {
                    Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
                    Err(_) => false,
                }
            });
            // A database that does not answer is as unready as one that refuses.
            let healthy = check.await.unwrap_or(false);
            if healthy != self.ready.is_ready() {
                if healthy {
                    tracing::info!("PostgreSQL reachable again");
                } else {
                    tracing::warn!("PostgreSQL unreachable");
                }
            }
            self.ready.set(healthy);
        }
    }

    /// A pooled connection, or an error saying why there is none (not connected yet, or
    /// the database stopped answering). Callers answer 503 with it.
    pub async fn client(&self) -> anyhow::Result<PooledClient> {
        let pool = self
            .pool
            .get()
            .ok_or_else(|| anyhow!("database not connected yet"))?;
        match pool.get().await {
            Ok(client) => Ok(client),
            Err(e) => {
                self.ready.set(false);
                Err(anyhow!("database unavailable: {e}"))
            }
        }
    }

    /// Marks the database not ready (a query failed on a connection that looked fine).
    pub fn mark_unreachable(&self) {
        self.ready.set(false);
    }
}

/// Applies the `migrations` not yet recorded in `<schema>.schema_migrations`, in one
/// transaction. Idempotent, and safe when several replicas start at once: a transaction-level
/// advisory lock per schema makes them take turns, and the second finds nothing to do.
pub async fn migrate(
    client: &mut tokio_postgres::Client,
    schema: &str,
    migrations: &[Migration],
) -> anyhow::Result<Vec<i32>> {
    if schema.is_empty()
        || !schema
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!("schema name {schema:?} must be lower-case letters, digits and _");
    }
    let tx = client.transaction().await.context("begin migration")?;
    // The service-wide statement_timeout is for requests, not for schema changes (nor for
    // waiting on another replica's migration lock).
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}",
        MIGRATION_TIMEOUT.as_millis()
    ))
    .await
    .context("set the migration statement timeout")?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('micro-migrations:' || $1::text))",
        &[&schema],
    )
    .await
    .context("take the migration lock")?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         );"
    ))
    .await
    .with_context(|| format!("create schema {schema}"))?;
    let applied: Vec<i32> = tx
        .query(
            &format!("SELECT version FROM {schema}.schema_migrations"),
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut pending: Vec<&Migration> = migrations
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect();
    pending.sort_by_key(|m| m.version);
    let mut done = Vec::new();
    for m in pending {
        tx.batch_execute(m.sql)
            .await
            .with_context(|| format!("migration {} ({}) of schema {schema}", m.version, m.name))?;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)"),
            &[&m.version, &m.name],
        )
        .await?;
        tracing::info!(
            schema,
            version = m.version,
            name = m.name,
            "migration applied"
        );
        done.push(m.version);
    }
    tx.commit().await.context("commit migrations")?;
    Ok(done)
}
