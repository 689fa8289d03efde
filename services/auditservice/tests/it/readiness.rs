//! /readyz follows the database: not ready (and /append, /list answer 503) while PostgreSQL
//! is unreachable, ready once it is reachable, not ready again when it goes away.
//!
//! And a database that goes silent (connections open, nothing answered) is caught by the
//! timeouts: 503 answers, not hung requests, and not ready.
//!
//! "Unreachable" is a loopback port between the service and the real test PostgreSQL: closed
//! at first, then a TCP forwarder to PostgreSQL is started on it, then stopped again.

use crate::support;

use std::net::SocketAddr;
use std::time::Duration;

use micro_common::postgres::QUERY_TIMEOUT;
use micro_common::testkit;
use serde_json::json;
use support::{error_of, start_with};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Host and port of `MICRO_TEST_PG_URL`.
fn pg_addr() -> SocketAddr {
    let config: tokio_postgres::Config = testkit::pg_admin_url().parse().unwrap();
    let host = match &config.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("MICRO_TEST_PG_URL must use TCP, got {other:?}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let ip = if host == "localhost" {
        "127.0.0.1".to_string()
    } else {
        host
    };
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// Forwards connections on `port` to PostgreSQL until dropped (dropping closes them all).
/// Once [`Forwarder::black_hole`] is called it stops forwarding but keeps every connection
/// open and accepts new ones it never answers: a database (or network) gone silent.
struct Forwarder {
    _tasks: JoinSet<()>,
    silent: tokio::sync::watch::Sender<bool>,
}

impl Forwarder {
    async fn start(port: u16) -> Forwarder {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let target = pg_addr();
        let (silent, watch) = tokio::sync::watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            // Owned by the acceptor task: aborting it drops (and aborts) every connection.
            let mut connections = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let mut watch = watch.clone();
                connections.spawn(async move {
                    let silent_now = *watch.borrow();
                    if silent_now {
                        // Accepted, never answered.
                        return std::future::pending::<()>().await;
                    }
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let silenced = tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                            r = watch.wait_for(|silent| *silent) => r.is_ok(),
                        };
                        if silenced {
                            // Both sockets stay open; nothing moves any more.
                            std::future::pending::<()>().await
                        }
                    }
                });
            }
        });
        Forwarder {
            _tasks: tasks,
            silent,
        }
    }

    fn black_hole(&self) {
        self.silent.send_replace(true);
    }
}

#[tokio::test]
async fn not_ready_until_the_database_is_reachable_and_again_when_it_goes() {
    // The database exists on the real server; only the path to it is cut.
    let real_url = testkit::fresh_database().await;
    let db_name = real_url.rsplit('/').next().unwrap().to_string();
    let port = testkit::free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/{db_name}");
    let s = start_with(&url).await;

    // Nothing listens: not ready, and requests are 503 with a JSON error, not hangs.
    testkit::wait_for_status(&format!("{}/healthz", s.base), 200, Duration::from_secs(10))
        .await
        .unwrap();
    let (status, body) = s.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["notReady"], json!(["postgres"]));
    assert!(error_of(&body).contains("postgres"));
    let (status, body) = s.post_json(&json!({"calc": "1+1", "calcResult": 2})).await;
    assert_eq!(status, 503, "{body}");
    error_of(&body);
    let (status, body) = s.get("/list").await;
    assert_eq!(status, 503, "{body}");

    // PostgreSQL becomes reachable: the background connector migrates and flips ready.
    let forwarder = Forwarder::start(port).await;
    s.wait_ready().await;
    let (status, _) = s.post_json(&json!({"calc": "1+1", "calcResult": 2})).await;
    assert_eq!(status, 201);

    // And goes away again: connections cut, nothing listening.
    drop(forwarder);
    testkit::wait_for_status(&format!("{}/readyz", s.base), 503, Duration::from_secs(20))
        .await
        .unwrap();
    let (status, body) = s.get("/list").await;
    assert_eq!(status, 503, "{body}");

    // Back again: ready, and the row written before is still there.
    let _forwarder = Forwarder::start(port).await;
    s.wait_ready().await;
    let (status, body) = s.get("/list").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["list"][0]["calc"], "1+1");
}

#[tokio::test]
async fn a_database_that_stops_answering_makes_it_unready_and_requests_503() {
    let real_url = testkit::fresh_database().await;
    let db_name = real_url.rsplit('/').next().unwrap().to_string();
    let port = testkit::free_port();
    let s = start_with(&format!("postgres://postgres@127.0.0.1:{port}/{db_name}")).await;
    let forwarder = Forwarder::start(port).await;
    s.wait_ready().await;
    let (status, _) = s.post_json(&json!({"calc": "1+2", "calcResult": 3})).await;
    assert_eq!(status, 201);

    // Connections stay open but nothing answers: no error ever reaches the driver, only
    // the timeouts can notice.
    forwarder.black_hole();
    // Bounded by the client: a request waiting on the silent database would fail here.
    let bounded = reqwest::Client::builder()
        .timeout(QUERY_TIMEOUT + Duration::from_secs(5))
        .build()
        .unwrap();
    let append = bounded
        .post(format!("{}/append", s.base))
        .json(&json!({"calc": "2+2", "calcResult": 4}))
        .send()
        .await
        .expect("append answered although the database is silent");
    assert_eq!(append.status(), 503);
    let list = bounded
        .get(format!("{}/list", s.base))
        .send()
        .await
        .expect("list answered although the database is silent");
    assert_eq!(list.status(), 503);
    testkit::wait_for_status(&format!("{}/readyz", s.base), 503, Duration::from_secs(20))
        .await
        .unwrap();
    let (status, body) = s.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["notReady"], json!(["postgres"]));
}
