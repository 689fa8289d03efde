//! `cargo xtask registry` on a port another program holds: one clear error
//! naming the port, and no "on http://… Ctrl-C stops it" announced first.

use std::net::TcpListener;
use std::process::Command;

#[test]
fn a_busy_port_is_one_error_naming_it_before_any_announcement() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["registry", "--listen", &addr.to_string(), "--data"])
        .arg(data.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.is_empty(), "nothing announced: {stdout}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "port {} on 127.0.0.1 is already in use",
            addr.port()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("--listen"), "{stderr}");
}
