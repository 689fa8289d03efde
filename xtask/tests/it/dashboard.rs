//! `cargo xtask dashboard` in a real browser (chromium through chromedriver)
//! against the in-memory API server: objects in sync after a sync; a
//! `kubectl scale` shows as drifted without a reload and a sync turns it
//! back; a broken rollout shows its condition; markup in an annotation stays
//! text; a stopped cluster gives the banner and the page recovers; a wrong
//! context gives its banner; `/api/state` and the security headers.

use crate::browser_support;
use crate::gitops_support;

use browser_support::Driver;
use gitops_support::{ENV, Fixture, deployment, describe, system};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

const MARKUP: &str = "<script>window.pwned=1</script>";

fn annotated_configmap() -> String {
    format!(
        "# generated\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: markup\n  namespace: micro\n  \
         annotations:\n    note: \"{MARKUP}\"\n  labels:\n    app.kubernetes.io/name: markup\n    \
         app.kubernetes.io/managed-by: xtask\ndata:\n  A: b\n"
    )
}

/// The dashboard process; stopped when dropped.
struct Dashboard {
    child: Child,
    addr: SocketAddr,
}

impl Dashboard {
    fn start(f: &Fixture) -> Dashboard {
        let mut child = f
            .xtask_command(&["dashboard", "--env", ENV, "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start xtask dashboard");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // `dashboard on http://127.0.0.1:PORT/ (Ctrl-C stops it)`
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Dashboard { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// One GET: status line, headers (lowercase names), body.
    fn get(&self, path: &str) -> (String, Vec<(String, String)>, String) {
        let mut stream = std::net::TcpStream::connect(self.addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        (status, headers, body.to_string())
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// (kind, name, state, rollout text) of every row, read from the live DOM.
async fn rows(browser: &fantoccini::Client) -> Vec<(String, String, String, String)> {
    let script = "return Array.from(document.querySelectorAll('tr.obj')).map(r => \
                  [r.dataset.kind, r.dataset.name, r.dataset.state, r.querySelector('td.rollout').textContent]);";
    let value = browser
        .execute(script, vec![])
        .await
        .expect("read the rows");
    serde_json::from_value(value).unwrap_or_default()
}

async fn banner(browser: &fantoccini::Client) -> Option<String> {
    let script =
        "const b = document.querySelector('[data-banner]'); return b ? b.dataset.banner : null;";
    let value = browser
        .execute(script, vec![])
        .await
        .expect("read the banner");
    value.as_str().map(str::to_string)
}

/// Poll the page until `check` holds; panics with `what` and the rows at the deadline.
async fn until<F>(browser: &fantoccini::Client, within: Duration, what: &str, check: F)
where
    F: Fn(&[(String, String, String, String)], Option<&str>) -> bool,
{
    let deadline = Instant::now() + within;
    loop {
        let rows = rows(browser).await;
        let banner = banner(browser).await;
        if check(&rows, banner.as_deref()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not seen within {within:?}: banner {banner:?}, rows {rows:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn state<'a>(rows: &'a [(String, String, String, String)], kind: &str, name: &str) -> &'a str {
    rows.iter()
        .find(|r| r.0 == kind && r.1 == name)
        .map_or("", |r| r.2.as_str())
}

fn all_in_sync(rows: &[(String, String, String, String)], banner: Option<&str>) -> bool {
    // system()'s eight objects and the annotated ConfigMap.
    banner.is_none() && rows.len() == 9 && rows.iter().all(|r| r.2 == "in sync")
}

/// The page was not reloaded since the marker was set.
async fn same_page(browser: &fantoccini::Client) -> bool {
    let value = browser
        .execute("return window.__marker === 42;", vec![])
        .await
        .expect("read the marker");
    value == Value::Bool(true)
}

fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(work).join().expect("blocking step")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_follows_the_cluster_live_and_shows_a_banner_when_it_is_gone() {
    let kubeconfig_dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_dir.path().join("kubeconfig");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = testcluster::Options {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        kubeconfig: Some(kubeconfig.clone()),
        ..Fixture::options()
    };
    let mut files = system("v1");
    files.push(("configmap-markup.yaml".into(), annotated_configmap()));
    let (f, options) = blocking(move || {
        let f = Fixture::with_options(&files, options.clone());
        f.sync(&[]);
        (f, options)
    });
    let dashboard = Dashboard::start(&f);
    let driver = tokio::task::spawn_blocking(Driver::start).await.unwrap();
    let browser = driver.session().await;
    let f = std::sync::Arc::new(std::sync::Mutex::new(f));

    let outcome = async {
        browser.goto(&dashboard.url()).await?;
        until(&browser, Duration::from_secs(20), "every object in sync", all_in_sync).await;
        browser.execute("window.__marker = 42;", vec![]).await?;

        // Drift by hand: the row turns drifted with its diff, without a reload.
        {
            let f = f.clone();
            blocking(move || {
                f.lock().unwrap().kubectl_ok(&[
                    "scale",
                    "deploy/adderservice",
                    "-n",
                    "micro",
                    "--replicas=3",
                ])
            });
        }
        until(&browser, Duration::from_secs(2), "adderservice drifted", |rows, _| {
            state(rows, "Deployment", "adderservice") == "drifted"
        })
        .await;
        assert!(same_page(&browser).await, "the page was reloaded");
        // Read in one script: the page may be swapped between two WebDriver calls.
        let diff = browser
            .execute(
                "const p = document.querySelector('tr.diff pre'); return p ? p.textContent : '';",
                vec![],
            )
            .await?;
        let diff = diff.as_str().unwrap_or_default().to_string();
        assert!(diff.contains("-  replicas: 3") && diff.contains("+  replicas: 1"), "{diff}");

        // A sync repairs it.
        {
            let f = f.clone();
            blocking(move || f.lock().unwrap().sync(&[]));
        }
        until(&browser, Duration::from_secs(10), "in sync after the sync", all_in_sync).await;

        // Markup from an annotation is shown as text and never runs.
        let shown = browser
            .execute(
                "return Array.from(document.querySelectorAll('dd.annotation')).map(d => d.textContent);",
                vec![],
            )
            .await?;
        let shown: Vec<String> = serde_json::from_value(shown).unwrap_or_default();
        assert!(shown.iter().any(|t| t == MARKUP), "annotations shown: {shown:?}");
        let pwned = browser.execute("return window.pwned === undefined;", vec![]).await?;
        assert_eq!(pwned, Value::Bool(true), "the annotation's script ran");
        let (_, _, page) = dashboard.get("/");
        assert!(!page.contains(MARKUP), "raw markup in the page");
        assert!(page.contains("&lt;script&gt;window.pwned=1&lt;/script&gt;"));

        // A broken image: the rollout's failing condition is on the row.
        {
            let f = f.clone();
            blocking(move || {
                let f = f.lock().unwrap();
                f.write_manifest(
                    "deployment-webapp.yaml",
                    &deployment("webapp", "localhost:5000/webapp:broken", 3000),
                );
                f.commit("broken webapp");
                let out = f.xtask(&["sync", "--env", ENV, "--no-wait"]);
                assert!(out.status.success(), "{}", describe(&out));
            });
        }
        until(&browser, Duration::from_secs(10), "webapp's failed rollout", |rows, _| {
            rows.iter().any(|r| {
                r.1 == "webapp" && r.3.contains("failed: ProgressDeadlineExceeded")
            })
        })
        .await;

        // The cluster goes away: the banner, the page stays; back (empty): no
        // banner, objects missing; a sync makes them in sync again.
        {
            let f = f.clone();
            let restart = options.clone();
            let (tx, rx) = std::sync::mpsc::channel::<()>();
            let (down_tx, down_rx) = std::sync::mpsc::channel::<()>();
            let restarter = std::thread::spawn(move || {
                f.lock().unwrap().restart_cluster(restart, || {
                    down_tx.send(()).unwrap();
                    rx.recv().unwrap();
                });
            });
            tokio::task::spawn_blocking(move || down_rx.recv().unwrap())
                .await
                .unwrap();
            until(&browser, Duration::from_secs(15), "the unreachable banner", |rows, banner| {
                banner == Some("unreachable") && !rows.is_empty()
            })
            .await;
            assert!(same_page(&browser).await, "the page was reloaded");
            tx.send(()).unwrap();
            tokio::task::spawn_blocking(move || restarter.join().unwrap())
                .await
                .unwrap();
        }
        until(&browser, Duration::from_secs(20), "recovery after the restart", |rows, banner| {
            banner.is_none() && state(rows, "Deployment", "adderservice") == "missing"
        })
        .await;
        {
            let f = f.clone();
            blocking(move || f.lock().unwrap().sync(&["--no-wait"]));
        }
        until(&browser, Duration::from_secs(10), "in sync on the new server", |rows, banner| {
            banner.is_none() && state(rows, "Deployment", "adderservice") == "in sync"
        })
        .await;

        // Another current context: the wrong-context banner, until it is back.
        {
            let f = f.clone();
            blocking(move || {
                let f = f.lock().unwrap();
                f.kubectl_ok(&["config", "set-context", "elsewhere", "--cluster=minikube", "--user=minikube"]);
                f.kubectl_ok(&["config", "use-context", "elsewhere"]);
            });
        }
        until(&browser, Duration::from_secs(10), "the wrong-context banner", |_, banner| {
            banner == Some("wrong-context")
        })
        .await;
        {
            let f = f.clone();
            blocking(move || f.lock().unwrap().kubectl_ok(&["config", "use-context", "minikube"]));
        }
        until(&browser, Duration::from_secs(15), "the banner gone", |_, banner| banner.is_none()).await;
        assert!(same_page(&browser).await, "the page was reloaded");
        Ok::<(), fantoccini::error::CmdError>(())
    }
    .await;
    let _ = browser.close().await;
    drop(dashboard);
    // The server's own runtime must not be dropped inside this one.
    let f = std::sync::Arc::try_unwrap(f)
        .ok()
        .expect("no step holds the fixture");
    blocking(move || drop(f));
    outcome.expect("browser session");
}

#[test]
fn api_state_is_the_page_as_json_with_security_headers() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    let head = f.commit("docs: nothing for the cluster");
    let dashboard = Dashboard::start(&f);
    let deadline = Instant::now() + Duration::from_secs(20);
    let doc: Value = loop {
        let (status, headers, body) = dashboard.get("/api/state");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header("x-content-type-options"), Some("nosniff"));
        assert_eq!(header("x-frame-options"), Some("DENY"));
        assert!(
            header("content-security-policy").is_some_and(|v| v.contains("default-src 'none'")
                && v.contains("script-src 'self'")
                && !v.contains("unsafe")),
            "{headers:?}"
        );
        let doc: Value = serde_json::from_str(&body).unwrap();
        if doc["environments"][0]["banner"].is_null()
            && doc["environments"][0]["head"]["id"] == head
        {
            break doc;
        }
        assert!(Instant::now() < deadline, "never live: {body}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let env = &doc["environments"][0];
    assert_eq!(env["name"], ENV);
    assert_eq!(env["context"], "minikube");
    assert_eq!(env["commitsAhead"], 1);
    assert_eq!(
        env["commits"][0]["subject"],
        "docs: nothing for the cluster"
    );
    assert_eq!(env["commits"][0]["deploy"], false);
    assert_eq!(env["synced"]["subject"], "initial manifests");
    assert_eq!(
        env["counts"],
        serde_json::json!([{"state": "in sync", "count": 8}])
    );
    let adder = env["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["name"] == "adderservice")
        .unwrap();
    assert_eq!(adder["state"], "in sync");
    assert_eq!(adder["health"], serde_json::json!({"state": "ready"}));
    assert_eq!(
        adder["replicas"],
        serde_json::json!({"ready": 1, "desired": 1})
    );
    assert_eq!(adder["images"][0]["tag"], "v1");
    let (_, _, yaml) = dashboard.get("/api/state?output=yaml");
    assert!(yaml.starts_with("environments:"), "{yaml}");
    let (status, _, _) = dashboard.get("/api/state?output=text");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    // A name rebound to 127.0.0.1 by another site is not answered.
    let mut stream = std::net::TcpStream::connect(dashboard.addr).unwrap();
    write!(
        stream,
        "GET /api/state HTTP/1.1\r\nHost: evil.example:{}\r\nConnection: close\r\n\r\n",
        dashboard.addr.port()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
}

#[test]
fn an_unknown_environment_is_one_line_and_exit_2() {
    let f = Fixture::new(&system("v1"));
    let out = f.xtask(&["dashboard", "--env", "nope", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("nope"),
        "{stderr}"
    );
}
