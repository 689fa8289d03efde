//! auditservice: records calculations in PostgreSQL (schema `audit`) and lists the latest.
//!
//! - `POST /append` `{"calc": "2+3", "calcResult": 5}` → 201 with the stored row, answered only
//!   after the INSERT has committed (PostgreSQL's default `synchronous_commit=on`: the row is in
//!   the WAL on disk).
//! - `GET /list?limit=N` → `{"list": [{"id", "ts", "calc", "result"}]}`, newest first,
//!   N in 1..=100, default 10.
//!
//! Appends that arrive together are committed together: a few writer tasks each take every
//! append waiting at that moment and store them with one multi-row INSERT (one transaction,
//! one WAL flush), then answer each request. A request still gets its 201 only after its row
//! is committed; under load one disk flush serves many requests instead of one.
//!
//! `POST /append` with an `Idempotency-Key` header is stored once per key: a retry (same key)
//! gets the row the first attempt stored, with `Idempotent-Replayed: true`.
//!
//! Every database call is bounded: PostgreSQL's `statement_timeout` and the client-side
//! `QUERY_TIMEOUT` of micro-common; a database that does not answer is a 503.
//!
//! Errors are `{"error": "..."}`: 400 malformed JSON or bad `limit`, 415 not JSON, 422 wrong
//! shape or types, 413 too large, 503 database unavailable.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use micro_common::idempotency::{KEY_HEADER, MAX_KEY_CHARS, REPLAYED_HEADER};
use micro_common::postgres::{Db, Migration, QUERY_TIMEOUT, within};
use micro_common::{ApiError, CancellationToken, Discovery, Readiness};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub const SERVICE: &str = "auditservice";
pub const DEFAULT_PORT: u16 = 8081;
/// The service's own schema: no other service touches it.
pub const SCHEMA: &str = "audit";

pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "calculations table",
        sql: "CREATE TABLE audit.calculations (
              id bigserial PRIMARY KEY,
              ts timestamptz NOT NULL DEFAULT now(),
              calc text NOT NULL,
              result bigint NOT NULL
          );",
    },
    Migration {
        version: 2,
        name: "idempotency key",
        // NULLs never conflict: appends without a key are always stored.
        sql: "ALTER TABLE audit.calculations ADD COLUMN idempotency_key text UNIQUE;",
    },
];

/// Longest `calc` text accepted (a calculation, not a document).
pub const MAX_CALC_CHARS: usize = 1000;
pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;

/// The two statements, each prepared once per pooled connection (`prepare_cached`): a request
/// then costs one round trip to PostgreSQL, not a parse/plan round trip plus the execution.
/// `ts` is turned into ISO 8601 UTC with microseconds by PostgreSQL, so no date crate is needed.
/// A retried key conflicts and is skipped here; its first row is then read by `EXISTING_SQL`.
const INSERT_SQL: &str = r#"INSERT INTO audit.calculations (calc, result, idempotency_key)
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[])
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), calc, result, idempotency_key"#;
const EXISTING_SQL: &str = r#"SELECT id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), calc, result, idempotency_key
    FROM audit.calculations WHERE idempotency_key = ANY($1::text[])"#;
const LIST_SQL: &str = r#"SELECT id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), calc, result
    FROM audit.calculations ORDER BY id DESC LIMIT $1"#;

/// Starts the database connector (settings from the environment) with readiness check `postgres`.
pub fn start_db(ready: &Readiness, discovery: Discovery, shutdown: CancellationToken) -> Db {
    Db::start(
        ready.register("postgres"),
        discovery,
        SCHEMA,
        MIGRATIONS,
        shutdown,
    )
}

/// Writer tasks storing appends concurrently (each batch waits for its own commit, so while
/// one waits for the disk the next batch is being written).
const WRITERS: usize = 4;
/// Most rows stored by one INSERT.
const MAX_BATCH: usize = 128;

/// What the handlers share: the database and the queue of appends to store.
#[derive(Clone)]
struct AppState {
    db: Db,
    appends: mpsc::Sender<Pending>,
}

/// One append waiting to be stored, and where its answer goes.
struct Pending {
    calc: String,
    result: i64,
    key: Option<String>,
    reply: oneshot::Sender<Result<Stored, ApiError>>,
}

/// A row as the writer found it: newly inserted, or stored before under the same key.
struct Stored {
    row: Calculation,
    replayed: bool,
}

/// The service's own routes (health, readiness and metrics come from `micro_common::server`).
/// Starts the writer tasks, so it must be called inside a Tokio runtime; they stop when the
/// router is dropped.
pub fn app(db: Db) -> Router {
    let (appends, queue) = mpsc::channel(WRITERS * MAX_BATCH);
    let queue = Arc::new(tokio::sync::Mutex::new(queue));
    for _ in 0..WRITERS {
        tokio::spawn(write_batches(db.clone(), queue.clone()));
    }
    Router::new()
        .route("/append", post(append))
        .route("/list", get(list))
        .with_state(AppState { db, appends })
}

/// One writer: takes every waiting append (at least one, at most [`MAX_BATCH`]), stores them
/// in one statement, answers each; until the channel closes.
async fn write_batches(db: Db, queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // The lock is held only while taking the batch; the other writers wait their turn.
        if queue.lock().await.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        match store(&db, &batch).await {
            Ok((fresh, existing)) => answer(&mut batch, fresh, &existing),
            Err(e) => {
                for p in batch.drain(..) {
                    let _ = p.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Answers each append of the batch: a keyless one its own new row (rows of identical keyless
/// appends are interchangeable: the same statement gives them the same ts); a keyed one the
/// one row of its key, new for the first append of that key, a replay for any other.
fn answer(batch: &mut Vec<Pending>, fresh: Vec<Keyed>, existing: &[Keyed]) {
    let mut fresh: Vec<(Keyed, bool)> = fresh.into_iter().map(|r| (r, false)).collect();
    for p in batch.drain(..) {
        let stored = match &p.key {
            None => fresh
                .iter_mut()
                .find(|(r, taken)| {
                    !*taken && r.key.is_none() && r.row.calc == p.calc && r.row.result == p.result
                })
                .map(|(r, taken)| {
                    *taken = true;
                    Stored {
                        row: r.row.clone(),
                        replayed: false,
                    }
                }),
            Some(key) => match fresh.iter_mut().find(|(r, _)| r.key.as_ref() == Some(key)) {
                Some((r, taken)) => {
                    let replayed = std::mem::replace(taken, true);
                    Some(Stored {
                        row: r.row.clone(),
                        replayed,
                    })
                }
                None => existing
                    .iter()
                    .find(|r| r.key.as_ref() == Some(key))
                    .map(|r| Stored {
                        row: r.row.clone(),
                        replayed: true,
                    }),
            },
        };
        let stored = stored
            .ok_or_else(|| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "row not returned"));
        let _ = p.reply.send(stored);
    }
}

/// A stored row with the key it was stored under.
struct Keyed {
    row: Calculation,
    key: Option<String>,
}

impl From<&tokio_postgres::Row> for Keyed {
    fn from(row: &tokio_postgres::Row) -> Self {
        Keyed {
            row: Calculation::from(row),
            key: row.get(4),
        }
    }
}

/// Inserts the batch (keys already stored are skipped) and reads the rows of the skipped
/// keys; all of it within [`QUERY_TIMEOUT`].
async fn store(db: &Db, batch: &[Pending]) -> Result<(Vec<Keyed>, Vec<Keyed>), ApiError> {
    bounded(db, async {
        let client = db.client().await.map_err(unavailable)?;
        let statement = client
            .prepare_cached(INSERT_SQL)
            .await
            .map_err(|e| query_failed(db, e))?;
        let calcs: Vec<&str> = batch.iter().map(|p| p.calc.as_str()).collect();
        let results: Vec<i64> = batch.iter().map(|p| p.result).collect();
        let keys: Vec<Option<&str>> = batch.iter().map(|p| p.key.as_deref()).collect();
        let fresh: Vec<Keyed> = client
            .query(&statement, &[&calcs, &results, &keys])
            .await
            .map_err(|e| query_failed(db, e))?
            .iter()
            .map(Keyed::from)
            .collect();
        let skipped: Vec<&str> = batch
            .iter()
            .filter_map(|p| p.key.as_deref())
            .filter(|k| !fresh.iter().any(|r| r.key.as_deref() == Some(*k)))
            .collect();
        if skipped.is_empty() {
            return Ok((fresh, Vec::new()));
        }
        let select = client
            .prepare_cached(EXISTING_SQL)
            .await
            .map_err(|e| query_failed(db, e))?;
        let existing = client
            .query(&select, &[&skipped])
            .await
            .map_err(|e| query_failed(db, e))?
            .iter()
            .map(Keyed::from)
            .collect();
        Ok((fresh, existing))
    })
    .await
}

/// `call` within [`QUERY_TIMEOUT`]; a database that does not answer in time is a 503 and
/// marks the service not ready until the health check sees it answer again.
async fn bounded<T>(
    db: &Db,
    call: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    within(QUERY_TIMEOUT, call)
        .await
        .unwrap_or_else(|timed_out| {
            tracing::warn!(error = %timed_out, "database call timed out");
            db.mark_unreachable();
            Err(ApiError::unavailable(format!(
                "database unavailable: {timed_out}"
            )))
        })
}

#[derive(Debug, Deserialize)]
struct AppendRequest {
    calc: String,
    #[serde(rename = "calcResult")]
    calc_result: i64,
}

/// One stored calculation, as `/append` returns it and `/list` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Calculation {
    pub id: i64,
    pub ts: String,
    pub calc: String,
    pub result: i64,
}

impl From<&tokio_postgres::Row> for Calculation {
    fn from(row: &tokio_postgres::Row) -> Self {
        Calculation {
            id: row.get(0),
            ts: row.get(1),
            calc: row.get(2),
            result: row.get(3),
        }
    }
}

async fn append(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<AppendRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let Json(req) = body?;
    let calc = req.calc.trim();
    if calc.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "calc must not be empty",
        ));
    }
    // PostgreSQL text cannot hold NUL; caught here, it would fail the whole batch.
    if calc.contains('\0') {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "calc must not contain NUL characters",
        ));
    }
    if calc.chars().count() > MAX_CALC_CHARS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("calc is longer than {MAX_CALC_CHARS} characters"),
        ));
    }
    let (reply, answer) = oneshot::channel();
    let pending = Pending {
        calc: calc.to_string(),
        result: req.calc_result,
        key,
        reply,
    };
    let stopped = || ApiError::unavailable("the service is stopping");
    state.appends.send(pending).await.map_err(|_| stopped())?;
    // A writer drops a reply only if it panicked (debug builds; release aborts).
    let stored = answer.await.map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the append writer failed",
        )
    })??;
    // A retry gets the answer the first attempt got, marked as a replay.
    let mut response = (StatusCode::CREATED, Json(stored.row)).into_response();
    if stored.replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The optional `Idempotency-Key` header: 1 to [`MAX_KEY_CHARS`] visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(KEY_HEADER) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(format!(
            "header Idempotency-Key must be 1 to {MAX_KEY_CHARS} visible ASCII characters"
        ))
    };
    let key = value.to_str().map_err(|_| bad())?;
    if key.is_empty() || key.len() > MAX_KEY_CHARS || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(key.to_string()))
}

#[derive(Debug, Deserialize)]
struct ListParams {
    limit: Option<String>,
}

#[derive(Debug, Serialize)]
struct ListResponse {
    list: Vec<Calculation>,
}

async fn list(
    State(AppState { db, .. }): State<AppState>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListResponse>, ApiError> {
    let Query(params) = params?;
    let limit = parse_limit(params.limit.as_deref())?;
    let list = bounded(&db, async {
        let client = db.client().await.map_err(unavailable)?;
        let select = client
            .prepare_cached(LIST_SQL)
            .await
            .map_err(|e| query_failed(&db, e))?;
        let rows = client
            .query(&select, &[&limit])
            .await
            .map_err(|e| query_failed(&db, e))?;
        Ok(rows.iter().map(Calculation::from).collect())
    })
    .await?;
    Ok(Json(ListResponse { list }))
}

/// `limit` from the query string: absent → 10, else an integer in 1..=100.
pub fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => {
            let shown: String = raw.chars().take(40).collect();
            Err(ApiError::bad_request(format!(
                "limit must be an integer from 1 to {MAX_LIMIT}, got {shown:?}"
            )))
        }
    }
}

fn unavailable(e: anyhow::Error) -> ApiError {
    ApiError::unavailable(format!("{e:#}"))
}

/// A query error from the server itself is our bug (500); anything else means the
/// connection is gone (503, and not ready until the health check sees it back).
fn query_failed(db: &Db, e: tokio_postgres::Error) -> ApiError {
    match e.as_db_error() {
        // statement_timeout: the database is too slow right now, not our bug.
        Some(db_error) if *db_error.code() == tokio_postgres::error::SqlState::QUERY_CANCELED => {
            tracing::warn!(error = %db_error, "statement timed out");
            ApiError::unavailable(format!("database too slow: {}", db_error.message()))
        }
        Some(db_error) => {
            tracing::error!(error = %db_error, "query failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "database query failed")
        }
        None => {
            tracing::warn!(error = %e, "database connection lost");
            db.mark_unreachable();
            ApiError::unavailable(format!("database unavailable: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_to_10_and_accepts_1_to_100() {
        assert_eq!(parse_limit(None), Ok(10));
        assert_eq!(parse_limit(Some("1")), Ok(1));
        assert_eq!(parse_limit(Some("100")), Ok(100));
        for bad in ["0", "101", "-1", "ten", "", "1.5", "99999999999999999999"] {
            let e = parse_limit(Some(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.message.contains("from 1 to 100"), "{bad}: {}", e.message);
        }
    }
}
