//! Migrations and the background-connecting pool against the real test PostgreSQL.

use std::time::Duration;

use micro_common::postgres::{Db, Migration, migrate};
use micro_common::{CancellationToken, Readiness, testkit};

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

async fn applied(client: &tokio_postgres::Client, schema: &str) -> Vec<i32> {
    client
        .query(
            &format!("SELECT version FROM {schema}.schema_migrations ORDER BY version"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

static STEPS: &[Migration] = &[
    Migration {
        version: 2,
        name: "add column",
        sql: "ALTER TABLE demo.items ADD COLUMN note text",
    },
    Migration {
        version: 1,
        name: "create",
        sql: "CREATE TABLE demo.items (id int)",
    },
];

#[tokio::test]
async fn migrations_run_in_version_order_and_only_once() {
    let url = testkit::fresh_database().await;
    let mut client = connect(&url).await;
    assert_eq!(
        migrate(&mut client, "demo", STEPS).await.unwrap(),
        vec![1, 2]
    );
    assert_eq!(
        migrate(&mut client, "demo", STEPS).await.unwrap(),
        Vec::<i32>::new()
    );
    // A later release adds a migration: only that one runs.
    let more: Vec<Migration> = STEPS
        .iter()
        .copied()
        .chain([Migration {
            version: 3,
            name: "index",
            sql: "CREATE INDEX ON demo.items (id)",
        }])
        .collect();
    assert_eq!(migrate(&mut client, "demo", &more).await.unwrap(), vec![3]);
    assert_eq!(applied(&client, "demo").await, vec![1, 2, 3]);
}

#[tokio::test]
async fn a_failing_migration_leaves_nothing_half_done() {
    let url = testkit::fresh_database().await;
    let mut client = connect(&url).await;
    let broken = [
        Migration {
            version: 1,
            name: "create",
            sql: "CREATE TABLE demo.items (id int)",
        },
        Migration {
            version: 2,
            name: "typo",
            sql: "ALTER TABLE demo.itemz ADD COLUMN x int",
        },
    ];
    let e = format!(
        "{:#}",
        migrate(&mut client, "demo", &broken).await.unwrap_err()
    );
    assert!(e.contains("migration 2 (typo) of schema demo"), "{e}");
    let exists: bool = client
        .query_one("SELECT to_regclass('demo.items') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!exists, "migration 1 rolled back with the failed run");
}

#[tokio::test]
async fn many_concurrent_migrators_agree() {
    let url = testkit::fresh_database().await;
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(connect(&url).await);
    }
    let results =
        futures::future::join_all(clients.iter_mut().map(|c| migrate(c, "demo", STEPS))).await;
    let total: usize = results.into_iter().map(|r| r.unwrap().len()).sum();
    assert_eq!(total, 2);
    assert_eq!(applied(&clients[0], "demo").await, vec![1, 2]);
}

#[tokio::test]
async fn schema_names_are_checked() {
    let url = testkit::fresh_database().await;
    let mut client = connect(&url).await;
    for bad in ["", "Audit", "a;drop", "a b"] {
        assert!(migrate(&mut client, bad, STEPS).await.is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn db_becomes_ready_and_serves_clients() {
    let url = testkit::fresh_database().await;
    let ready = Readiness::new();
    let shutdown = CancellationToken::new();
    let db = Db::start_with_url(
        ready.register("postgres"),
        &url,
        "demo",
        STEPS,
        shutdown.clone(),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ready.is_ready() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready: {:?}",
            ready.not_ready()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = db.client().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM demo.items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    shutdown.cancel();
}

#[tokio::test]
async fn db_without_a_server_is_not_ready_and_says_why() {
    let url = format!("postgres://postgres@127.0.0.1:{}/x", testkit::free_port());
    let ready = Readiness::new();
    let shutdown = CancellationToken::new();
    let db = Db::start_with_url(
        ready.register("postgres"),
        &url,
        "demo",
        STEPS,
        shutdown.clone(),
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ready.not_ready(), vec!["postgres"]);
    let e = db.client().await.unwrap_err().to_string();
    assert!(e.contains("not connected yet"), "{e}");
    shutdown.cancel();
}
