//! The HTTP side: the page, its script and stylesheet, `/api/state`,
//! `/events`, `/healthz`. Read-only: every route is a GET. The security
//! headers are one layer over every response.

use super::hub::Hub;
use super::{html, sse};
use crate::cli::Format;
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// Scripts, styles and connections from this origin only; no inline script,
/// no frames, no forms, no plugins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
                       frame-ancestors 'none'";

/// The Host names a loopback dashboard answers to: a page elsewhere that
/// points its own name at 127.0.0.1 (DNS rebinding) must not read the
/// cluster's state. `None` (a non-loopback listen address): any host.
pub fn allowed_hosts(listen: std::net::SocketAddr) -> Option<Arc<Vec<String>>> {
    if !listen.ip().is_loopback() {
        return None;
    }
    let port = listen.port();
    Some(Arc::new(vec![
        listen.to_string(),
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ]))
}

pub fn router(hub: Arc<Hub>, hosts: Option<Arc<Vec<String>>>) -> Router {
    Router::new()
        .route("/", get(page))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route("/app.css", get(|| asset("text/css; charset=utf-8", STYLE)))
        .route("/api/state", get(state))
        .route("/events", get(sse::events))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let hosts = hosts.clone();
            async move {
                let host = request
                    .headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default();
                if hosts
                    .as_ref()
                    .is_some_and(|allowed| !allowed.iter().any(|a| a == host))
                {
                    return (StatusCode::MISDIRECTED_REQUEST, "unexpected Host header\n")
                        .into_response();
                }
                next.run(request).await
            }
        }))
        .layer(middleware::from_fn(security_headers))
        .with_state(hub)
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn page(State(hub): State<Arc<Hub>>) -> Response {
    let body = html::page(&hub.snapshot());
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

#[derive(serde::Deserialize)]
struct StateQuery {
    output: Option<String>,
}

/// `/api/state` (JSON) or `/api/state?output=json|yaml`: the snapshot.
async fn state(State(hub): State<Arc<Hub>>, Query(query): Query<StateQuery>) -> Response {
    use clap::ValueEnum as _;
    let format = match query.output.as_deref() {
        None => Format::Json,
        Some(text) => match Format::from_str(text, true) {
            Ok(Format::Text) | Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    format!("output must be json or yaml, not `{text}`\n"),
                )
                    .into_response();
            }
            Ok(format) => format,
        },
    };
    let snapshot = hub.snapshot();
    let (content_type, body) = match format {
        Format::Yaml => (
            "application/yaml",
            serde_yaml::to_string(&snapshot).map_err(|e| e.to_string()),
        ),
        _ => (
            "application/json",
            serde_json::to_string_pretty(&snapshot).map_err(|e| e.to_string()),
        ),
    };
    match body {
        Ok(body) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
    }
}
