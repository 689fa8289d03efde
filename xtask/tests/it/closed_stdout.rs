//! A reader that stops reading (`cargo xtask render --check | head -0`) ends
//! the command quietly: exit 0 as ripgrep does, no panic, no backtrace.

use std::process::{Command, Stdio};

fn xtask(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(args).env("RUST_BACKTRACE", "1");
    cmd
}

const RENDER_CHECK: &[&str] = &["render", "--env", "minikube", "--check"];

#[test]
fn render_check_prints_a_report_line() {
    // The baseline: with an open stdout the command does print, so the test
    // below really writes into a closed pipe.
    let out = xtask(RENDER_CHECK).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("all as rendered"));
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let mut child = xtask(RENDER_CHECK)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close our read end before the child writes: its first write gets EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert!(stderr.is_empty(), "expected nothing on stderr: {stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
