//! The one-line errors of build/build-all that need no build: each exits
//! non-zero with `error: <cause>` as its only line.

use crate::image_support;

use image_support::*;
use std::process::Command;

fn xtask(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(args);
    cmd
}

fn assert_one_line_error(out: &std::process::Output, expected: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    let err = stderr(out);
    assert_eq!(err.lines().count(), 1, "exactly one line: {err}");
    for part in expected {
        assert!(
            err.starts_with("error: ") && err.contains(part),
            "`{part}` missing in: {err}"
        );
    }
}

#[test]
fn unknown_service_lists_the_valid_ones() {
    let out = xtask(&["build", "adderservice", "nosuchservice"])
        .output()
        .unwrap();
    assert_one_line_error(
        &out,
        &[
            "unknown service `nosuchservice`",
            "adderservice, auditservice, eventservice, webapp, report",
        ],
    );
}

#[test]
fn unreachable_engine_names_the_socket() {
    let socket = std::env::temp_dir().join(format!("{}-no-docker.sock", unique("sock")));
    let host = format!("unix://{}", socket.display());
    let out = xtask(&["build-all"])
        .env("DOCKER_HOST", &host)
        .output()
        .unwrap();
    assert_one_line_error(&out, &["Docker engine unreachable", &host]);
}

#[test]
fn push_without_a_registry_says_how_to_name_one() {
    let out = xtask(&["build-all", "--push"]).output().unwrap();
    assert_one_line_error(
        &out,
        &["--push needs a registry", "--registry HOST:PORT", "--env"],
    );
}

#[test]
fn unknown_environment_is_reported() {
    let out = xtask(&["build-all", "--push", "--env", "nosuchenv"])
        .output()
        .unwrap();
    assert_one_line_error(&out, &["nosuchenv"]);
}
