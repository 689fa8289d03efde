//! `sync --watch --fetch --listen`: GitHub push webhooks wake the watch at
//! once. The watch polls only every hour here, so every sync after the first
//! one is the webhook's doing; requests are plain HTTP/1.1 over a socket, the
//! way GitHub sends them.

use crate::gitops_support;

use gitops_support::*;
use hmac::{KeyInit, Mac};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const SECRET: &str = "It's a Secret to Everybody";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2_hmac::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One request with `headers`; the response's status code.
fn request(address: SocketAddr, head: &str, headers: &[(&str, String)], body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(address).expect("connect to the webhook server");
    let mut text = format!("{head} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    stream.write_all(text.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

/// A `POST /webhook` of `body` as GitHub sends it, with `signature` if any.
fn deliver(address: SocketAddr, event: &str, body: &[u8], signature: Option<String>) -> u16 {
    let mut headers = vec![
        ("Content-Type", "application/json".to_string()),
        ("Content-Length", body.len().to_string()),
        ("X-GitHub-Event", event.to_string()),
        (
            "X-GitHub-Delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_string(),
        ),
    ];
    if let Some(signature) = signature {
        headers.push(("X-Hub-Signature-256", signature));
    }
    request(address, "POST /webhook", &headers, body)
}

fn push_body(reference: &str) -> Vec<u8> {
    format!(r#"{{"ref":"{reference}","before":"0000","after":"1111","repository":{{"full_name":"me/micro"}}}}"#)
        .into_bytes()
}

fn configmap_exists(f: &Fixture, name: &str) -> bool {
    f.kubectl(&["get", &format!("configmap/{name}"), "-n", "micro"])
        .status
        .success()
}

#[test]
fn a_signed_push_syncs_at_once_and_everything_else_is_refused_or_ignored() {
    let f = Fixture::new(&system("v1"));
    let branch = git2::Repository::open(f.root())
        .unwrap()
        .head()
        .unwrap()
        .name()
        .unwrap()
        .to_string();
    let clone_dir = tempfile::tempdir().unwrap();
    git2::Repository::clone(f.root().to_str().unwrap(), clone_dir.path())
        .expect("clone the fixture repository");
    let secret_dir = tempfile::tempdir().unwrap();
    let secret_file = secret_dir.path().join("webhook-secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();

    let mut child = f
        .xtask_command_in(
            clone_dir.path(),
            &[
                "sync",
                "--env",
                ENV,
                "--watch",
                "--interval",
                "1h",
                "--fetch",
                "--no-wait",
                "--listen",
                "127.0.0.1:0",
                "--webhook-secret-file",
                secret_file.to_str().unwrap(),
            ],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let mut seen = Vec::new();
    let listening = wait_for_line(&lines, "webhook: listening on http://", &mut seen);
    let address: SocketAddr = listening
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {listening:?}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !configmap_exists(&f, "settings") {
        assert!(
            Instant::now() < deadline,
            "the watch never made its first sync"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A new object upstream only: the watched clone learns of it by fetching.
    f.write_manifest(
        "configmap-pushed.yaml",
        &configmap("pushed", "BY", "webhook"),
    );
    f.commit("a ConfigMap the webhook deploys");

    assert_eq!(request(address, "GET /healthz", &[], b""), 200);
    let push = push_body(&branch);
    let wrong = sign("not the secret", &push);
    assert_eq!(deliver(address, "push", &push, Some(wrong)), 401);
    assert_eq!(deliver(address, "push", &push, None), 401);
    // Signed for another body: the signature covers the raw bytes.
    let other_body = push_body("refs/heads/elsewhere");
    assert_eq!(
        deliver(address, "push", &push, Some(sign(SECRET, &other_body))),
        401
    );
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    assert_eq!(
        deliver(address, "ping", ping, Some(sign(SECRET, ping))),
        202
    );
    assert_eq!(
        deliver(
            address,
            "push",
            &other_body,
            Some(sign(SECRET, &other_body))
        ),
        202
    );
    let too_large = [
        ("Content-Type", "application/json".to_string()),
        ("Content-Length", (64 * 1024 * 1024).to_string()),
        ("X-GitHub-Event", "push".to_string()),
    ];
    assert_eq!(request(address, "POST /webhook", &too_large, b""), 413);
    wait_for_line(&lines, "ignored a push to refs/heads/elsewhere", &mut seen);
    assert!(
        !configmap_exists(&f, "pushed"),
        "a refused or ignored request synced"
    );

    assert_eq!(
        deliver(address, "push", &push, Some(sign(SECRET, &push))),
        202
    );
    let started = wait_for_line(&lines, "after the push arrived", &mut seen);
    eprintln!("latency: {started}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !configmap_exists(&f, "pushed") {
        assert!(
            Instant::now() < deadline,
            "the pushed commit was never synced"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let status = terminate(&mut child);
    assert!(status.success(), "watch did not stop cleanly: {status:?}");
    let mut printed = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .unwrap();
    // The first sync and the webhook's; nothing for the refused and ignored ones.
    // Each line starts with the local time (`12:00:05 synced 60d654c: …`).
    let syncs = printed
        .lines()
        .filter(|l| {
            l.split_once(' ')
                .is_some_and(|(_, rest)| rest.starts_with("synced "))
        })
        .count();
    assert_eq!(syncs, 2, "{printed}");
    let all = seen.join("\n");
    assert_eq!(all.matches("fetching now").count(), 1, "{all}");
    assert_eq!(all.matches("refused a request").count(), 3, "{all}");
    assert!(!all.contains(SECRET), "the secret was printed:\n{all}");
}

#[test]
fn listen_needs_watch_fetch_and_a_readable_non_empty_secret() {
    let f = Fixture::new(&system("v1"));
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let missing = dir.path().join("missing");
    let cases: [(&[&str], &str); 4] = [
        (&["--listen", "127.0.0.1:0"], "--watch"),
        (
            &["--watch", "--fetch", "--listen", "127.0.0.1:0"],
            "--webhook-secret-file",
        ),
        (
            &[
                "--watch",
                "--fetch",
                "--listen",
                "127.0.0.1:0",
                "--webhook-secret-file",
                empty.to_str().unwrap(),
            ],
            "is empty",
        ),
        (
            &[
                "--watch",
                "--fetch",
                "--listen",
                "127.0.0.1:0",
                "--webhook-secret-file",
                missing.to_str().unwrap(),
            ],
            "missing",
        ),
    ];
    f.clear_events();
    for (extra, expected) in cases {
        let mut args = vec!["sync", "--env", ENV];
        args.extend_from_slice(extra);
        let out = f.xtask(&args);
        assert!(!out.status.success(), "{extra:?} was accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expected), "{extra:?}: {}", describe(&out));
    }
    assert!(
        f.events().is_empty(),
        "a refused start talked to the cluster: {:?}",
        f.events()
    );
}
