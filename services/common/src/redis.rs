//! Redis: connection settings from the environment and a reconnecting connection that is
//! set up in the background (the service starts before Redis is up).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;

use crate::discovery::Discovery;
use crate::readiness::ReadyFlag;
use crate::retry::with_backoff;

const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// `REDIS_URL` when set; otherwise service `redis` found by [`Discovery`], with
/// `REDIS_PASSWORD` when set.
pub async fn client_from_env(discovery: &Discovery) -> anyhow::Result<redis::Client> {
    let url = match std::env::var("REDIS_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            let addr = discovery.resolve("redis").await?;
            match std::env::var("REDIS_PASSWORD") {
                Ok(p) if !p.is_empty() => {
                    use redis::IntoConnectionInfo as _;
                    let info = redis::ConnectionAddr::Tcp(addr.ip().to_string(), addr.port())
                        .into_connection_info()?
                        .set_redis_settings(redis::RedisConnectionInfo::default().set_password(p));
                    return redis::Client::open(info).context("invalid Redis settings");
                }
                _ => format!("redis://{addr}"),
            }
        }
    };
    redis::Client::open(url.as_str()).context("REDIS_URL is not a valid Redis URL")
}

/// Settings of the shared multiplexed connection: short timeouts so a dead Redis shows up
/// as an error quickly. Not for blocking commands (BLMOVE): open a dedicated connection
/// from [`Redis::client`] for those.
pub fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2)
}

/// The Redis connection of one service. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    state: Arc<OnceLock<(redis::Client, ConnectionManager)>>,
    ready: ReadyFlag,
}

impl Redis {
    /// Starts the background connector (retrying with backoff), then PINGs every 2 s to
    /// keep `ready` current. The [`ConnectionManager`] reconnects by itself.
    pub fn start(ready: ReadyFlag, discovery: Discovery, shutdown: CancellationToken) -> Redis {
        Self::start_from(ready, Some(discovery), None, shutdown)
    }

    /// Like [`Redis::start`] but with an explicit URL instead of the environment (tests).
    pub fn start_with_url(ready: ReadyFlag, url: &str, shutdown: CancellationToken) -> Redis {
        Self::start_from(ready, None, Some(url.to_string()), shutdown)
    }

    fn start_from(
        ready: ReadyFlag,
        discovery: Option<Discovery>,
        url: Option<String>,
        shutdown: CancellationToken,
    ) -> Redis {
        let this = Redis {
            state: Arc::new(OnceLock::new()),
            ready,
        };
        let task = this.clone();
        tokio::spawn(async move {
            let connected = with_backoff("connect to Redis", &shutdown, || async {
                let client = match (&url, &discovery) {
                    (Some(url), _) => redis::Client::open(url.as_str())?,
                    (None, Some(discovery)) => client_from_env(discovery).await?,
                    (None, None) => unreachable!("Redis::start_from needs a URL or discovery"),
                };
                let mut manager = client
                    .get_connection_manager_with_config(manager_config())
                    .await?;
                let _: String = redis::cmd("PING").query_async(&mut manager).await?;
                anyhow::Ok((client, manager))
            })
            .await;
            let Some(state) = connected else { return };
            tracing::info!("Redis connected");
            let mut manager = state.1.clone();
            let _ = task.state.set(state);
            task.ready.set(true);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(HEALTH_INTERVAL) => {}
                    _ = shutdown.cancelled() => return,
                }
                let ping: redis::RedisResult<String> =
                    redis::cmd("PING").query_async(&mut manager).await;
                let healthy = ping.is_ok();
                if healthy != task.ready.is_ready() {
                    if healthy {
                        tracing::info!("Redis reachable again");
                    } else {
                        tracing::warn!("Redis unreachable");
                    }
                }
                task.ready.set(healthy);
            }
        });
        this
    }

    /// The shared multiplexed connection, or an error when not connected yet.
    pub fn connection(&self) -> anyhow::Result<ConnectionManager> {
        self.state
            .get()
            .map(|(_, m)| m.clone())
            .ok_or_else(|| anyhow!("Redis not connected yet"))
    }

    /// The client (for dedicated connections, e.g. blocking commands), once connected.
    pub fn client(&self) -> anyhow::Result<redis::Client> {
        self.state
            .get()
            .map(|(c, _)| c.clone())
            .ok_or_else(|| anyhow!("Redis not connected yet"))
    }

    pub fn is_ready(&self) -> bool {
        self.ready.is_ready()
    }
}
