//! The background-connecting Redis handle against the real test Redis.

use std::time::Duration;

use micro_common::redis::Redis;
use micro_common::{CancellationToken, Readiness, testkit};

async fn wait_until(ready: &Readiness, want: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while ready.is_ready() != want {
        assert!(
            tokio::time::Instant::now() < deadline,
            "readiness stayed {}",
            !want
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn connects_and_serves_commands() {
    let ready = Readiness::new();
    let shutdown = CancellationToken::new();
    let redis = Redis::start_with_url(
        ready.register("redis"),
        &testkit::redis_url(),
        shutdown.clone(),
    );
    wait_until(&ready, true).await;
    let key = testkit::unique_name("common_test");
    let mut conn = redis.connection().unwrap();
    let () = redis::cmd("SET")
        .arg(&key)
        .arg("v")
        .query_async(&mut conn)
        .await
        .unwrap();
    let got: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(got, "v");
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    // A dedicated connection from the same settings (what blocking commands need).
    let mut own = redis
        .client()
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut own).await.unwrap();
    assert_eq!(pong, "PONG");
    shutdown.cancel();
}

#[tokio::test]
async fn without_a_server_it_is_not_ready() {
    let ready = Readiness::new();
    let shutdown = CancellationToken::new();
    let url = format!("redis://127.0.0.1:{}", testkit::free_port());
    let redis = Redis::start_with_url(ready.register("redis"), &url, shutdown.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ready.not_ready(), vec!["redis"]);
    assert!(redis.connection().is_err());
    shutdown.cancel();
}
