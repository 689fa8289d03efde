//! adderservice over real HTTP on a free loopback port, with the shared server layer
//! (health, readiness, metrics, JSON errors) exactly as the binary runs it.

use micro_common::{CancellationToken, Metrics, Readiness, server};
use serde_json::{Value, json};

struct Running {
    base: String,
    client: reqwest::Client,
    _stop: tokio_util_drop::StopOnDrop,
}

mod tokio_util_drop {
    /// Cancels the server when the test ends.
    pub struct StopOnDrop(pub micro_common::CancellationToken);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
}

async fn start() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let router = server::router(adderservice::app(), Readiness::new(), Metrics::new());
    tokio::spawn(server::serve_on(listener, router, shutdown.clone()));
    Running {
        base,
        client: reqwest::Client::new(),
        _stop: tokio_util_drop::StopOnDrop(shutdown),
    }
}

impl Running {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let is_json = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
        let text = r.text().await.unwrap();
        let body = if is_json {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: bad JSON {text:?}: {e}"))
        } else {
            Value::String(text)
        };
        (status, body)
    }

    async fn error(&self, path: &str) -> (u16, String) {
        let (status, body) = self.get(path).await;
        let message = body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{path}: no JSON error in {body}"))
            .to_string();
        (status, message)
    }
}

#[tokio::test]
async fn adds_integers() {
    let s = start().await;
    assert_eq!(s.get("/add/2/3").await, (200, json!({"result": 5})));
    assert_eq!(s.get("/add/-10/3").await, (200, json!({"result": -7})));
    assert_eq!(s.get("/add/0/0").await, (200, json!({"result": 0})));
    assert_eq!(
        s.get("/add/9223372036854775806/1").await,
        (200, json!({"result": i64::MAX}))
    );
    assert_eq!(
        s.get("/add/-9223372036854775807/-1").await,
        (200, json!({"result": i64::MIN}))
    );
}

#[tokio::test]
async fn rejects_non_integers_with_a_json_error() {
    let s = start().await;
    for (path, fragment) in [
        ("/add/two/3", "first operand \"two\" is not an integer"),
        ("/add/2/three", "second operand \"three\" is not an integer"),
        ("/add/1.5/1", "first operand \"1.5\" is not an integer"),
        ("/add/1e3/1", "is not an integer"),
        ("/add/%20/1", "first operand \" \" is not an integer"),
        ("/add/0x10/1", "is not an integer"),
        ("/add/%3Cb%3E/1", "first operand \"<b>\" is not an integer"),
    ] {
        let (status, message) = s.error(path).await;
        assert_eq!(status, 400, "{path}");
        assert!(message.contains(fragment), "{path}: {message}");
    }
}

#[tokio::test]
async fn rejects_overflow_both_ways() {
    let s = start().await;
    let (status, message) = s.error("/add/9223372036854775807/1").await;
    assert_eq!(status, 400);
    assert!(message.contains("overflows a 64-bit integer"), "{message}");
    let (status, message) = s.error("/add/-9223372036854775808/-1").await;
    assert_eq!(status, 400);
    assert!(message.contains("overflows a 64-bit integer"), "{message}");
    let (status, message) = s.error("/add/9223372036854775808/0").await;
    assert_eq!(status, 400);
    assert!(
        message.contains("outside the 64-bit integer range"),
        "{message}"
    );
    let (status, message) = s.error("/add/0/-9223372036854775809").await;
    assert_eq!(status, 400);
    assert!(message.contains("second operand"), "{message}");
}

#[tokio::test]
async fn huge_operands_get_a_short_error() {
    let s = start().await;
    let huge = "9".repeat(4000);
    let (status, message) = s.error(&format!("/add/{huge}/1")).await;
    assert_eq!(status, 400);
    assert!(
        message.contains("outside the 64-bit integer range"),
        "{message}"
    );
    assert!(
        message.len() < 200,
        "message echoes the whole input: {} bytes",
        message.len()
    );
}

#[tokio::test]
async fn missing_segments_and_unknown_routes_are_json_404() {
    let s = start().await;
    for path in ["/add/1", "/add", "/add/1/2/3", "/nope"] {
        let (status, message) = s.error(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!message.is_empty(), "{path}");
    }
    let r = s
        .client
        .post(format!("{}/add/1/2", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let s = start().await;
    assert_eq!(s.get("/healthz").await.0, 200);
    let (status, body) = s.get("/readyz").await;
    assert_eq!((status, body), (200, json!({"ready": true})));

    s.get("/add/1/2").await;
    s.get("/add/1/2").await;
    s.get("/add/x/2").await;
    s.get("/nope").await;
    let (status, body) = s.get("/metrics").await;
    assert_eq!(status, 200);
    let text = body.as_str().unwrap();
    assert!(
        text.contains("http_requests_total{route=\"/add/{first}/{second}\",status=\"200\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("http_requests_total{route=\"/add/{first}/{second}\",status=\"400\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("http_requests_total{route=\"unmatched\",status=\"404\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_count{route=\"/add/{first}/{second}\",status=\"200\"} 2\n"),
        "{text}"
    );
}
