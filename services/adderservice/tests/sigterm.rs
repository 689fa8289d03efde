//! The real binary under a real SIGTERM, as the kubelet sends it: `/readyz` goes 503
//! first, every request sent during the drain delay (each on a fresh connection, so
//! the listener must still accept) is answered, then the process exits 0.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use micro_common::server::SHUTDOWN_DELAY_ENV;

/// Long enough that the load below ends inside it.
const DRAIN_SECS: u64 = 3;

/// A port that was free a moment ago (the binary binds it itself).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Service {
    child: Child,
    base: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_adderservice() -> Service {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_adderservice"))
        .env("LISTEN_HOST", "127.0.0.1")
        .env("ADDERSERVICE_SERVICE_PORT", port.to_string())
        .env(SHUTDOWN_DELAY_ENV, DRAIN_SECS.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the adderservice binary");
    Service {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {}", child.id());
}

#[tokio::test]
async fn sigterm_turns_readiness_off_first_and_serves_every_request_of_the_drain() {
    let mut service = spawn_adderservice();
    let fresh_connections = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let status = {
        let base = service.base.clone();
        move |path: &'static str| {
            let (client, url) = (fresh_connections.clone(), format!("{base}{path}"));
            async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
        }
    };
    // Up: the binary binds after start-up, so poll until it answers.
    let mut up = false;
    for _ in 0..100 {
        if status("/readyz").await.ok() == Some(200) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "adderservice never became ready");

    let load_stop = micro_common::CancellationToken::new();
    let load = tokio::spawn({
        let (stop, status) = (load_stop.clone(), status.clone());
        async move {
            let mut answers = Vec::new();
            while !stop.is_cancelled() {
                answers.push(status("/add/2/3").await);
            }
            answers
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    sigterm(&service.child);
    let mut readiness = status("/readyz").await.ok();
    while readiness == Some(200) {
        readiness = status("/readyz").await.ok();
    }
    assert_eq!(readiness, Some(503), "readiness says it is stopping");
    // Load keeps coming, as it does until the endpoints controller catches up.
    tokio::time::sleep(Duration::from_millis(500)).await;
    load_stop.cancel();
    let answers = load.await.unwrap();
    let failed: Vec<_> = answers.iter().filter(|a| !matches!(a, Ok(200))).collect();
    assert!(
        failed.is_empty(),
        "refused or failed in the drain window: {failed:?}"
    );
    assert!(answers.len() > 2, "the load ran: {answers:?}");

    let exit = tokio::task::spawn_blocking(move || {
        let exit = service.child.wait().unwrap();
        (exit, service)
    });
    let (exit, service) = exit.await.unwrap();
    assert!(exit.success(), "a drained stop exits 0, got {exit}");
    assert!(
        status("/readyz").await.is_err(),
        "the listener is closed after the drain"
    );
    drop(service);
}
