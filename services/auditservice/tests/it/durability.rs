//! Durability of the real binary: a calculation answered with 201 is still listed after
//! auditservice stops (SIGTERM) or is killed (SIGKILL) and starts again.

use crate::support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use micro_common::testkit;
use serde_json::{Value, json};
use support::decode;

struct Process {
    child: Child,
    base: String,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn spawn(database_url: &str) -> Process {
    let port = testkit::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_auditservice"))
        .env("DATABASE_URL", database_url)
        .env("AUDITSERVICE_SERVICE_PORT", port.to_string())
        .env("LISTEN_HOST", "127.0.0.1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the auditservice binary");
    let p = Process {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    testkit::wait_for_status(&format!("{}/readyz", p.base), 200, Duration::from_secs(30))
        .await
        .unwrap();
    p
}

impl Process {
    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal}");
    }

    /// Waits for the process to exit; returns whether it exited with status 0.
    async fn wait_exit(&mut self) -> bool {
        for _ in 0..200 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("auditservice did not exit within 10 s");
    }
}

async fn append(http: &reqwest::Client, base: &str, calc: &str, result: i64) -> (u16, Value) {
    match http
        .post(format!("{base}/append"))
        .json(&json!({"calc": calc, "calcResult": result}))
        .send()
        .await
    {
        Ok(r) => decode(r).await,
        // The process went away mid-request: no acknowledgement.
        Err(_) => (0, Value::Null),
    }
}

async fn listed(http: &reqwest::Client, base: &str) -> Vec<String> {
    let r = http
        .get(format!("{base}/list?limit=100"))
        .send()
        .await
        .unwrap();
    let (status, body) = decode(r).await;
    assert_eq!(status, 200, "{body}");
    body["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["calc"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn rows_survive_sigterm_and_sigkill() {
    let url = testkit::fresh_database().await;
    let http = reqwest::Client::new();

    let mut p = spawn(&url).await;
    assert_eq!(append(&http, &p.base, "2+3", 5).await.0, 201);
    p.signal("-TERM");
    assert!(p.wait_exit().await, "SIGTERM is a clean stop (exit 0)");
    drop(p);

    let mut p = spawn(&url).await;
    assert_eq!(listed(&http, &p.base).await, vec!["2+3"]);
    assert_eq!(append(&http, &p.base, "4+4", 8).await.0, 201);
    p.signal("-KILL");
    assert!(!p.wait_exit().await);
    drop(p);

    let p = spawn(&url).await;
    assert_eq!(listed(&http, &p.base).await, vec!["4+4", "2+3"]);
}

/// Appends race with the kill: every request that got its 201 must be listed afterwards.
#[tokio::test]
async fn every_acknowledged_row_survives_a_kill_under_load() {
    for signal in ["-TERM", "-KILL"] {
        let url = testkit::fresh_database().await;
        let http = reqwest::Client::new();
        let mut p = spawn(&url).await;
        let mut writers = tokio::task::JoinSet::new();
        for w in 0..8 {
            let (http, base) = (http.clone(), p.base.clone());
            writers.spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0..1000 {
                    let calc = format!("{w}:{i}");
                    match append(&http, &base, &calc, i).await.0 {
                        201 => acknowledged.push(calc),
                        _ => break,
                    }
                }
                acknowledged
            });
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        p.signal(signal);
        let clean = p.wait_exit().await;
        assert_eq!(clean, signal == "-TERM", "{signal}: exit status");
        drop(p);
        let mut acknowledged = Vec::new();
        while let Some(r) = writers.join_next().await {
            acknowledged.extend(r.unwrap());
        }
        assert!(
            !acknowledged.is_empty(),
            "{signal}: some appends succeeded before the stop"
        );

        let p = spawn(&url).await;
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let stored: Vec<String> = client
            .query("SELECT calc FROM audit.calculations", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|c| !stored.contains(c))
            .collect();
        assert!(
            missing.is_empty(),
            "{signal}: acknowledged but lost: {missing:?}"
        );
        assert!(!listed(&http, &p.base).await.is_empty());
    }
}
