//! Calls to adderservice and auditservice, found through discovery, over one
//! shared keep-alive HTTP client. Every call runs under the page's [`Deadline`],
//! discovery (a DNS lookup) included: a slow dependency or a silent DNS server
//! turns into an error page when the deadline passes, not a hung browser.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use micro_common::discovery::Discovery;
use micro_common::idempotency;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const ADDER: &str = "adderservice";
pub const AUDIT: &str = "auditservice";

/// How long one page may spend on its dependencies, discovery and every call together.
pub const PAGE_DEADLINE: Duration = Duration::from_secs(3);

/// The instant by which a page's dependency work must be done.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

impl Deadline {
    /// [`PAGE_DEADLINE`] from now.
    pub fn for_page() -> Self {
        Self(Instant::now() + PAGE_DEADLINE)
    }

    pub fn is_past(&self) -> bool {
        Instant::now() >= self.0
    }

    /// `call` (discovery plus request), or [`CallError::TimedOut`] naming `service`.
    async fn bound<T>(
        &self,
        service: &str,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, CallError> {
        tokio::time::timeout_at(self.0, call)
            .await
            .unwrap_or_else(|_| {
                Err(CallError::TimedOut(format!(
                    "{service} did not answer within {PAGE_DEADLINE:?}"
                )))
            })
    }
}

/// Why a dependency call failed, in words a user can read.
#[derive(Debug)]
pub enum CallError {
    /// The dependency cannot be found (503).
    NotFound(String),
    /// Found but it did not answer properly (502).
    Unavailable(String),
    /// It answered that the input is wrong (400).
    Rejected(String),
    /// The page's deadline passed first (504).
    TimedOut(String),
}

impl CallError {
    pub fn message(&self) -> &str {
        match self {
            Self::NotFound(m) | Self::Unavailable(m) | Self::Rejected(m) | Self::TimedOut(m) => m,
        }
    }
}

#[derive(Clone)]
pub struct Backends {
    http: reqwest::Client,
    discovery: Discovery,
}

/// One entry of auditservice's `GET /list`.
#[derive(Debug, Deserialize)]
pub struct AuditEntry {
    #[serde(default)]
    pub ts: Value,
    #[serde(default)]
    pub calc: Value,
    #[serde(default)]
    pub result: Value,
}

#[derive(Deserialize)]
struct AuditList {
    list: Vec<AuditEntry>,
}

/// auditservice's `POST /append` body, serialized straight from borrowed fields.
#[derive(Serialize)]
struct AppendBody<'a> {
    calc: &'a str,
    #[serde(rename = "calcResult")]
    calc_result: i64,
}

#[derive(Deserialize)]
struct AddResult {
    result: i64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

impl Backends {
    pub fn new(discovery: Discovery) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // The page's Deadline bounds each call; this only fails a dead address fast.
            .connect_timeout(Duration::from_millis(500))
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(128)
            .tcp_nodelay(true)
            .build()?;
        Ok(Self { http, discovery })
    }

    async fn base(&self, service: &str) -> Result<String, CallError> {
        self.discovery
            .base_url(service)
            .await
            .map_err(|e| CallError::NotFound(format!("{service} is not available: {e:#}")))
    }

    /// A transport failure: forget the cached address so the next call looks again.
    fn unreachable(&self, service: &str, e: reqwest::Error) -> CallError {
        self.discovery.forget(service);
        CallError::Unavailable(format!("{service} is not reachable: {}", without_url(&e)))
    }

    /// `first + second` by adderservice, by `deadline`.
    pub async fn add(&self, first: i64, second: i64, deadline: Deadline) -> Result<i64, CallError> {
        deadline.bound(ADDER, self.add_now(first, second)).await
    }

    async fn add_now(&self, first: i64, second: i64) -> Result<i64, CallError> {
        let url = format!("{}/add/{first}/{second}", self.base(ADDER).await?);
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.unreachable(ADDER, e))?;
        let status = resp.status();
        if status.is_success() {
            let body: AddResult = resp.json().await.map_err(|e| {
                CallError::Unavailable(format!("{ADDER} answered nonsense: {}", without_url(&e)))
            })?;
            Ok(body.result)
        } else if status.is_client_error() {
            let why = error_message(resp).await;
            Err(CallError::Rejected(why))
        } else {
            Err(CallError::Unavailable(format!(
                "{ADDER} failed: {}",
                error_message(resp).await
            )))
        }
    }

    /// Records a calculation in auditservice (201 once committed), by `deadline`. `key`
    /// names this calculation: a failed attempt is retried once with the same key, so
    /// auditservice stores it once even if the first attempt did commit.
    pub async fn append(
        &self,
        calc: &str,
        result: i64,
        key: &str,
        deadline: Deadline,
    ) -> Result<(), CallError> {
        deadline
            .bound(AUDIT, async {
                match self.append_now(calc, result, key).await {
                    Err(CallError::Unavailable(why)) if !deadline.is_past() => {
                        tracing::info!(error = why, "append failed; retrying with the same key");
                        self.append_now(calc, result, key).await
                    }
                    other => other,
                }
            })
            .await
    }

    async fn append_now(&self, calc: &str, result: i64, key: &str) -> Result<(), CallError> {
        let url = format!("{}/append", self.base(AUDIT).await?);
        let resp = self
            .http
            .post(url)
            .header(idempotency::KEY_HEADER, key)
            .json(&AppendBody {
                calc,
                calc_result: result,
            })
            .send()
            .await
            .map_err(|e| self.unreachable(AUDIT, e))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(CallError::Unavailable(format!(
                "{AUDIT} failed: {}",
                error_message(resp).await
            )))
        }
    }

    /// The latest calculations, newest first, by `deadline`.
    pub async fn list(&self, deadline: Deadline) -> Result<Vec<AuditEntry>, CallError> {
        deadline.bound(AUDIT, self.list_now()).await
    }

    async fn list_now(&self) -> Result<Vec<AuditEntry>, CallError> {
        let url = format!("{}/list", self.base(AUDIT).await?);
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.unreachable(AUDIT, e))?;
        if !resp.status().is_success() {
            return Err(CallError::Unavailable(format!(
                "{AUDIT} failed: {}",
                error_message(resp).await
            )));
        }
        let body: AuditList = resp.json().await.map_err(|e| {
            CallError::Unavailable(format!("{AUDIT} answered nonsense: {}", without_url(&e)))
        })?;
        Ok(body.list)
    }
}

/// The `error` field of a JSON error body, else the status line.
async fn error_message(resp: reqwest::Response) -> String {
    let status = resp.status();
    match resp.json::<ErrorBody>().await {
        Ok(body) => body.error,
        Err(_) => format!("HTTP {status}"),
    }
}

/// reqwest errors name the URL (an internal address); users get the cause only.
fn without_url(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_decode() {
        "unreadable answer".to_string()
    } else {
        "request failed".to_string()
    };
    if let Some(source) = std::error::Error::source(e) {
        msg.push_str(&format!(" ({source})"));
    }
    msg
}

/// A JSON value as table text: strings without quotes.
pub fn display(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}
