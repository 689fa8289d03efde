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

/// Connection settings: `DATABASE_URL` when set; otherwise service `postgres` found by
/// [`Discovery`] with `POSTGRES_USER` (default `micro`), `POSTGRES_PASSWORD` (default empty)
/// and `POSTGRES_DB` (default `micro`).
pub async fn config_from_env(discovery: &Discovery) -> anyhow::Result<tokio_postgres::Config> {
    let mut config = match std::env::var("DATABASE_URL") {
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
    config.connect_timeout(Duration::from_secs(3));
    Ok(config)
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
            Source::Url(url) => {
                let mut config: tokio_postgres::Config =
                    url.parse().context("not a valid PostgreSQL URL")?;
                config.connect_timeout(Duration::from_secs(3));
                Ok(config)
            }
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
                    let mut client = pool.get().await.map_err(|e| anyhow!("{e}"))?;
                    migrate(&mut client, schema, migrations).await?;
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
            let healthy = match pool.get().await {
                Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
                Err(_) => false,
            };
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
