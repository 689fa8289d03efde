//! report against a real eventservice worker (in-process, via its library)
//! on real Redis and PostgreSQL; the CLI binary for exit codes and output.

use std::process::Command;
use std::time::Duration;

use clap::Parser;
use micro_common::postgres::Db;
use micro_common::redis::Redis;
use micro_common::{CancellationToken, ReadyFlag, testkit};
use serde_json::json;

/// A real eventservice worker on its own database and queue.
struct Worker {
    queue: String,
    shutdown: CancellationToken,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn worker() -> Worker {
    let shutdown = CancellationToken::new();
    let queue = testkit::unique_name("reportq");
    let db = Db::start_with_url(
        ReadyFlag::default(),
        &testkit::fresh_database().await,
        eventservice::store::SCHEMA,
        eventservice::store::MIGRATIONS,
        shutdown.clone(),
    );
    let redis = Redis::start_with_url(
        ReadyFlag::default(),
        &testkit::redis_url(),
        shutdown.clone(),
    );
    let settings = eventservice::Settings {
        queue: queue.clone(),
        worker_id: testkit::unique_name("w"),
        heartbeat_ttl: Duration::from_secs(15),
    };
    let stats = eventservice::worker::Stats::register(&micro_common::Metrics::new());
    tokio::spawn(eventservice::consume(
        settings,
        db,
        redis,
        stats,
        shutdown.clone(),
    ));
    Worker { queue, shutdown }
}

/// Page events as webapp sends them; the worker handles the queue in order,
/// so a summary asked for afterwards counts them all.
async fn visit(queue: &str, visits: &[(&str, usize)]) {
    let mut con = redis::Client::open(testkit::redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    for (url, times) in visits {
        for _ in 0..*times {
            let event = json!({"action": "record", "type": "page", "url": url}).to_string();
            redis::cmd("LPUSH")
                .arg(queue)
                .arg(event)
                .query_async::<()>(&mut con)
                .await
                .unwrap();
        }
    }
}

fn args(queue: &str, extra: &[&str]) -> report::Args {
    let redis_url = testkit::redis_url();
    let mut argv = vec![
        "report",
        "--redis-url",
        &redis_url,
        "--queue",
        queue,
        "--timeout",
        "15s",
    ];
    argv.extend_from_slice(extra);
    report::Args::try_parse_from(argv).unwrap()
}

#[tokio::test]
async fn prints_most_visited_first_as_an_aligned_table() {
    let w = worker().await;
    visit(
        &w.queue,
        &[("/audit", 1), ("/add", 3), ("/add/calculate", 2)],
    )
    .await;
    let out = report::run(&args(&w.queue, &[])).await.unwrap();
    assert_eq!(
        out,
        "url             count\n\
         /add                3\n\
         /add/calculate      2\n\
         /audit              1\n"
    );
}

#[tokio::test]
async fn json_output_for_machines() {
    let w = worker().await;
    visit(&w.queue, &[("/add", 2), ("/audit", 5)]).await;
    let out = report::run(&args(&w.queue, &["--json"])).await.unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        parsed,
        json!([{"url": "/audit", "count": 5}, {"url": "/add", "count": 2}])
    );
}

#[tokio::test]
async fn no_visits_is_an_empty_table() {
    let w = worker().await;
    let out = report::run(&args(&w.queue, &[])).await.unwrap();
    assert_eq!(out, "url  count\n");
}

#[tokio::test]
async fn no_answer_within_the_timeout_is_an_error_and_the_request_is_withdrawn() {
    let queue = testkit::unique_name("nobody_listens");
    let redis_url = testkit::redis_url();
    let a = report::Args::try_parse_from([
        "report",
        "--redis-url",
        &redis_url,
        "--queue",
        &queue,
        "--timeout",
        "300ms",
    ])
    .unwrap();
    let err = report::run(&a).await.unwrap_err().to_string();
    assert!(
        err.contains("no answer from eventservice within 300ms"),
        "{err}"
    );

    let mut con = redis::Client::open(redis_url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let left: i64 = redis::cmd("LLEN")
        .arg(&queue)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(
        left, 0,
        "the unanswered request does not linger on the queue"
    );
}

#[test]
fn the_cli_prints_a_table_or_one_error_line_and_exits_non_zero() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let w = rt.block_on(worker());
    rt.block_on(visit(&w.queue, &[("/add", 1)]));
    let ok = Command::new(env!("CARGO_BIN_EXE_report"))
        .args(["--queue", &w.queue, "--timeout", "15s"])
        .env("REDIS_URL", testkit::redis_url())
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        "url   count\n/add      1\n"
    );

    let dead = format!("redis://127.0.0.1:{}", testkit::dead_port());
    let failed = Command::new(env!("CARGO_BIN_EXE_report"))
        .args(["--redis-url", &dead, "--timeout", "2s"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: cannot reach Redis at redis://127.0.0.1:"),
        "{stderr}"
    );

    let timed_out = Command::new(env!("CARGO_BIN_EXE_report"))
        .args([
            "--queue",
            &testkit::unique_name("nobody"),
            "--timeout",
            "200ms",
        ])
        .env("REDIS_URL", testkit::redis_url())
        .output()
        .unwrap();
    assert_eq!(timed_out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&timed_out.stderr);
    assert!(
        stderr.starts_with("error: no answer from eventservice within 200ms"),
        "{stderr}"
    );
    drop(w);
}
