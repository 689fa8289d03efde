//! POST /append and GET /list against a real PostgreSQL: happy paths, ordering, limits and
//! every kind of bad input.

use crate::support;

use serde_json::{Value, json};
use support::{error_of, start};

#[tokio::test]
async fn append_returns_the_stored_row_and_list_shows_it() {
    let s = start().await;
    let (status, row) = s.post_json(&json!({"calc": "2+3", "calcResult": 5})).await;
    assert_eq!(status, 201, "{row}");
    assert_eq!(row["calc"], "2+3");
    assert_eq!(row["result"], 5);
    assert!(row["id"].as_i64().unwrap() > 0);
    let ts = row["ts"].as_str().unwrap();
    // ISO 8601 UTC: 2026-01-01T12:00:00.123456Z
    assert_eq!(ts.len(), 27, "{ts}");
    assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");

    let (status, body) = s.get("/list").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"list": [row]}));
}

#[tokio::test]
async fn list_is_newest_first_10_by_default_and_honours_limit() {
    let s = start().await;
    for i in 0..15i64 {
        let (status, _) = s
            .post_json(&json!({"calc": format!("{i}+0"), "calcResult": i}))
            .await;
        assert_eq!(status, 201);
    }
    let results = |body: &serde_json::Value| -> Vec<i64> {
        body["list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["result"].as_i64().unwrap())
            .collect()
    };
    let (_, body) = s.get("/list").await;
    assert_eq!(results(&body), (5..15).rev().collect::<Vec<_>>());
    let (_, body) = s.get("/list?limit=3").await;
    assert_eq!(results(&body), vec![14, 13, 12]);
    let (_, body) = s.get("/list?limit=1").await;
    assert_eq!(results(&body), vec![14]);
    let (_, body) = s.get("/list?limit=100").await;
    assert_eq!(results(&body), (0..15).rev().collect::<Vec<_>>());
}

#[tokio::test]
async fn empty_list_is_an_empty_array() {
    let s = start().await;
    assert_eq!(s.get("/list").await, (200, json!({"list": []})));
}

#[tokio::test]
async fn limit_out_of_bounds_is_400() {
    let s = start().await;
    for q in [
        "0",
        "101",
        "-5",
        "abc",
        "",
        "2.5",
        "99999999999999999999999",
    ] {
        let (status, body) = s.get(&format!("/list?limit={q}")).await;
        assert_eq!(status, 400, "limit={q}: {body}");
        assert!(
            error_of(&body).contains("from 1 to 100"),
            "limit={q}: {body}"
        );
    }
}

#[tokio::test]
async fn malformed_json_is_400() {
    let s = start().await;
    for raw in ["{", "not json", "{\"calc\": \"1+1\", \"calcResult\": 2", ""] {
        let (status, body) = s.post_raw("application/json", raw).await;
        assert_eq!(status, 400, "{raw:?}: {body}");
        assert!(!error_of(&body).is_empty());
    }
    assert_eq!(
        s.get("/list").await.1,
        json!({"list": []}),
        "nothing stored"
    );
}

#[tokio::test]
async fn wrong_shape_or_types_is_422() {
    let s = start().await;
    for bad in [
        json!({"calc": 2, "calcResult": 5}),
        json!({"calc": "2+3", "calcResult": "5"}),
        json!({"calc": "2+3", "calcResult": 5.5}),
        json!({"calc": "2+3"}),
        json!({"calcResult": 5}),
        json!({"calc": "2+3", "calcResult": 9223372036854775808u64}),
        json!({"calc": "", "calcResult": 1}),
        json!({"calc": "x".repeat(1001), "calcResult": 1}),
        json!([1, 2]),
        json!(null),
    ] {
        let (status, body) = s.post_json(&bad).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert!(!error_of(&body).is_empty());
    }
    assert_eq!(
        s.get("/list").await.1,
        json!({"list": []}),
        "nothing stored"
    );
}

#[tokio::test]
async fn not_json_content_type_is_415() {
    let s = start().await;
    let (status, body) = s
        .post_raw("text/plain", r#"{"calc":"1+1","calcResult":2}"#)
        .await;
    assert_eq!(status, 415, "{body}");
    assert!(error_of(&body).contains("application/json"));
}

#[tokio::test]
async fn oversized_body_is_413_with_or_without_content_length() {
    let s = start().await;
    let big = format!(r#"{{"calc":"{}","calcResult":1}}"#, "1".repeat(70 * 1024));
    let (status, body) = s.post_raw("application/json", big.clone()).await;
    assert_eq!(status, 413, "{body}");
    assert!(!error_of(&body).is_empty());

    // Chunked: no Content-Length, the limit applies while reading.
    let stream = futures_stream(big);
    let (status, body) = s
        .post_raw("application/json", reqwest::Body::wrap_stream(stream))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        s.get("/list").await.1,
        json!({"list": []}),
        "nothing stored"
    );
}

fn futures_stream(
    text: String,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = text
        .into_bytes()
        .chunks(8192)
        .map(|c| Ok(c.to_vec()))
        .collect();
    futures::stream::iter(chunks)
}

#[tokio::test]
async fn html_in_a_calculation_is_stored_verbatim_as_text() {
    let s = start().await;
    let calc = "<script>alert(1)</script>+'; DROP TABLE audit.calculations; --";
    let (status, row) = s.post_json(&json!({"calc": calc, "calcResult": 0})).await;
    assert_eq!(status, 201);
    assert_eq!(row["calc"], calc);
    let (_, body) = s.get("/list").await;
    assert_eq!(body["list"][0]["calc"], calc);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let s = start().await;
    let (status, body) = s.get("/nope").await;
    assert_eq!(status, 404);
    error_of(&body);
    let (status, body) = s.get("/append").await;
    assert_eq!(status, 405);
    error_of(&body);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let s = start().await;
    s.post_json(&json!({"calc": "1+1", "calcResult": 2})).await;
    s.post_raw("application/json", "{").await;
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("http_requests_total{route=\"/append\",status=\"201\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("http_requests_total{route=\"/append\",status=\"400\"} 1\n"),
        "{text}"
    );
}

/// Appends sent together are stored together (one INSERT per batch): each caller
/// still gets its own row, duplicates included, and every row is listed.
#[tokio::test]
async fn concurrent_appends_each_get_their_own_row() {
    let s = start().await;
    let calls = (0..40i64).map(|i| {
        // Every fourth append repeats "1+1": identical rows must still be distinct ids.
        let (calc, result) = if i % 4 == 0 {
            ("1+1".to_string(), 2)
        } else {
            (format!("{i}+1"), i + 1)
        };
        let s = &s;
        async move {
            let (status, row) = s
                .post_json(&json!({"calc": calc, "calcResult": result}))
                .await;
            assert_eq!(status, 201, "{row}");
            assert_eq!(
                (
                    row["calc"].as_str().unwrap(),
                    row["result"].as_i64().unwrap()
                ),
                (calc.as_str(), result)
            );
            row["id"].as_i64().unwrap()
        }
    });
    let mut ids = futures::future::join_all(calls).await;
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every append got a row of its own");
    let (_, body) = s.get("/list?limit=100").await;
    assert_eq!(body["list"].as_array().unwrap().len(), 40);
}

#[tokio::test]
async fn a_nul_character_in_calc_is_422_and_stores_nothing() {
    let s = start().await;
    let (status, body) = s
        .post_json(&json!({"calc": "1\u{0}+1", "calcResult": 2}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_of(&body).contains("NUL"), "{body}");
    assert_eq!(s.get("/list").await, (200, json!({"list": []})));
}

/// `POST /append` with `key`, concurrently `n` times (a client retrying while its first
/// attempt is still in flight, or after it timed out).
async fn append_with_key(s: &support::Service, key: &str, n: usize) -> Vec<(u16, bool, Value)> {
    let attempts = (0..n).map(|_| async {
        let r = s
            .http
            .post(format!("{}/append", s.base))
            .header(micro_common::idempotency::KEY_HEADER, key)
            .json(&json!({"calc": "4+4", "calcResult": 8}))
            .send()
            .await
            .unwrap();
        let replayed = r
            .headers()
            .contains_key(micro_common::idempotency::REPLAYED_HEADER);
        let (status, body) = support::decode(r).await;
        (status, replayed, body)
    });
    futures::future::join_all(attempts).await
}

#[tokio::test]
async fn a_retried_append_is_stored_once() {
    let s = start().await;
    let key = micro_common::idempotency::new_key();
    let first = append_with_key(&s, &key, 1).await.remove(0);
    assert_eq!(first.0, 201, "{}", first.2);
    assert!(!first.1, "the first attempt is not a replay");
    // Retries, one after the other and several at once: each gets the first row.
    let mut retries = append_with_key(&s, &key, 1).await;
    retries.extend(append_with_key(&s, &key, 8).await);
    for (status, replayed, body) in &retries {
        assert_eq!(*status, 201, "{body}");
        assert!(*replayed, "a retry is marked as a replay: {body}");
        assert_eq!(body, &first.2, "a retry answers the stored row");
    }
    // Another key is another calculation.
    let other = append_with_key(&s, &micro_common::idempotency::new_key(), 1).await;
    assert_eq!(other[0].0, 201);
    let (_, body) = s.get("/list").await;
    let stored: Vec<&Value> = body["list"].as_array().unwrap().iter().collect();
    assert_eq!(stored.len(), 2, "{body}");
}

#[tokio::test]
async fn a_bad_idempotency_key_is_400() {
    let s = start().await;
    for bad in [
        "",
        &"k".repeat(micro_common::idempotency::MAX_KEY_CHARS + 1),
        "a b",
    ] {
        let r = s
            .http
            .post(format!("{}/append", s.base))
            .header(micro_common::idempotency::KEY_HEADER, bad)
            .json(&json!({"calc": "1+1", "calcResult": 2}))
            .send()
            .await
            .unwrap();
        let (status, body) = support::decode(r).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert!(error_of(&body).contains("Idempotency-Key"), "{body}");
    }
}
