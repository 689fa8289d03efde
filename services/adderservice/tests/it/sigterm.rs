//! The real binary under a real SIGTERM, as the kubelet sends it: `/readyz` goes 503
//! first, every request sent during the drain delay (each on a fresh connection, so
//! the listener must still accept) is answered, then the process exits 0.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use micro_common::server::SHUTDOWN_DELAY_ENV;
use micro_common::testkit::{FreshConnections, free_port, wait_for_status};

/// Long enough that the load below ends inside it.
const DRAIN_SECS: u64 = 3;

/// Killed when the test ends, whatever happened.
struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_adderservice(port: u16) -> Service {
    let child = Command::new(env!("CARGO_BIN_EXE_adderservice"))
        .env("LISTEN_HOST", "127.0.0.1")
        .env("ADDERSERVICE_SERVICE_PORT", port.to_string())
        .env(SHUTDOWN_DELAY_ENV, DRAIN_SECS.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the adderservice binary");
    Service(child)
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
    let port = free_port();
    let mut service = spawn_adderservice(port);
    let base = format!("http://127.0.0.1:{port}");
    wait_for_status(&format!("{base}/readyz"), 200, Duration::from_secs(10))
        .await
        .expect("adderservice becomes ready");
    let client = FreshConnections::new(&base);

    client
        .assert_served_through_drain(
            "/add/2/3",
            || sigterm(&service.0),
            Duration::from_millis(500),
        )
        .await;

    let exit = tokio::task::spawn_blocking(move || {
        let exit = service.0.wait().unwrap();
        (exit, service)
    });
    let (exit, _service) = exit.await.unwrap();
    assert!(exit.success(), "a drained stop exits 0, got {exit}");
    assert!(
        client.status("/readyz").await.is_err(),
        "the listener is closed after the drain"
    );
}
