//! `cargo xtask bench dashboard`: the dashboard on `bench sync`'s synthetic
//! environment (500 Deployments + 500 Services + the Namespace) on an
//! in-process test server: time to first byte and size of the page, how long
//! a `kubectl scale` takes to show as drifted in `/api/state`, and the
//! requests the dashboard sends to the API server while nothing changes.
//!
//! Like `bench sync`, a debug build hands over to a release build
//! (`MICRO_BENCH_DASHBOARD_PROFILE=debug` measures the debug one).
//! `MICRO_BENCH_DASHBOARD_IDLE_SECS` sets the idle window (default 60).

use super::sync::{ENV, ScratchDir, committed_scenario, synthetic_scenario, xtask_sync};
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use testcluster::{BlockingTestCluster, Options};

/// Pages fetched for the time-to-first-byte figures.
const FETCHES: usize = 20;

struct Dashboard(Child, SocketAddr);

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run() -> Result<ExitCode> {
    let idle = std::env::var("MICRO_BENCH_DASHBOARD_IDLE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60u64);
    let scenario = synthetic_scenario(500);
    let objects = scenario.files.len();
    eprintln!("bench dashboard: syncing {objects} objects…");
    let server = BlockingTestCluster::start(Options {
        rollout_delay: Duration::from_millis(100),
        ..Options::default()
    })?;
    let repo = ScratchDir::new("dashboard")?;
    committed_scenario(repo.path(), &scenario)?;
    xtask_sync(server.kubeconfig(), repo.path())?;

    let started = Instant::now();
    let dashboard = start(server.kubeconfig(), repo.path())?;
    wait_in_sync(dashboard.1, objects)?;
    let first_view = started.elapsed();

    let mut firsts = Vec::new();
    let mut wholes = Vec::new();
    let mut size = 0;
    for _ in 0..FETCHES {
        let (first, whole, bytes) = fetch(dashboard.1, "/")?;
        firsts.push(first);
        wholes.push(whole);
        size = bytes;
    }
    firsts.sort();
    wholes.sort();
    let (_, _, state_size) = fetch(dashboard.1, "/api/state")?;

    let drift = scale_to_drift(server.kubeconfig(), dashboard.1)?;
    // Let the drift's recompute and the rollout's status updates settle.
    std::thread::sleep(Duration::from_secs(2));

    eprintln!("bench dashboard: counting requests while idle for {idle}s…");
    server.cluster().clear_audit_events();
    std::thread::sleep(Duration::from_secs(idle));
    let events = server.audit_events();
    let watches = events.iter().filter(|e| e.verb == "watch").count();
    let others = events.len() - watches;
    let per_minute = |n: usize| n as f64 * 60.0 / idle as f64;

    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
    let rows = [
        (
            "environment",
            format!("{objects} objects (500 Deployments + 500 Services + Namespace)"),
        ),
        ("first complete view after start", ms(first_view)),
        (
            "GET / time to first byte (median, p90)",
            format!(
                "{}, {}",
                ms(firsts[FETCHES / 2]),
                ms(firsts[FETCHES * 9 / 10])
            ),
        ),
        ("GET / whole page (median)", ms(wholes[FETCHES / 2])),
        ("page size", format!("{} KiB", size / 1024)),
        ("/api/state size", format!("{} KiB", state_size / 1024)),
        ("kubectl scale → drifted in /api/state", ms(drift)),
        (
            "idle requests to the API server",
            format!(
                "{:.1}/min watch (re)starts, {:.1}/min other (4 watches: namespaces, deployments, services, the inventory)",
                per_minute(watches),
                per_minute(others)
            ),
        ),
    ];
    for (what, value) in rows {
        outln!("{what:<42}{value}")?;
    }
    outln!(
        "(xtask and the server built {}; idle window {idle}s)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

fn start(kubeconfig: &std::path::Path, repo: &std::path::Path) -> Result<Dashboard> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let mut child = Command::new(exe)
        .args([
            "dashboard",
            "--env",
            ENV,
            "--listen",
            "127.0.0.1:0",
            "--root",
        ])
        .arg(repo)
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting xtask dashboard")?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("dashboard stdout")?).read_line(&mut line)?;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("no address in the dashboard's first line {line:?}"))?;
    Ok(Dashboard(child, addr))
}

/// One GET over a fresh connection: time to the first response byte, time
/// to the last, and the body size.
fn fetch(addr: SocketAddr, path: &str) -> Result<(Duration, Duration, usize)> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut first = [0u8; 1];
    stream.read_exact(&mut first)?;
    let ttfb = started.elapsed();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest)?;
    let whole = started.elapsed();
    let head_end = rest
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| i + 4);
    Ok((ttfb, whole, rest.len() - head_end))
}

fn state(addr: SocketAddr) -> Result<Value> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET /api/state HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(serde_json::from_str(body)?)
}

fn count(doc: &Value, wanted: &str) -> u64 {
    doc["environments"][0]["counts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["state"] == wanted)
        .and_then(|c| c["count"].as_u64())
        .unwrap_or(0)
}

fn wait_in_sync(addr: SocketAddr, objects: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let doc = state(addr)?;
        if doc["environments"][0]["banner"].is_null() && count(&doc, "in sync") == objects as u64 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the dashboard never showed {objects} objects in sync");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn scale_to_drift(kubeconfig: &std::path::Path, addr: SocketAddr) -> Result<Duration> {
    let out = Command::new("kubectl")
        .args(["scale", "deploy/svc-000", "-n", "micro", "--replicas=3"])
        .env("KUBECONFIG", kubeconfig)
        .output()
        .context("running kubectl")?;
    if !out.status.success() {
        bail!(
            "kubectl scale failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let scaled = Instant::now();
    loop {
        if count(&state(addr)?, "drifted") == 1 {
            return Ok(scaled.elapsed());
        }
        if scaled.elapsed() > Duration::from_secs(30) {
            bail!("the scaled Deployment never showed as drifted");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
