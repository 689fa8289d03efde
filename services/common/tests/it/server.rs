//! The shared HTTP layer over real loopback connections: graceful shutdown, readiness,
//! metrics, the body limit and JSON error bodies.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::{get, post};
use micro_common::testkit::FreshConnections;
use micro_common::{ApiError, CancellationToken, Metrics, Readiness, server};
use serde_json::{Value, json};

async fn start(
    app: Router,
    ready: Readiness,
    metrics: Metrics,
) -> (
    String,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let token = CancellationToken::new();
    let handle = tokio::spawn(server::serve_on(
        listener,
        server::router(app, ready, metrics),
        token.clone(),
    ));
    (base, token, handle)
}

async fn get_json(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_then_stops() {
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            "finished"
        }),
    );
    let (base, token, handle) = start(app, Readiness::new(), Metrics::new()).await;
    let in_flight = tokio::spawn({
        let url = format!("{base}/slow");
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    token.cancel();
    assert_eq!(in_flight.await.unwrap(), "finished");
    handle.await.unwrap().unwrap();
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "no new connections after shutdown"
    );
}

#[tokio::test]
async fn readyz_names_what_is_not_ready() {
    let ready = Readiness::new();
    let db = ready.register("postgres");
    let queue = ready.register("redis");
    let (base, _token, _h) = start(Router::new(), ready, Metrics::new()).await;
    let url = format!("{base}/readyz");

    let (status, body) = get_json(&url).await;
    assert_eq!(status, 503);
    assert_eq!(body["notReady"], json!(["postgres", "redis"]));
    assert_eq!(body["error"], "not ready: postgres, redis");
    db.set(true);
    let (status, body) = get_json(&url).await;
    assert_eq!((status, body["notReady"].clone()), (503, json!(["redis"])));
    queue.set(true);
    assert_eq!(get_json(&url).await, (200, json!({"ready": true})));
    // Liveness does not depend on readiness.
    queue.set(false);
    assert_eq!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn metrics_show_request_counts_and_service_metrics() {
    let metrics = Metrics::new();
    let dropped = metrics.counter("events_dropped_total", "Events not queued.", &[]);
    dropped.add(3);
    let app = Router::new().route("/thing/{id}", get(|| async { "ok" }));
    let (base, _token, _h) = start(app, Readiness::new(), metrics).await;
    for id in 1..=3 {
        reqwest::get(format!("{base}/thing/{id}")).await.unwrap();
    }
    let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text().await.unwrap();
    assert!(text.contains("events_dropped_total 3\n"), "{text}");
    // One series per route pattern, not per concrete path.
    assert!(
        text.contains("http_requests_total{route=\"/thing/{id}\",status=\"200\"} 3\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE http_request_duration_seconds histogram"),
        "{text}"
    );
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_json() {
    let app = Router::new().route("/echo", post(|b: Bytes| async move { b.len().to_string() }));
    let (base, _token, _h) = start(app, Readiness::new(), Metrics::new()).await;
    let http = reqwest::Client::new();
    let ok = http
        .post(format!("{base}/echo"))
        .body(vec![b'x'; server::BODY_LIMIT])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), server::BODY_LIMIT.to_string());

    let big = vec![b'x'; server::BODY_LIMIT + 1];
    let r = http
        .post(format!("{base}/echo"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());

    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let r = http
        .post(format!("{base}/echo"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "chunked bodies are limited too");
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
}

#[tokio::test]
async fn plain_errors_become_json_but_html_and_json_are_kept() {
    let app = Router::new()
        .route(
            "/plain",
            get(|| async { (StatusCode::BAD_GATEWAY, "upstream broke") }),
        )
        .route(
            "/html",
            get(|| async { (StatusCode::BAD_REQUEST, Html("<p>bad</p>")) }),
        )
        .route(
            "/api",
            get(|| async { ApiError::new(StatusCode::CONFLICT, "taken") }),
        )
        .route("/fine", get(|| async { "plain success stays plain" }));
    let (base, _token, _h) = start(app, Readiness::new(), Metrics::new()).await;
    assert_eq!(
        get_json(&format!("{base}/plain")).await,
        (502, json!({"error": "upstream broke"}))
    );
    assert_eq!(
        get_json(&format!("{base}/api")).await,
        (409, json!({"error": "taken"}))
    );
    assert_eq!(
        get_json(&format!("{base}/missing")).await,
        (404, json!({"error": "no such route"}))
    );
    let r = reqwest::get(format!("{base}/html")).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), "<p>bad</p>");
    let r = reqwest::get(format!("{base}/fine")).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "plain success stays plain");
}

/// SIGTERM during load: readiness answers 503 first while every request (each on a new
/// connection, so the listener must still accept) is served for the drain delay; then the
/// server stops.
#[tokio::test]
async fn on_shutdown_readiness_goes_503_first_and_requests_are_served_through_the_drain() {
    // Long enough that the load below (well under a second) ends inside it.
    const DRAIN: Duration = Duration::from_secs(5);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let ready = Readiness::new();
    let sigterm = CancellationToken::new();
    let stop_accepting = server::drain_on(sigterm.clone(), &ready, DRAIN);
    let app = Router::new().route("/work", get(|| async { "done" }));
    let served = tokio::spawn(server::serve_on(
        listener,
        server::router(app, ready, Metrics::new()),
        stop_accepting,
    ));
    let client = FreshConnections::new(&base);
    assert_eq!(client.status("/readyz").await, Ok(200));

    client
        .assert_served_through_drain("/work", || sigterm.cancel(), Duration::from_millis(300))
        .await;

    // After the drain the listener closes and the server returns.
    served.await.unwrap().unwrap();
    assert!(
        client.status("/work").await.is_err(),
        "stopped accepting after the drain"
    );
}
