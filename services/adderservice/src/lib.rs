//! adderservice: `GET /add/{first}/{second}` → `{"result": first + second}` over 64-bit
//! signed integers. Anything that is not such an integer, or a sum that overflows, is a 400
//! with a JSON error saying which operand is wrong and why.

use std::num::IntErrorKind;

use axum::Router;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use micro_common::ApiError;

pub const SERVICE: &str = "adderservice";
pub const DEFAULT_PORT: u16 = 8080;

/// The service's own routes (health, readiness and metrics are added by `micro_common::server`).
pub fn app() -> Router {
    Router::new().route("/add/{first}/{second}", get(add))
}

async fn add(Path((first, second)): Path<(String, String)>) -> Response {
    match sum(&first, &second) {
        // Formatted by hand: the hot path of the service, no serializer needed for one integer.
        Ok(result) => (
            [(header::CONTENT_TYPE, "application/json")],
            format!("{{\"result\":{result}}}"),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

/// `first + second`, or a 400 naming the operand at fault.
pub fn sum(first: &str, second: &str) -> Result<i64, ApiError> {
    let a = operand("first", first)?;
    let b = operand("second", second)?;
    a.checked_add(b).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{a} + {b} overflows a 64-bit integer (range {} to {})",
            i64::MIN,
            i64::MAX
        ))
    })
}

fn operand(which: &str, text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>().map_err(|e| {
        let shown = shorten(text);
        let why = match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => format!(
                "is outside the 64-bit integer range {} to {}",
                i64::MIN,
                i64::MAX
            ),
            IntErrorKind::Empty => "is empty".to_string(),
            _ => "is not an integer".to_string(),
        };
        ApiError::bad_request(format!("{which} operand {shown:?} {why}"))
    })
}

/// At most 40 characters of user input in a message, so a huge path cannot bloat the answer.
fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    if text.chars().count() <= MAX {
        text.to_string()
    } else {
        let head: String = text.chars().take(MAX).collect();
        format!("{head}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_and_reports_the_faulty_operand() {
        assert_eq!(sum("2", "3"), Ok(5));
        assert_eq!(sum("-7", "+2"), Ok(-5));
        assert_eq!(sum(&i64::MAX.to_string(), "0"), Ok(i64::MAX));
        let e = sum("two", "3").unwrap_err();
        assert_eq!(e.message, "first operand \"two\" is not an integer");
        let e = sum("1", "1.5").unwrap_err();
        assert_eq!(e.message, "second operand \"1.5\" is not an integer");
        let e = sum("9223372036854775808", "1").unwrap_err();
        assert!(
            e.message.contains("outside the 64-bit integer range"),
            "{}",
            e.message
        );
        let e = sum(&i64::MAX.to_string(), "1").unwrap_err();
        assert!(e.message.contains("overflows"), "{}", e.message);
        let e = sum(&i64::MIN.to_string(), "-1").unwrap_err();
        assert!(e.message.contains("overflows"), "{}", e.message);
        let e = sum(&"9".repeat(5000), "1").unwrap_err();
        assert!(e.message.len() < 200, "{}", e.message);
    }
}
