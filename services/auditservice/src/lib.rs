//! auditservice: records calculations in PostgreSQL (schema `audit`) and lists the latest.
//!
//! - `POST /append` `{"calc": "2+3", "calcResult": 5}` → 201 with the stored row, answered only
//!   after the INSERT has committed (PostgreSQL's default `synchronous_commit=on`: the row is in
//!   the WAL on disk).
//! - `GET /list?limit=N` → `{"list": [{"id", "ts", "calc", "result"}]}`, newest first,
//!   N in 1..=100, default 10.
//!
//! Errors are `{"error": "..."}`: 400 malformed JSON or bad `limit`, 415 not JSON, 422 wrong
//! shape or types, 413 too large, 503 database unavailable.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use micro_common::postgres::{Db, Migration};
use micro_common::{ApiError, CancellationToken, Discovery, Readiness};
use serde::{Deserialize, Serialize};

pub const SERVICE: &str = "auditservice";
pub const DEFAULT_PORT: u16 = 8081;
/// The service's own schema: no other service touches it.
pub const SCHEMA: &str = "audit";

pub static MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "calculations table",
    sql: "CREATE TABLE audit.calculations (
              id bigserial PRIMARY KEY,
              ts timestamptz NOT NULL DEFAULT now(),
              calc text NOT NULL,
              result bigint NOT NULL
          );",
}];

/// Longest `calc` text accepted (a calculation, not a document).
pub const MAX_CALC_CHARS: usize = 1000;
pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;

/// ISO 8601 UTC with microseconds, done by PostgreSQL so no date crate is needed.
const TS_TEXT: &str = r#"to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#;

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

/// The service's own routes (health, readiness and metrics come from `micro_common::server`).
pub fn app(db: Db) -> Router {
    Router::new()
        .route("/append", post(append))
        .route("/list", get(list))
        .with_state(db)
}

#[derive(Debug, Deserialize)]
struct AppendRequest {
    calc: String,
    #[serde(rename = "calcResult")]
    calc_result: i64,
}

/// One stored calculation, as `/append` returns it and `/list` lists it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
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
    State(db): State<Db>,
    body: Result<Json<AppendRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Calculation>), ApiError> {
    let Json(req) = body?;
    let calc = req.calc.trim();
    if calc.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "calc must not be empty",
        ));
    }
    if calc.chars().count() > MAX_CALC_CHARS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("calc is longer than {MAX_CALC_CHARS} characters"),
        ));
    }
    let client = db.client().await.map_err(unavailable)?;
    let sql = format!(
        "INSERT INTO audit.calculations (calc, result) VALUES ($1, $2)
         RETURNING id, {TS_TEXT}, calc, result"
    );
    let row = client
        .query_one(&sql, &[&calc, &req.calc_result])
        .await
        .map_err(|e| query_failed(&db, e))?;
    Ok((StatusCode::CREATED, Json(Calculation::from(&row))))
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
    State(db): State<Db>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ListResponse>, ApiError> {
    let Query(params) = params?;
    let limit = parse_limit(params.limit.as_deref())?;
    let client = db.client().await.map_err(unavailable)?;
    let sql = format!(
        "SELECT id, {TS_TEXT}, calc, result FROM audit.calculations ORDER BY id DESC LIMIT $1"
    );
    let rows = client
        .query(&sql, &[&limit])
        .await
        .map_err(|e| query_failed(&db, e))?;
    Ok(Json(ListResponse {
        list: rows.iter().map(Calculation::from).collect(),
    }))
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
