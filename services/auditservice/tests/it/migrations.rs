//! Start-up migrations of schema `audit`: idempotent, and safe when several replicas
//! migrate the same database at the same moment.

use crate::support;

use micro_common::postgres::migrate;
use micro_common::testkit;
use serde_json::json;

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn migrating_twice_changes_nothing_the_second_time() {
    let url = testkit::fresh_database().await;
    let mut client = connect(&url).await;
    let first = migrate(&mut client, auditservice::SCHEMA, auditservice::MIGRATIONS)
        .await
        .unwrap();
    assert_eq!(first, every_version());
    client
        .execute(
            "INSERT INTO audit.calculations (calc, result) VALUES ('1+1', 2)",
            &[],
        )
        .await
        .unwrap();
    let second = migrate(&mut client, auditservice::SCHEMA, auditservice::MIGRATIONS)
        .await
        .unwrap();
    assert!(second.is_empty(), "{second:?}");
    let rows: i64 = client
        .query_one("SELECT count(*) FROM audit.calculations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "data survives a second migration run");
}

#[tokio::test]
async fn concurrent_migrators_apply_each_migration_exactly_once() {
    let url = testkit::fresh_database().await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(connect(&url).await);
    }
    let runs = clients
        .iter_mut()
        .map(|c| async move { migrate(c, auditservice::SCHEMA, auditservice::MIGRATIONS).await });
    let results = futures::future::join_all(runs).await;
    let mut applied: Vec<i32> = Vec::new();
    for r in results {
        applied.extend(r.expect("every concurrent migrator succeeds"));
    }
    applied.sort();
    assert_eq!(applied, every_version(), "applied once in total");
    let recorded: i64 = clients[0]
        .query_one("SELECT count(*) FROM audit.schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, every_version().len() as i64);
}

#[tokio::test]
async fn two_replicas_starting_together_both_become_ready_and_share_the_data() {
    let url = testkit::fresh_database().await;
    let (a, b) = tokio::join!(support::start_with(&url), support::start_with(&url));
    tokio::join!(a.wait_ready(), b.wait_ready());
    let (status, _) = a.post_json(&json!({"calc": "2+2", "calcResult": 4})).await;
    assert_eq!(status, 201);
    let (status, body) = b.get("/list").await;
    assert_eq!(status, 200);
    assert_eq!(body["list"][0]["calc"], "2+2");
}

/// The versions of every auditservice migration, in order.
fn every_version() -> Vec<i32> {
    auditservice::MIGRATIONS.iter().map(|m| m.version).collect()
}
