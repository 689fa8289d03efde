//! The pages: `/` → `/add`, the form, the calculation, the audit list.

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::backends::{Backends, CallError, Deadline, display};
use crate::events::PageEvents;
use crate::html;

#[derive(Clone)]
pub struct AppState {
    pub backends: Backends,
    pub events: PageEvents,
}

/// The webapp's own routes, each request recorded as a page event.
/// (The health/metrics routes are added outside, unrecorded.)
pub fn routes(state: AppState) -> Router {
    let events = state.events.clone();
    Router::new()
        .route("/", get(|| async { Redirect::to("/add") }))
        .route("/add", get(|| async { Html(html::add_form()) }))
        // A reload or bookmark of the result page arrives as GET: back to the form.
        .route(
            "/add/calculate",
            post(calculate).get(|| async { Redirect::to("/add") }),
        )
        .route("/audit", get(audit))
        .with_state(state)
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            events.record(req.uri().path());
            next.run(req)
        }))
}

#[derive(Deserialize)]
pub struct CalcForm {
    first: Option<String>,
    second: Option<String>,
}

fn page(status: StatusCode, body: String) -> Response {
    (status, Html(body)).into_response()
}

fn status_of(e: &CallError) -> StatusCode {
    match e {
        CallError::NotFound(_) => StatusCode::SERVICE_UNAVAILABLE,
        CallError::Unavailable(_) => StatusCode::BAD_GATEWAY,
        CallError::Rejected(_) => StatusCode::BAD_REQUEST,
        CallError::TimedOut(_) => StatusCode::GATEWAY_TIMEOUT,
    }
}

/// Parses one form field as an integer, with a message naming the field.
fn operand(label: &str, value: &str) -> Result<i64, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(format!("{label} is empty: enter an integer."));
    }
    trimmed.parse().map_err(|_| {
        let shown: String = trimmed.chars().take(40).collect();
        format!("{label} is not an integer: \u{201c}{shown}\u{201d}.")
    })
}

async fn calculate(
    State(state): State<AppState>,
    form: Result<Form<CalcForm>, FormRejection>,
) -> Response {
    let Ok(Form(input)) = form else {
        return page(
            StatusCode::BAD_REQUEST,
            html::add_error("Send the form with the fields first and second.", "", ""),
        );
    };
    let first_raw = input.first.unwrap_or_default();
    let second_raw = input.second.unwrap_or_default();
    let (first, second) = match (operand("First", &first_raw), operand("Second", &second_raw)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            return page(
                StatusCode::BAD_REQUEST,
                html::add_error(&e, &first_raw, &second_raw),
            );
        }
    };
    // One deadline for the whole page: the sum and its audit record together.
    let deadline = Deadline::for_page();
    let result = match state.backends.add(first, second, deadline).await {
        Ok(r) => r,
        Err(e) => {
            let message = match &e {
                CallError::Rejected(why) => format!("Cannot add these numbers: {why}."),
                other => format!(
                    "The calculation is unavailable right now: {}.",
                    other.message()
                ),
            };
            return page(
                status_of(&e),
                html::add_error(&message, &first_raw, &second_raw),
            );
        }
    };
    let key = micro_common::idempotency::new_key();
    match state
        .backends
        .append(&format!("{first}+{second}"), result, &key, deadline)
        .await
    {
        Ok(()) => page(
            StatusCode::OK,
            html::add_result(first, second, result, None),
        ),
        Err(e) => {
            tracing::warn!(error = e.message(), "calculation not recorded");
            let warning = format!(
                "This calculation was not recorded in the audit log: {}.",
                e.message()
            );
            page(
                status_of(&e),
                html::add_result(first, second, result, Some(&warning)),
            )
        }
    }
}

async fn audit(State(state): State<AppState>) -> Response {
    match state.backends.list(Deadline::for_page()).await {
        Ok(entries) => {
            let cells: Vec<[String; 3]> = entries
                .iter()
                .map(|e| [display(&e.ts), display(&e.calc), display(&e.result)])
                .collect();
            let rows: Vec<html::AuditRow<'_>> = cells
                .iter()
                .map(|[ts, calc, result]| html::AuditRow { ts, calc, result })
                .collect();
            page(StatusCode::OK, html::audit(&rows))
        }
        Err(e) => page(
            status_of(&e),
            html::audit_error(&format!(
                "The audit log is unavailable right now: {}.",
                e.message()
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operands_must_be_integers() {
        assert_eq!(operand("First", " 42 "), Ok(42));
        assert_eq!(operand("First", "-7"), Ok(-7));
        assert!(operand("First", "").unwrap_err().contains("empty"));
        assert!(
            operand("Second", "two")
                .unwrap_err()
                .contains("Second is not an integer")
        );
        assert!(operand("First", "99999999999999999999").is_err());
        assert!(operand("First", "1.5").is_err());
    }
}
