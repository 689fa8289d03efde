//! eventservice against real PostgreSQL and Redis (`MICRO_TEST_PG_URL`,
//! `MICRO_TEST_REDIS_URL`), running the real binary: each test gets a fresh
//! database and its own queue name.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use micro_common::queue::SUMMARY_RETURN_PREFIX;
use micro_common::testkit;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

/// One running eventservice process; killed when dropped.
struct Service {
    child: Child,
    port: u16,
}

struct Setup {
    db_url: String,
    redis_url: String,
    queue: String,
}

impl Setup {
    async fn new() -> Self {
        Self {
            db_url: testkit::fresh_database().await,
            redis_url: testkit::redis_url(),
            queue: testkit::unique_name("evq"),
        }
    }

    fn start(&self, worker: &str) -> Service {
        self.start_with(worker, &[])
    }

    fn start_with(&self, worker: &str, extra: &[(&str, &str)]) -> Service {
        let port = testkit::free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_eventservice"));
        cmd.env("EVENTSERVICE_SERVICE_PORT", port.to_string())
            .env("LISTEN_HOST", "127.0.0.1")
            .env("DATABASE_URL", &self.db_url)
            .env("REDIS_URL", &self.redis_url)
            .env("EVENT_QUEUE", &self.queue)
            .env("HOSTNAME", worker)
            .env_remove("POD_NAME")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start eventservice");
        Service { child, port }
    }

    async fn redis(&self) -> MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to MICRO_TEST_REDIS_URL")
    }

    async fn pg(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.db_url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client
    }

    fn processing(&self, worker: &str) -> String {
        format!("{}:processing:{worker}", self.queue)
    }
}

impl Service {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn ready(&self) {
        testkit::wait_for_status(&self.url("/readyz"), 200, WAIT)
            .await
            .expect("eventservice ready");
    }

    fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no clean-up code runs
        let _ = self.child.wait();
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "eventservice did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` until it returns Some, failing the test after [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn push(con: &mut MultiplexedConnection, queue: &str, message: &str) {
    redis::cmd("LPUSH")
        .arg(queue)
        .arg(message)
        .query_async::<()>(con)
        .await
        .unwrap();
}

async fn llen(con: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("LLEN").arg(key).query_async(con).await.unwrap()
}

async fn count_url(pg: &tokio_postgres::Client, url: &str) -> i64 {
    pg.query_one(
        "SELECT count(*) FROM events.page_events WHERE url = $1",
        &[&url],
    )
    .await
    .map(|r| r.get(0))
    .unwrap_or(-1)
}

fn record(url: &str) -> String {
    json!({"action": "record", "type": "page", "url": url}).to_string()
}

/// Asks for a summary with a fresh return path; returns the reply and the
/// TTL the reply list had.
async fn summary(con: &mut MultiplexedConnection, queue: &str) -> (Value, i64) {
    let return_path = format!("{SUMMARY_RETURN_PREFIX}{}", testkit::unique_name("reply"));
    push(
        con,
        queue,
        &json!({"action": "summary", "returnPath": return_path}).to_string(),
    )
    .await;
    let path = return_path.clone();
    let mut c = con.clone();
    eventually("the summary reply", || {
        let path = path.clone();
        let mut c = c.clone();
        async move { (llen(&mut c, &path).await > 0).then_some(()) }
    })
    .await;
    let ttl: i64 = redis::cmd("TTL")
        .arg(&return_path)
        .query_async(&mut c)
        .await
        .unwrap();
    let reply: String = redis::cmd("LPOP")
        .arg(&return_path)
        .query_async(&mut c)
        .await
        .unwrap();
    (serde_json::from_str(&reply).unwrap(), ttl)
}

#[tokio::test]
async fn two_replicas_migrate_together_record_and_summarise() {
    let setup = Setup::new().await;
    // Two replicas starting at once on an empty database: migrations must not collide.
    let a = setup.start("replica-a");
    let b = setup.start("replica-b");
    a.ready().await;
    b.ready().await;

    let mut con = setup.redis().await;
    for url in ["/add", "/add", "/add", "/audit", "/add/calculate"] {
        push(&mut con, &setup.queue, &record(url)).await;
    }
    let pg = setup.pg().await;
    eventually("five stored events", || async {
        let n: i64 = pg
            .query_one("SELECT count(*) FROM events.page_events", &[])
            .await
            .unwrap()
            .get(0);
        (n == 5).then_some(())
    })
    .await;

    let (reply, ttl) = summary(&mut con, &setup.queue).await;
    assert_eq!(reply, json!({"/add": 3, "/audit": 1, "/add/calculate": 1}));
    assert!(ttl > 0 && ttl <= 60, "the reply list expires (ttl {ttl})");

    let applied: i64 = pg
        .query_one("SELECT count(*) FROM events.schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(applied, 1, "migration recorded once");
    for worker in ["replica-a", "replica-b"] {
        assert_eq!(llen(&mut con, &setup.processing(worker)).await, 0);
    }
}

#[tokio::test]
async fn bad_messages_are_dead_lettered_and_the_worker_keeps_going() {
    let setup = Setup::new().await;
    let service = setup.start("dl-worker");
    service.ready().await;
    let mut con = setup.redis().await;

    let bad = [
        ("{not json", "malformed JSON"),
        (r#"{"action":"explode"}"#, r#"unknown action "explode""#),
        (
            r#"{"action":"record","type":"page"}"#,
            r#"missing field "url""#,
        ),
        (r#"{"action":"summary"}"#, r#"missing field "returnPath""#),
        (
            r#"{"action":"record","type":"page","url":"a\u0000b"}"#,
            "NUL",
        ),
        ("[1,2,3]", "not a JSON object"),
    ];
    for (message, _) in bad {
        push(&mut con, &setup.queue, message).await;
    }
    // A good message after the bad ones: the worker is still consuming.
    push(&mut con, &setup.queue, &record("/after-the-bad-ones")).await;
    let pg = setup.pg().await;
    eventually("the good event after the bad ones", || async {
        (count_url(&pg, "/after-the-bad-ones").await == 1).then_some(())
    })
    .await;

    let dead_key = format!("{}:dead", setup.queue);
    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg(&dead_key)
        .arg(0)
        .arg(-1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(dead.len(), bad.len(), "{dead:?}");
    for (message, reason) in bad {
        let entry: Value = dead
            .iter()
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .find(|d| d["message"] == message)
            .unwrap_or_else(|| panic!("{message} not dead-lettered: {dead:?}"));
        assert!(
            entry["reason"].as_str().unwrap().contains(reason),
            "{entry}"
        );
    }
    assert_eq!(llen(&mut con, &setup.processing("dl-worker")).await, 0);
    assert_eq!(llen(&mut con, &setup.queue).await, 0);

    let metrics = reqwest::get(service.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("eventservice_messages_dead_lettered_total 6"),
        "{metrics}"
    );
    assert!(
        metrics.contains("eventservice_messages_processed_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_summary_for_a_return_path_outside_report_is_not_answered() {
    let setup = Setup::new().await;
    let service = setup.start("prefix-worker");
    service.ready().await;
    let mut con = setup.redis().await;
    // Any other key, e.g. a queue: a summary pushed there would feed garbage to its consumer.
    let victim = testkit::unique_name("victim");
    push(
        &mut con,
        &setup.queue,
        &json!({"action": "summary", "returnPath": victim}).to_string(),
    )
    .await;
    push(&mut con, &setup.queue, &record("/barrier")).await;
    let pg = setup.pg().await;
    eventually("the barrier event", || async {
        (count_url(&pg, "/barrier").await == 1).then_some(())
    })
    .await;
    let exists: bool = redis::cmd("EXISTS")
        .arg(&victim)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(!exists, "eventservice wrote into {victim}");
    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg(format!("{}:dead", setup.queue))
        .arg(0)
        .arg(-1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("does not start with"), "{dead:?}");
}

#[tokio::test]
async fn redelivered_message_with_an_id_is_stored_once() {
    let setup = Setup::new().await;
    let service = setup.start("dup-worker");
    service.ready().await;
    let mut con = setup.redis().await;
    let message =
        json!({"action": "record", "type": "page", "url": "/once", "id": "m-1"}).to_string();
    push(&mut con, &setup.queue, &message).await;
    push(&mut con, &setup.queue, &message).await;
    push(&mut con, &setup.queue, &record("/barrier")).await;
    let pg = setup.pg().await;
    eventually("the barrier event", || async {
        (count_url(&pg, "/barrier").await == 1).then_some(())
    })
    .await;
    assert_eq!(count_url(&pg, "/once").await, 1);
}

#[tokio::test]
async fn killed_before_commit_the_event_is_stored_exactly_once_after_restart() {
    let setup = Setup::new().await;
    let mut service = setup.start("durable-worker");
    service.ready().await; // migrations done: the table exists

    // Hold the insert: an open transaction with an exclusive lock on the table.
    let (mut locker, conn) = tokio_postgres::connect(&setup.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE events.page_events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let mut con = setup.redis().await;
    push(&mut con, &setup.queue, &record("/durable")).await;
    let processing = setup.processing("durable-worker");
    let pg = setup.pg().await;
    eventually("the message in the processing list and its INSERT waiting on the lock", || async {
        let taken = llen(&mut con.clone(), &processing).await == 1;
        let waiting: i64 = pg
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO events.page_events%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        (taken && waiting == 1).then_some(())
    })
    .await;

    service.kill();
    tx.rollback().await.unwrap(); // release the lock
    assert_eq!(
        llen(&mut con, &processing).await,
        1,
        "the taken message survives the crash"
    );

    let restarted = setup.start("durable-worker");
    restarted.ready().await;
    push(&mut con, &setup.queue, &record("/barrier")).await;
    eventually("the event stored after the restart", || async {
        (count_url(&pg, "/durable").await >= 1 && count_url(&pg, "/barrier").await == 1)
            .then_some(())
    })
    .await;
    assert_eq!(count_url(&pg, "/durable").await, 1, "stored exactly once");
    assert_eq!(llen(&mut con, &processing).await, 0);
}

#[tokio::test]
async fn a_dead_workers_list_is_reclaimed_but_a_live_workers_is_not() {
    let setup = Setup::new().await;
    let mut con = setup.redis().await;
    // A worker that died under another name (no heartbeat) left a message behind...
    push(
        &mut con,
        &setup.processing("ghost"),
        &record("/from-a-ghost"),
    )
    .await;
    // ...and a live worker (heartbeat present) is busy with one.
    push(
        &mut con,
        &setup.processing("busy"),
        &record("/in-flight-elsewhere"),
    )
    .await;
    redis::cmd("SET")
        .arg(format!("{}:worker:busy", setup.queue))
        .arg("alive")
        .arg("EX")
        .arg(60)
        .query_async::<()>(&mut con)
        .await
        .unwrap();

    let service = setup.start("reclaimer");
    service.ready().await;
    let pg = setup.pg().await;
    eventually("the ghost's message stored", || async {
        (count_url(&pg, "/from-a-ghost").await == 1).then_some(())
    })
    .await;
    assert_eq!(llen(&mut con, &setup.processing("ghost")).await, 0);
    assert_eq!(
        llen(&mut con, &setup.processing("busy")).await,
        1,
        "a live worker's list is left alone"
    );
    assert_eq!(count_url(&pg, "/in-flight-elsewhere").await, 0);
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_hands_back_the_heartbeat() {
    let setup = Setup::new().await;
    let mut service = setup.start("stopper");
    service.ready().await;
    let mut con = setup.redis().await;
    let heartbeat = format!("{}:worker:stopper", setup.queue);
    eventually("the worker's heartbeat", || {
        let mut con = con.clone();
        let heartbeat = heartbeat.clone();
        async move {
            let exists: bool = redis::cmd("EXISTS")
                .arg(&heartbeat)
                .query_async(&mut con)
                .await
                .unwrap();
            exists.then_some(())
        }
    })
    .await;
    let status = service.terminate();
    assert!(status.success(), "exit status {status}");
    let exists: bool = redis::cmd("EXISTS")
        .arg(&heartbeat)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(!exists, "a stopped worker removes its heartbeat");
}

#[tokio::test]
async fn readiness_follows_redis_and_postgres() {
    let setup = Setup::new().await;
    // Redis not up yet, PostgreSQL unreachable.
    let redis_port = testkit::free_port();
    let redis_url = format!("redis://127.0.0.1:{redis_port}");
    let dead_pg = format!(
        "postgres://postgres@127.0.0.1:{}/postgres",
        testkit::dead_port()
    );
    let service = setup.start_with(
        "ready-worker",
        &[("REDIS_URL", &redis_url), ("DATABASE_URL", &dead_pg)],
    );
    testkit::wait_for_status(&service.url("/healthz"), 200, WAIT)
        .await
        .unwrap();
    let body: Value = reqwest::get(service.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["ready"], false);
    let missing = body["notReady"].as_array().unwrap();
    assert!(
        missing.contains(&json!("redis")) && missing.contains(&json!("postgres")),
        "{body}"
    );
    drop(service);

    // PostgreSQL fine; Redis comes up late, then goes away again.
    let service = setup.start_with("ready-worker", &[("REDIS_URL", &redis_url)]);
    testkit::wait_for_status(&service.url("/healthz"), 200, WAIT)
        .await
        .unwrap();
    testkit::wait_for_status(&service.url("/readyz"), 503, WAIT)
        .await
        .unwrap();
    let mut redis_server = Command::new("redis-server")
        .args([
            "--port",
            &redis_port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (installed on the test machine)");
    let became_ready = testkit::wait_for_status(&service.url("/readyz"), 200, WAIT).await;
    let _ = redis_server.kill();
    let _ = redis_server.wait();
    became_ready.expect("ready once Redis is up");
    testkit::wait_for_status(&service.url("/readyz"), 503, WAIT)
        .await
        .expect("not ready once Redis is gone");
}

#[tokio::test]
async fn sigterm_while_the_insert_is_stuck_hands_the_message_back_to_the_queue() {
    let setup = Setup::new().await;
    let mut service = setup.start("stuck-worker");
    service.ready().await;
    let (mut locker, conn) = tokio_postgres::connect(&setup.db_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE events.page_events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let mut con = setup.redis().await;
    let message = record("/stuck");
    push(&mut con, &setup.queue, &message).await;
    let processing = setup.processing("stuck-worker");
    eventually("the message taken", || {
        let mut con = con.clone();
        let processing = processing.clone();
        async move { (llen(&mut con, &processing).await == 1).then_some(()) }
    })
    .await;

    // The insert cannot finish: after the grace period the worker gives up
    // on it, puts the message back on the queue for another worker, and exits.
    let status = service.terminate();
    assert!(status.success(), "exit status {status}");
    assert_eq!(llen(&mut con, &processing).await, 0);
    let queued: Vec<String> = redis::cmd("LRANGE")
        .arg(&setup.queue)
        .arg(0)
        .arg(-1)
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(queued, [message]);
    tx.rollback().await.unwrap();
    let pg = setup.pg().await;
    assert_eq!(
        count_url(&pg, "/stuck").await,
        0,
        "the abandoned insert was rolled back"
    );
}
