//! Test helpers (cargo feature `testkit`): real PostgreSQL/Redis from the test environment
//! contract (`cargo xtask test` exports `MICRO_TEST_PG_URL` and `MICRO_TEST_REDIS_URL`),
//! fresh databases, free ports, waiting for a server to answer.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// `MICRO_TEST_PG_URL`; panics with the way to get it when unset (a test must not pass
/// without its database).
pub fn pg_admin_url() -> String {
    required_env("MICRO_TEST_PG_URL")
}

/// `MICRO_TEST_REDIS_URL`; panics with the way to get it when unset.
pub fn redis_url() -> String {
    required_env("MICRO_TEST_REDIS_URL")
}

fn required_env(key: &str) -> String {
    match std::env::var(key) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{key} unset: run the suite with `cargo xtask test`"),
    }
}

/// A name no other test uses: `<prefix>_<time>_<random>` (lower case, digits, `_`).
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}_{nanos:x}_{:08x}", rand::random::<u32>())
}

/// Creates an empty database `t_<random>` on the test server and returns its URL.
pub async fn fresh_database() -> String {
    let admin = pg_admin_url();
    let name = unique_name("t");
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to MICRO_TEST_PG_URL={admin}: {e}"));
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    with_database(&admin, &name)
}

/// `url` with its database (path) replaced by `db`, query parameters kept.
pub fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let authority = before_query.split('/').next().unwrap_or(before_query);
    let mut out = format!("{scheme}://{authority}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A TCP port on 127.0.0.1 that was free a moment ago (for a child process to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A port on 127.0.0.1 where nothing listens (to point a service at a dead dependency).
pub fn dead_port() -> u16 {
    free_port()
}

/// Polls `url` until it answers with `status`, for at most `timeout`.
pub async fn wait_for_status(url: &str, status: u16, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .context("HTTP client")?;
    let deadline = Instant::now() + timeout;
    loop {
        let last = match client.get(url).send().await {
            Ok(r) if r.status().as_u16() == status => return Ok(()),
            Ok(r) => format!("status {}", r.status()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            bail!("{url} did not answer {status} within {timeout:?} (last: {last})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client that opens a new connection for every request, so each one needs the
/// listener to accept: what a drain test must see answered until the listener closes.
#[derive(Clone)]
pub struct FreshConnections {
    client: reqwest::Client,
    base: String,
}

/// What one request got: its status, or why it failed (refused, reset, timed out).
pub type Answer = Result<u16, String>;

impl FreshConnections {
    /// Requests to `base` (`http://127.0.0.1:<port>`).
    pub fn new(base: &str) -> FreshConnections {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(5))
            .build()
            .expect("HTTP client");
        FreshConnections {
            client,
            base: base.to_string(),
        }
    }

    pub async fn status(&self, path: &str) -> Answer {
        let url = format!("{}{path}", self.base);
        match self.client.get(url).send().await {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// GET `path` one request after another until `stop` is cancelled; every answer.
    pub fn load(
        &self,
        path: &'static str,
        stop: crate::CancellationToken,
    ) -> tokio::task::JoinHandle<Vec<Answer>> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.is_cancelled() {
                answers.push(this.status(path).await);
            }
            answers
        })
    }

    /// Polls `/readyz` while it answers 200; the first other answer.
    pub async fn readiness_once_not_ready(&self) -> Answer {
        loop {
            match self.status("/readyz").await {
                Ok(200) => continue,
                other => return other,
            }
        }
    }

    /// The drain contract under load on `path`: `stop` (a SIGTERM) is called while
    /// requests flow; readiness must then answer 503, and every request, until `settle`
    /// after that, must be answered 200. Panics naming what failed.
    pub async fn assert_served_through_drain(
        &self,
        path: &'static str,
        stop: impl FnOnce(),
        settle: Duration,
    ) {
        let load_stop = crate::CancellationToken::new();
        let load = self.load(path, load_stop.clone());
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop();
        assert_eq!(
            self.readiness_once_not_ready().await,
            Ok(503),
            "readiness says it is stopping"
        );
        // Load keeps coming, as it does until the endpoints controller catches up.
        tokio::time::sleep(settle).await;
        load_stop.cancel();
        let answers = load.await.expect("the load task");
        let failed: Vec<_> = answers.iter().filter(|a| **a != Ok(200)).collect();
        assert!(
            failed.is_empty(),
            "refused or failed in the drain window: {failed:?}"
        );
        assert!(answers.len() > 2, "the load ran: {answers:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5/postgres", "t_1"),
            "postgres://postgres@127.0.0.1:5/t_1"
        );
        assert_eq!(
            with_database("postgres://u:p@h:5?sslmode=disable", "x"),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
    }
}
