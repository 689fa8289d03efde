//! The real kubectl against Pods bound to local processes (`forward.testcluster.micro/<port>`,
//! `log.testcluster.micro/<container>`, `testcluster.micro/exit-code`): port-forward
//! to a real redis-server, logs, and a one-off Pod's lifecycle.
use crate::common;

use common::{Kube, RedisServer, path, pod, redis_command, start};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn apply(k: &Kube, file: &str, text: &str) {
    let f = k.write(file, text);
    k.kubectl(&["apply", "--server-side", "-f", path(&f)]).ok();
}

fn wait_phase(k: &Kube, pod: &str, phase: &str) {
    k.kubectl(&[
        "wait",
        "-n",
        "micro",
        &format!("pod/{pod}"),
        &format!("--for=jsonpath={{.status.phase}}={phase}"),
        "--timeout=20s",
    ])
    .ok();
}

/// `kubectl port-forward pod/redis-0 :6379` running; returns it and its local port.
fn port_forward(k: &Kube, pod: &str, remote: u16) -> (std::process::Child, u16) {
    let mut child = Command::new("kubectl")
        .args([
            "port-forward",
            "-n",
            "micro",
            &format!("pod/{pod}"),
            &format!(":{remote}"),
        ])
        .env("KUBECONFIG", k.cluster.kubeconfig())
        .env("HOME", k.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl is installed");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    // kubectl prints a line per connection: keep reading, or it dies of a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    // "Forwarding from 127.0.0.1:41234 -> 6379"
    let port = line
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).ok();
            panic!("kubectl port-forward did not start: {line:?} {err}")
        });
    (child, port)
}

#[test]
fn kubectl_port_forward_reaches_the_redis_server_a_pod_is_bound_to() {
    let k = start();
    k.apply_fixtures();
    let redis = RedisServer::start();
    let binding = (
        "forward.testcluster.micro/6379",
        format!("127.0.0.1:{}", redis.port),
    );
    apply(
        &k,
        "redis-0.yaml",
        &pod("redis-0", &["redis"], "Always", &[binding]),
    );
    wait_phase(&k, "redis-0", "Running");

    let (mut forward, local) = port_forward(&k, "redis-0", 6379);
    for round in 0..2 {
        // Each local connection is its own pair of SPDY streams.
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(redis_command(&mut conn, &["PING"]), "+PONG");
        let value = format!("v{round}");
        assert_eq!(redis_command(&mut conn, &["SET", "k", &value]), "+OK");
        assert_eq!(redis_command(&mut conn, &["GET", "k"]), value);
    }
    let _ = forward.kill();
    let _ = forward.wait();
    let connects: Vec<_> = k
        .audit()
        .into_iter()
        .filter(|e| e.subresource.as_deref() == Some("portforward"))
        .collect();
    assert_eq!(
        connects.len(),
        1,
        "one WebSocket for the session: {connects:#?}"
    );
    assert_eq!(connects[0].method, "GET");
}

#[test]
fn a_forward_to_an_unbound_port_says_how_to_bind_it() {
    let k = start();
    k.apply_fixtures();
    apply(&k, "p.yaml", &pod("lonely", &["app"], "Always", &[]));
    wait_phase(&k, "lonely", "Running");
    let (mut forward, local) = port_forward(&k, "lonely", 8080);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", local)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = conn.write_all(b"hello");
    let mut buf = Vec::new();
    let _ = conn.read_to_end(&mut buf);
    assert!(buf.is_empty(), "nothing reaches an unbound port");
    std::thread::sleep(Duration::from_millis(300));
    let _ = forward.kill();
    let mut err = String::new();
    forward
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("forward.testcluster.micro/<port>"), "{err}");
}

#[test]
fn native_spdy_is_refused_with_a_status() {
    let k = start();
    k.apply_fixtures();
    apply(&k, "p.yaml", &pod("web-0", &["web"], "Always", &[]));
    let addr = k.cluster.cluster().addr();
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST /api/v1/namespaces/micro/pods/web-0/portforward HTTP/1.1\r\nHost: {addr}\r\n\
         Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\
         Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = vec![0u8; 4096];
    let n = conn.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("\"kind\":\"Status\"") && answer.contains("Upgrade request required"),
        "{answer}"
    );
}

#[test]
fn kubectl_logs_reads_the_bound_file_with_tail_container_and_follow() {
    let k = start();
    k.apply_fixtures();
    let log = k.write("web.log", "one\ntwo\nthree\n");
    let sidecar = k.write("sidecar.log", "side\n");
    apply(
        &k,
        "p.yaml",
        &pod(
            "web-0",
            &["web", "sidecar"],
            "Never",
            &[
                ("log.testcluster.micro/web", path(&log).to_string()),
                ("log.testcluster.micro/sidecar", path(&sidecar).to_string()),
            ],
        ),
    );
    wait_phase(&k, "web-0", "Running");
    assert_eq!(
        k.kubectl(&["logs", "-n", "micro", "web-0", "-c", "web"])
            .ok()
            .stdout,
        "one\ntwo\nthree\n"
    );
    assert_eq!(
        k.kubectl(&["logs", "-n", "micro", "web-0", "-c", "web", "--tail=2"])
            .ok()
            .stdout,
        "two\nthree\n"
    );
    assert_eq!(
        k.kubectl(&["logs", "-n", "micro", "web-0", "-c", "sidecar"])
            .ok()
            .stdout,
        "side\n"
    );
    // kubectl picks the first container itself when none is named.
    let first = k.kubectl(&["logs", "-n", "micro", "web-0"]);
    assert_eq!(first.ok().stdout, "one\ntwo\nthree\n");
    assert!(
        first.stderr.contains("Defaulted container \"web\""),
        "{}",
        first.stderr
    );
    let wrong = k.kubectl(&["logs", "-n", "micro", "web-0", "-c", "nope"]);
    assert!(
        wrong
            .stderr
            .contains("container nope is not valid for pod web-0"),
        "{}",
        wrong.stderr
    );

    // -f: what is appended arrives; the stream ends when the Pod has ended.
    let mut follow = Command::new("kubectl")
        .args([
            "logs", "-f", "-n", "micro", "web-0", "-c", "web", "--tail=1",
        ])
        .env("KUBECONFIG", k.cluster.kubeconfig())
        .env("HOME", k.dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(follow.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "three\n");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(b"four\n")
        .unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "four\n");
    k.kubectl(&[
        "annotate",
        "-n",
        "micro",
        "pod/web-0",
        "testcluster.micro/exit-code=0",
    ])
    .ok();
    let status = follow.wait().unwrap();
    assert!(status.success(), "kubectl logs -f ends with the Pod");
}

#[test]
fn a_one_off_pod_goes_pending_running_then_succeeded_or_failed() {
    // Pods start after the rollout delay: long enough to see Pending.
    let k = common::start_with(testcluster::Options {
        rollout_delay: Duration::from_millis(1500),
        ..testcluster::Options::default()
    });
    k.apply_fixtures();
    apply(&k, "ok.yaml", &pod("ok", &["job"], "Never", &[]));
    let phase = |name: &str| {
        k.kubectl(&[
            "get",
            "pod",
            name,
            "-n",
            "micro",
            "-o",
            "jsonpath={.status.phase}",
        ])
        .ok()
        .stdout
        .clone()
    };
    assert_eq!(phase("ok"), "Pending", "right after create");
    wait_phase(&k, "ok", "Running");
    assert_eq!(
        phase("ok"),
        "Running",
        "stays Running until the test gives an exit code"
    );
    k.kubectl(&[
        "annotate",
        "-n",
        "micro",
        "pod/ok",
        "testcluster.micro/exit-code=0",
    ])
    .ok();
    wait_phase(&k, "ok", "Succeeded");
    let done = k.kubectl(&["get", "pod", "ok", "-n", "micro", "-o", "json"]);
    let done: serde_json::Value = serde_json::from_str(&done.ok().stdout).unwrap();
    let state = &done["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(state["exitCode"], 0);
    assert_eq!(state["reason"], "Completed");

    apply(
        &k,
        "bad.yaml",
        &pod(
            "bad",
            &["job"],
            "Never",
            &[("testcluster.micro/exit-code", "3".into())],
        ),
    );
    wait_phase(&k, "bad", "Failed");
    let cols = k
        .kubectl(&["get", "pod", "bad", "-n", "micro"])
        .ok()
        .stdout
        .clone();
    assert!(
        cols.lines()
            .nth(1)
            .is_some_and(|l| l.contains("Error") || l.contains("Failed")),
        "{cols}"
    );

    // A long-running Pod (restartPolicy Always) ignores an exit code.
    apply(
        &k,
        "svc.yaml",
        &pod(
            "svc",
            &["web"],
            "Always",
            &[("testcluster.micro/exit-code", "0".into())],
        ),
    );
    wait_phase(&k, "svc", "Running");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(phase("svc"), "Running");
}
