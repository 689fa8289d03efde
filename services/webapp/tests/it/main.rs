//! webapp in-process against the real adderservice and auditservice (their
//! library crates, in this process, on free ports, found through the
//! `<S>_SERVICE_HOST/PORT` discovery fallback), real PostgreSQL for the audit
//! log and real Redis for page events.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use micro_common::postgres::Db;
use micro_common::redis::Redis;
use micro_common::{CancellationToken, Discovery, Metrics, Readiness, ReadyFlag, server, testkit};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// Serves `router` on a free loopback port until `shutdown`; returns the port.
async fn serve(router: axum::Router, shutdown: &CancellationToken) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(server::serve_on(listener, router, shutdown.clone()));
    port
}

struct Stack {
    base: String,
    queue: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Dep {
    Up,
    /// Discoverable, but nothing listens there.
    Down,
    /// Not discoverable at all.
    Unknown,
}

struct Options {
    adder: Dep,
    audit: Dep,
    redis_up: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            adder: Dep::Up,
            audit: Dep::Up,
            redis_up: true,
        }
    }
}

async fn start(options: Options) -> Stack {
    let shutdown = CancellationToken::new();
    let mut vars = HashMap::new();
    let mut point = |service: &str, port: u16| {
        let prefix = service.to_ascii_uppercase();
        vars.insert(format!("{prefix}_SERVICE_HOST"), "127.0.0.1".to_string());
        vars.insert(format!("{prefix}_SERVICE_PORT"), port.to_string());
    };
    match options.adder {
        Dep::Up => {
            let router = server::router(adderservice::app(), Readiness::new(), Metrics::new());
            point("adderservice", serve(router, &shutdown).await);
        }
        Dep::Down => point("adderservice", testkit::dead_port()),
        Dep::Unknown => {}
    }
    match options.audit {
        Dep::Up => {
            let ready = Readiness::new();
            let db = Db::start_with_url(
                ready.register("postgres"),
                &testkit::fresh_database().await,
                auditservice::SCHEMA,
                auditservice::MIGRATIONS,
                shutdown.clone(),
            );
            let router = server::router(auditservice::app(db), ready, Metrics::new());
            let port = serve(router, &shutdown).await;
            testkit::wait_for_status(&format!("http://127.0.0.1:{port}/readyz"), 200, WAIT)
                .await
                .expect("auditservice ready");
            point("auditservice", port);
        }
        Dep::Down => point("auditservice", testkit::dead_port()),
        Dep::Unknown => {}
    }
    let redis_url = if options.redis_up {
        testkit::redis_url()
    } else {
        format!("redis://127.0.0.1:{}", testkit::dead_port())
    };
    let queue = testkit::unique_name("webq");
    let redis = Redis::start_with_url(ReadyFlag::default(), &redis_url, shutdown.clone());
    let metrics = Metrics::new();
    let app = webapp::build(
        Discovery::env_only(vars),
        redis,
        queue.clone(),
        &metrics,
        shutdown.clone(),
    )
    .unwrap();
    let port = serve(server::router(app, Readiness::new(), metrics), &shutdown).await;
    Stack {
        base: format!("http://127.0.0.1:{port}"),
        queue,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        shutdown,
    }
}

struct Page {
    status: u16,
    content_type: String,
    body: String,
}

impl Stack {
    async fn get(&self, path: &str) -> Page {
        page(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    async fn calculate(&self, first: &str, second: &str) -> Page {
        let resp = self
            .http
            .post(format!("{}/add/calculate", self.base))
            .form(&[("first", first), ("second", second)])
            .send()
            .await
            .unwrap();
        page(resp).await
    }

    async fn queued_events(&self) -> Vec<Value> {
        let mut con = redis::Client::open(testkit::redis_url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let raw: Vec<String> = redis::cmd("LRANGE")
            .arg(&self.queue)
            .arg(0)
            .arg(-1)
            .query_async(&mut con)
            .await
            .unwrap();
        raw.iter()
            .rev()
            .map(|m| serde_json::from_str(m).unwrap())
            .collect()
    }

    async fn metric(&self, name: &str) -> u64 {
        let text = self.get("/metrics").await.body;
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
    }
}

async fn page(resp: reqwest::Response) -> Page {
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    Page {
        status,
        content_type,
        body: resp.text().await.unwrap(),
    }
}

fn assert_html(page: &Page, status: u16) {
    assert_eq!(page.status, status, "{}", page.body);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.body.starts_with("<!DOCTYPE html>"), "{}", page.body);
}

#[tokio::test]
async fn root_redirects_to_the_form_which_works_without_javascript() {
    let s = start(Options::default()).await;
    let root = s.http.get(format!("{}/", s.base)).send().await.unwrap();
    assert!(root.status().is_redirection());
    assert_eq!(root.headers()["location"], "/add");

    let reload = s
        .http
        .get(format!("{}/add/calculate", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reload.headers()["location"],
        "/add",
        "a reloaded result page goes back to the form"
    );

    let form = s.get("/add").await;
    assert_html(&form, 200);
    assert!(
        form.body
            .contains(r#"<form method="post" action="/add/calculate">"#)
    );
    assert!(form.body.contains(r#"name="first""#) && form.body.contains(r#"name="second""#));
    assert!(!form.body.contains("<script"), "no JavaScript needed");
}

#[tokio::test]
async fn calculate_shows_the_sum_and_audit_lists_it() {
    let s = start(Options::default()).await;
    let result = s.calculate("2", "3").await;
    assert_html(&result, 200);
    assert!(result.body.contains("2 + 3 = 5"), "{}", result.body);

    let negative = s.calculate(" -10 ", "4").await;
    assert!(negative.body.contains("-10 + 4 = -6"), "{}", negative.body);

    let audit = s.get("/audit").await;
    assert_html(&audit, 200);
    let first = audit.body.find("-10+4").expect("newest calculation listed");
    let second = audit.body.find("2+3").expect("2+3 listed");
    assert!(first < second, "newest first");
    assert!(
        audit.body.contains("<td class=\"result\">5</td>"),
        "{}",
        audit.body
    );
}

#[tokio::test]
async fn a_non_integer_field_is_a_readable_400_page() {
    let s = start(Options::default()).await;
    let page = s.calculate("two", "3").await;
    assert_html(&page, 400);
    assert!(
        page.body.contains("First is not an integer"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"value="two""#),
        "the input is kept: {}",
        page.body
    );

    let empty = s.calculate("1", "").await;
    assert_html(&empty, 400);
    assert!(empty.body.contains("Second is empty"), "{}", empty.body);

    let missing = s
        .http
        .post(format!("{}/add/calculate", s.base))
        .form(&[("first", "1")])
        .send()
        .await
        .unwrap();
    let missing = page_of(missing).await;
    assert_html(&missing, 400);

    // Integers, but the sum overflows: adderservice says why, we show it.
    let overflow = s.calculate("9223372036854775807", "1").await;
    assert_html(&overflow, 400);
    assert!(
        overflow.body.contains("Cannot add these numbers"),
        "{}",
        overflow.body
    );

    // Nothing of this reached the audit log.
    assert!(s.get("/audit").await.body.contains("No calculations yet"));
}

async fn page_of(resp: reqwest::Response) -> Page {
    page(resp).await
}

#[tokio::test]
async fn html_in_a_calculation_is_shown_as_text() {
    let s = start(Options::default()).await;
    let attack = r#"<script>alert("x")</script>"#;
    let page = s
        .calculate(attack, r#""><img src=x onerror=alert(1)>"#)
        .await;
    assert_html(&page, 400);
    assert!(!page.body.contains("<script>alert"), "{}", page.body);
    assert!(!page.body.contains("<img src=x"), "{}", page.body);
    assert!(
        page.body
            .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn adderservice_down_or_unknown_gives_a_readable_error_page() {
    let down = start(Options {
        adder: Dep::Down,
        ..Options::default()
    })
    .await;
    let page = down.calculate("2", "3").await;
    assert_html(&page, 502);
    assert!(
        page.body
            .contains("The calculation is unavailable right now"),
        "{}",
        page.body
    );
    assert!(page.body.contains("adderservice"), "{}", page.body);
    assert!(
        !page.body.contains("127.0.0.1"),
        "no internal addresses shown: {}",
        page.body
    );

    let unknown = start(Options {
        adder: Dep::Unknown,
        ..Options::default()
    })
    .await;
    let page = unknown.calculate("2", "3").await;
    assert_html(&page, 503);
    assert!(
        page.body.contains("adderservice is not available"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn auditservice_down_still_shows_the_result_and_says_it_was_not_recorded() {
    let s = start(Options {
        audit: Dep::Down,
        ..Options::default()
    })
    .await;
    let page = s.calculate("2", "3").await;
    assert_html(&page, 502);
    assert!(page.body.contains("2 + 3 = 5"), "{}", page.body);
    assert!(
        page.body.contains("not recorded in the audit log"),
        "{}",
        page.body
    );

    let audit = s.get("/audit").await;
    assert_html(&audit, 502);
    assert!(
        audit
            .body
            .contains("The audit log is unavailable right now"),
        "{}",
        audit.body
    );
}

#[tokio::test]
async fn every_page_request_lands_on_the_queue_as_a_page_event() {
    let s = start(Options::default()).await;
    s.get("/add").await;
    s.calculate("2", "3").await;
    s.get("/audit").await;
    s.get("/healthz").await; // probes are not page views

    let deadline = Instant::now() + WAIT;
    let events = loop {
        let events = s.queued_events().await;
        if events.len() >= 3 || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let urls: Vec<&str> = events.iter().map(|e| e["url"].as_str().unwrap()).collect();
    assert_eq!(urls, ["/add", "/add/calculate", "/audit"]);
    for e in &events {
        assert_eq!(e["action"], "record");
        assert_eq!(e["type"], "page");
        assert_eq!(
            e["id"].as_str().unwrap().len(),
            32,
            "a unique id for de-duplication"
        );
    }
    assert_eq!(s.metric("webapp_page_events_sent_total").await, 3);
    assert_eq!(s.metric("webapp_page_events_dropped_total").await, 0);
}

#[tokio::test]
async fn with_redis_down_pages_render_and_dropped_events_are_counted() {
    let s = start(Options {
        redis_up: false,
        ..Options::default()
    })
    .await;
    for _ in 0..3 {
        assert_html(&s.get("/add").await, 200);
    }
    let page = s.calculate("2", "3").await;
    assert_html(&page, 200);
    assert!(page.body.contains("2 + 3 = 5"));

    let deadline = Instant::now() + WAIT;
    loop {
        let dropped = s.metric("webapp_page_events_dropped_total").await;
        if dropped >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dropped events not counted (at {dropped})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(s.metric("webapp_page_events_sent_total").await, 0);
}

/// A DNS server that takes every question and never answers (UDP and TCP on one port).
async fn silent_dns() -> (u16, tokio::task::JoinHandle<()>) {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = udp.local_addr().unwrap().port();
    let tcp = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut buf = [0u8; 512];
        loop {
            tokio::select! {
                _ = udp.recv_from(&mut buf) => {}
                Ok((conn, _)) = tcp.accept() => held.push(conn),
            }
        }
    });
    (port, task)
}

#[tokio::test]
async fn with_dns_not_answering_the_page_still_answers_by_its_deadline() {
    let shutdown = CancellationToken::new();
    let (dns_port, _dns) = silent_dns().await;
    let vars = HashMap::from([
        ("DNS_HOST".to_string(), "127.0.0.1".to_string()),
        ("DNS_PORT".to_string(), dns_port.to_string()),
    ]);
    let redis = Redis::start_with_url(
        ReadyFlag::default(),
        &testkit::redis_url(),
        shutdown.clone(),
    );
    let metrics = Metrics::new();
    let app = webapp::build(
        Discovery::from_vars(vars),
        redis,
        testkit::unique_name("webq"),
        &metrics,
        shutdown.clone(),
    )
    .unwrap();
    let port = serve(server::router(app, Readiness::new(), metrics), &shutdown).await;
    // The bound: a page that waited on DNS beyond its deadline fails here.
    let http = reqwest::Client::builder()
        .timeout(webapp::backends::PAGE_DEADLINE + Duration::from_secs(2))
        .build()
        .unwrap();
    for path in ["/add/calculate", "/audit"] {
        let request = if path == "/audit" {
            http.get(format!("http://127.0.0.1:{port}{path}"))
        } else {
            http.post(format!("http://127.0.0.1:{port}{path}"))
                .form(&[("first", "2"), ("second", "3")])
        };
        let resp = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path} did not answer by its deadline: {e}"));
        let page = page(resp).await;
        assert!(
            page.status == 503 || page.status == 504,
            "{path}: {} {}",
            page.status,
            page.body
        );
        assert_html(&page, page.status);
        assert!(page.body.contains("unavailable"), "{}", page.body);
    }
    shutdown.cancel();
}
