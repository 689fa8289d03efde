//! HTTP server start-up shared by every service: health, readiness and metrics endpoints,
//! per-route request metrics, a request body limit, JSON error bodies, graceful shutdown.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::{ApiError, default_message};
use crate::metrics::Metrics;
use crate::readiness::Readiness;

/// Largest request body accepted (bigger → 413 with a JSON error).
pub const BODY_LIMIT: usize = 64 * 1024;

/// How long in-flight requests may take to finish after SIGTERM before the server gives up.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The environment variable holding the drain delay: how long after SIGTERM `/readyz`
/// answers 503 while requests are still served, so load balancers and Kubernetes
/// endpoints stop sending before the listener closes. 0 (the default) stops at once.
pub const SHUTDOWN_DELAY_ENV: &str = "SHUTDOWN_DELAY_SECS";

/// [`SHUTDOWN_DELAY_ENV`] as a duration; a value that is not a whole number of seconds
/// is an error naming the variable.
pub fn shutdown_delay() -> anyhow::Result<Duration> {
    let raw = crate::config::env_or(SHUTDOWN_DELAY_ENV, "0");
    raw.trim()
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| {
            anyhow::anyhow!("{SHUTDOWN_DELAY_ENV}={raw:?} is not a whole number of seconds")
        })
}

/// The graceful stop: once `shutdown` is cancelled, `ready` reports "shutting down"
/// (`/readyz` 503) for `delay` while requests are still served; then the returned token
/// is cancelled, which makes [`serve_on`] stop accepting and finish in-flight requests.
pub fn drain_on(
    shutdown: CancellationToken,
    ready: &Readiness,
    delay: Duration,
) -> CancellationToken {
    let stop_accepting = CancellationToken::new();
    let serving = ready.register("shutting down");
    serving.set(true);
    let stop = stop_accepting.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        serving.set(false);
        tracing::info!(?delay, "not ready; draining before the listener closes");
        tokio::time::sleep(delay).await;
        stop.cancel();
    });
    stop_accepting
}

/// A token cancelled on SIGTERM or SIGINT (Ctrl-C). Pass it to [`serve`] and to workers.
/// Must be called inside a Tokio runtime.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let trigger = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        }
        trigger.cancel();
    });
    token
}

/// Binds `LISTEN_HOST:<NAME>_SERVICE_PORT` (see [`crate::config::listen_addr`]) and serves
/// [`router`]`(app, ...)`; once `shutdown` is cancelled, drains for [`shutdown_delay`]
/// (see [`drain_on`]), then stops accepting and finishes in-flight requests.
pub async fn serve(
    service: &str,
    default_port: u16,
    app: Router,
    ready: Readiness,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = crate::config::listen_addr(service, default_port)?;
    let stop_accepting = drain_on(shutdown, &ready, shutdown_delay()?);
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    tracing::info!(%addr, service, "listening");
    serve_on(listener, router(app, ready, metrics), stop_accepting).await
}

/// Serves an already complete router on `listener` (tests bind `127.0.0.1:0` themselves).
pub async fn serve_on(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // Small JSON answers: send them at once rather than waiting for more data.
        let _ = tcp.set_nodelay(true);
    });
    let server =
        axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::select! {
        result = server => result.context("HTTP server failed")?,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(DRAIN_TIMEOUT).await } => {
            tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}; stopping anyway");
        }
    }
    tracing::info!("HTTP server stopped");
    Ok(())
}

/// `app` plus `GET /healthz`, `GET /readyz`, `GET /metrics`, request metrics
/// (`http_requests_total` and `http_request_duration_seconds` by route and status),
/// the [`BODY_LIMIT`], and JSON bodies for errors that have none of their own.
pub fn router(app: Router, ready: Readiness, metrics: Metrics) -> Router {
    let render = metrics.clone();
    let http = HttpMetrics::new(metrics);
    app.route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(move || readyz(ready.clone())))
        .route(
            "/metrics",
            get(move || {
                let text = render.render();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        )
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                default_message(StatusCode::NOT_FOUND),
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(move |req, next| {
            observe(http.clone(), req, next)
        }))
}

async fn readyz(ready: Readiness) -> Response {
    let missing = ready.not_ready();
    if missing.is_empty() {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"ready": true})),
        )
            .into_response()
    } else {
        let body = serde_json::json!({
            "ready": false,
            "error": format!("not ready: {}", missing.join(", ")),
            "notReady": missing,
        });
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

/// Counters and histograms per (route, status), looked up without allocating once known.
#[derive(Clone)]
struct HttpMetrics {
    metrics: Metrics,
    cache: std::sync::Arc<std::sync::RwLock<Vec<RouteKeyed>>>,
}

/// `((route, status), series)`.
type RouteKeyed = ((String, u16), RouteSeries);

#[derive(Clone)]
struct RouteSeries {
    requests: crate::metrics::Counter,
    latency: crate::metrics::Histogram,
}

impl HttpMetrics {
    fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            cache: Default::default(),
        }
    }

    fn record(&self, route: &str, status: u16, elapsed: Duration) {
        // Hot path: a shared read lock (uncontended in practice) and two atomic adds.
        {
            let cache = self.cache.read().expect("metrics cache");
            if let Some((_, series)) = cache.iter().find(|((r, s), _)| *s == status && r == route) {
                series.requests.inc();
                series.latency.observe(elapsed);
                return;
            }
        }
        // First request of this (route, status): register its series. The list only grows,
        // bounded by routes × statuses.
        let code = status.to_string();
        let labels = [("route", route), ("status", code.as_str())];
        let series = RouteSeries {
            requests: self.metrics.counter(
                "http_requests_total",
                "HTTP requests answered, by route and status.",
                &labels,
            ),
            latency: self.metrics.histogram(
                "http_request_duration_seconds",
                "Time to produce the response head, by route and status.",
                &labels,
            ),
        };
        series.requests.inc();
        series.latency.observe(elapsed);
        let mut cache = self.cache.write().expect("metrics cache");
        if !cache.iter().any(|((r, s), _)| *s == status && r == route) {
            cache.push(((route.to_string(), status), series));
        }
    }
}

/// The one middleware of every request: body limit by Content-Length, metrics, JSON errors.
async fn observe(http: HttpMetrics, req: Request, next: Next) -> Response {
    let start = Instant::now();
    // Unknown paths share one label so a scanner cannot blow up the metric cardinality.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let too_large = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|len| len > BODY_LIMIT as u64);
    let response = if too_large {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {BODY_LIMIT} bytes"),
        )
        .into_response()
    } else {
        next.run(req).await
    };
    let response = json_error_body(response).await;
    http.record(
        route.as_ref().map_or("unmatched", MatchedPath::as_str),
        response.status().as_u16(),
        start.elapsed(),
    );
    response
}

/// Error responses with an empty or plain-text body (axum's own rejections) get the
/// `{"error": ...}` JSON body every client of these services expects. HTML and JSON bodies
/// (a service's own error pages) are left alone.
async fn json_error_body(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(content_type.is_empty() || content_type.starts_with("text/plain")) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() {
        default_message(status)
    } else {
        text
    };
    let body = serde_json::to_vec(&serde_json::json!({ "error": message })).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}
