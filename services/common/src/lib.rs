//! What every micro service needs: configuration, discovery, server start-up, telemetry,
//! readiness, metrics, retries, and the PostgreSQL / Redis connections.
//!
//! A service's `main` looks like this:
//!
//! ```no_run
//! use micro_common::{Metrics, Readiness, config, server, telemetry};
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     telemetry::init("adderservice");
//!     let shutdown = server::shutdown_on_signals();
//!     let (ready, metrics) = (Readiness::new(), Metrics::new());
//!     let app = axum::Router::new(); // the service's own routes
//!     server::serve("adderservice", 8080, app, ready, metrics, shutdown).await
//! }
//! ```
//!
//! Modules, one job each:
//! - [`config`]: `port(service, default)` from `<NAME>_SERVICE_PORT`, `listen_addr` (+ `LISTEN_HOST`),
//!   `env_or(key, default)`.
//! - [`telemetry`]: `init(service)`: tracing, `RUST_LOG` filter (default info), JSON when `LOG_FORMAT=json`.
//! - [`discovery`]: [`Discovery`]: `from_env()`, `from_vars(map)`, `env_only(map)` (tests: no DNS),
//!   `resolve(service) -> SocketAddr`, `base_url(service) -> "http://ip:port"`. SRV first (cached
//!   for the TTL), `<S>_SERVICE_HOST`/`<S>_SERVICE_PORT` fallback.
//! - [`server`]: `serve(service, default_port, app, ready, metrics, shutdown)`;
//!   `router(app, ready, metrics)` + `serve_on(listener, router, shutdown)` for tests;
//!   `shutdown_on_signals() -> CancellationToken` (SIGTERM/SIGINT). Adds `/healthz`, `/readyz`
//!   (503 + JSON naming the not-ready dependencies), `/metrics`, a 64 KiB body limit (413),
//!   per-route request metrics, a JSON 404 fallback, and turns plain-text/empty error responses
//!   (axum's rejections) into `{"error": "..."}` JSON. HTML and JSON error bodies are kept.
//! - [`error`]: [`ApiError`] (status + message → `{"error": message}`), `From<JsonRejection>`.
//! - [`readiness`]: [`Readiness`] (`register(name) -> ReadyFlag`, `not_ready()`), [`ReadyFlag`] (`set`).
//! - [`metrics`]: [`Metrics`]: `counter/gauge/histogram(name, help, &[(label, value)])`, `render()`.
//! - [`retry`]: `with_backoff(what, &shutdown, || async { ... })` retries forever with jittered
//!   exponential backoff; `None` when shut down.
//! - [`postgres`]: `Db::start(flag, discovery, schema, MIGRATIONS, shutdown)` connects (DATABASE_URL, else
//!   discovered `postgres` + `POSTGRES_USER/PASSWORD/DB`) and runs `migrate` in the background
//!   (`Db::start_with_url(flag, url, ...)` for in-process tests);
//!   `db.client().await` gives a pooled connection or an error to answer 503 with.
//!   `migrate(client, schema, migrations)` is idempotent and replica-safe (advisory lock).
//! - [`idempotency`]: `Idempotency-Key` of `POST /append` (`KEY_HEADER`, `new_key()`).
//! - [`queue`]: the event-queue contract (`SUMMARY_RETURN_PREFIX`, `report:`).
//! - [`redis`]: `Redis::start(flag, discovery, shutdown)` (REDIS_URL, else discovered `redis` +
//!   `REDIS_PASSWORD`; `Redis::start_with_url(flag, url, shutdown)` for tests); `connection()` = shared `ConnectionManager` (2 s timeouts: not for blocking
//!   commands), `client()` for dedicated connections.
//! - `testkit` (cargo feature `testkit`, for dev-dependencies): `pg_admin_url()`, `redis_url()` (panic
//!   when `MICRO_TEST_*` is unset), `fresh_database() -> url`, `unique_name(prefix)`, `free_port()`,
//!   `wait_for_status(url, status, timeout)`.

pub mod config;
pub mod discovery;
pub mod error;
pub mod idempotency;
pub mod metrics;
pub mod postgres;
pub mod queue;
pub mod readiness;
pub mod redis;
pub mod retry;
pub mod server;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use discovery::Discovery;
pub use error::ApiError;
pub use metrics::Metrics;
pub use readiness::{Readiness, ReadyFlag};
pub use tokio_util::sync::CancellationToken;
