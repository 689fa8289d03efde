//! User errors of `cargo xtask dev` / `report` / `test`: one clear line, exit 2,
//! nothing started.

use std::process::{Command, Output};

fn xtask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("run xtask")
}

fn assert_user_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn report_without_a_running_dev_system_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = xtask(&["report", "--state-dir", dir.path().to_str().unwrap()]);
    assert_user_error(&out, "no `cargo xtask dev` is running");
}

#[test]
fn report_against_an_unknown_environment_names_the_known_ones() {
    let out = xtask(&["report", "--env", "nosuch"]);
    assert_user_error(&out, "no environment `nosuch`");
}

#[test]
fn dev_rejects_unknown_services_and_bad_ports() {
    let out = xtask(&["dev", "--port", "nosuch=1234"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown service `nosuch`"));
    let out = xtask(&["dev", "--port", "webapp=http"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad port `http`"));
    let out = xtask(&["dev", "--port", "report=1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("command-line tool"));
}

#[test]
fn dev_with_missing_binaries_stops_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let out = xtask(&[
        "dev",
        "--bin-dir",
        dir.path().to_str().unwrap(),
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
    ]);
    assert_user_error(&out, "adderservice is missing");
    assert!(
        !dir.path().join("state/postgres").exists(),
        "nothing was started"
    );
}

#[test]
fn dev_refuses_a_port_that_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = xtask(&[
        "dev",
        "--bin-dir",
        dir.path().to_str().unwrap(),
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
        "--port",
        &format!("webapp={port}"),
    ]);
    assert_user_error(&out, &format!("port {port} for webapp is in use"));
}
