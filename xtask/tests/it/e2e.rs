//! `cargo xtask dev` end to end, over plain HTTP: the runner starts everything,
//! a calculation through webapp shows its result and appears in /audit, the
//! report counts the pages visited, and SIGTERM leaves no process behind.

use crate::e2e_support;

use e2e_support::DevSystem;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn calculation_audit_report_and_clean_stop() {
    let system = tokio::task::spawn_blocking(DevSystem::start).await.unwrap();
    let http = reqwest::Client::new();

    let form = http.get(system.url("webapp", "/add")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert!(
        form.text()
            .await
            .unwrap()
            .contains("action=\"/add/calculate\"")
    );

    let result = http
        .post(system.url("webapp", "/add/calculate"))
        .form(&[("first", "2"), ("second", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(result.status(), 200);
    let page = result.text().await.unwrap();
    assert!(page.contains("2 + 3 = 5"), "result page: {page}");
    assert!(
        !page.contains("not recorded"),
        "the calculation was not recorded: {page}"
    );

    // The adder itself, found by webapp through the dev DNS, answers bad input with JSON.
    let bad = http
        .get(system.url("adderservice", "/add/two/3"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.json::<serde_json::Value>().await.unwrap()["error"].is_string());

    let audit = http
        .get(system.url("webapp", "/audit"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("2+3"), "audit page: {audit}");

    // Page events are recorded asynchronously: poll the report until /add shows.
    let deadline = Instant::now() + Duration::from_secs(60);
    let counts = loop {
        let report = {
            let system = &system;
            tokio::task::block_in_place(|| system.report())
        };
        match report {
            Ok(counts) if counts.get("/add").copied().unwrap_or(0) >= 1 => break counts,
            other if Instant::now() > deadline => panic!("report never counted /add: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    assert!(
        counts.get("/add/calculate").copied().unwrap_or(0) >= 1,
        "{counts:?}"
    );

    let status = tokio::task::spawn_blocking(move || system.stop())
        .await
        .unwrap();
    assert!(
        status.success(),
        "xtask dev exit status after SIGTERM: {status}"
    );
}

#[test]
fn a_second_runner_on_the_same_state_is_refused() {
    let system = DevSystem::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("dev")
        .arg("--bin-dir")
        .arg(e2e_support::bin_dir())
        .arg("--state-dir")
        .arg(system.state_dir.path())
        .arg("--port-offset")
        .arg("30000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("another `cargo xtask dev`"), "{stderr}");
    assert!(system.stop().success());
}

#[test]
fn a_crashed_service_is_restarted() {
    let system = DevSystem::start();
    let adder_pid = || {
        e2e_support::descendants(system.pid())
            .into_iter()
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "adderservice")
            })
    };
    let first = adder_pid().expect("adderservice runs under xtask dev");
    unsafe { libc::kill(first as i32, libc::SIGKILL) };

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let second = adder_pid();
        if second.is_some_and(|p| p != first)
            && e2e_support::http_status(system.ports["adderservice"], "/add/2/3") == Some(200)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "adderservice was not restarted; log:\n{}",
            system.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        system.log().contains("adderservice | exited"),
        "the restart is logged"
    );
    assert!(system.stop().success());
}
