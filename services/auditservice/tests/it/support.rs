//! Shared by the auditservice tests: the service in-process on a free port, on its own
//! fresh database of the test PostgreSQL (`MICRO_TEST_PG_URL`).

#![allow(dead_code)]

use std::time::Duration;

use micro_common::postgres::Db;
use micro_common::{CancellationToken, Metrics, Readiness, server, testkit};
use serde_json::Value;

pub struct Service {
    pub base: String,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// auditservice in this process, connected to `database_url` (not waiting for readiness).
pub async fn start_with(database_url: &str) -> Service {
    let shutdown = CancellationToken::new();
    let ready = Readiness::new();
    let db = Db::start_with_url(
        ready.register("postgres"),
        database_url,
        auditservice::SCHEMA,
        auditservice::MIGRATIONS,
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = server::router(auditservice::app(db), ready, Metrics::new());
    tokio::spawn(server::serve_on(listener, router, shutdown.clone()));
    Service {
        base,
        http: reqwest::Client::new(),
        shutdown,
    }
}

/// auditservice on a fresh database, ready.
pub async fn start() -> Service {
    let url = testkit::fresh_database().await;
    let s = start_with(&url).await;
    s.wait_ready().await;
    s
}

impl Service {
    pub async fn wait_ready(&self) {
        testkit::wait_for_status(
            &format!("{}/readyz", self.base),
            200,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        decode(r).await
    }

    pub async fn post_json(&self, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/append", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        decode(r).await
    }

    pub async fn post_raw(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/append", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        decode(r).await
    }
}

/// Status and JSON body; every answer of this service is JSON.
pub async fn decode(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"));
    (status, body)
}

/// The `error` message of a JSON error body.
pub fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no \"error\" string in {body}"))
}
