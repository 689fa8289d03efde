//! `cargo xtask registry`: a real registry answers the v2 API, over plain
//! HTTP and, with `--tls`, over HTTPS with the certificate it printed.

use crate::image_support;

use image_support::*;
use std::process::Command;

#[test]
fn plain_registry_serves_the_v2_api() {
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let _registry = start_registry(&addr, data.path(), false);
    wait_for_listener(&addr);
    let answer = http_retry(&addr, "GET", "/v2/_catalog", &[], "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("repositories"), "{}", answer.body);
}

#[test]
fn tls_registry_is_trusted_with_its_certificate() {
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut registry = start_registry(&addr, data.path(), true);
    wait_for_listener(&addr);
    let cert = data.path().join("certs/registry.crt");
    assert!(cert.exists(), "certificate written to {}", cert.display());
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(extra)
            .arg(format!("https://{addr}/v2/"))
            .output()
            .unwrap()
    };
    let trusted = curl(&["--cacert", cert.to_str().unwrap()]);
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&trusted.stdout).trim(), "{}");
    // Without the certificate a client refuses it: it really is TLS with our own cert.
    assert!(!curl(&[]).status.success());

    // The printed instructions name the engine's trust folder for this registry.
    let _ = Command::new("kill")
        .arg(registry.0.id().to_string())
        .status();
    let mut stdout = String::new();
    std::io::Read::read_to_string(registry.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(
        stdout.contains(&format!("/etc/docker/certs.d/{addr}/ca.crt")),
        "{stdout}"
    );
}
