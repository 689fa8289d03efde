//! `cargo xtask bench services`: throughput, latency and memory of the
//! services, measured on this machine against a private `dev` system built in
//! release mode.
//!
//! A lean load generator ([`super::load`]: one thread, keep-alive HTTP/1.1
//! connections, each sending its next request when the previous answer is
//! read) runs against adderservice `GET /add/2/3` and webapp
//! `POST /add/calculate`; each service's resident memory (VmRSS) is read idle
//! and, at its peak, under load.
//!
//! `--rate N` adds, after each saturation run, the same requests at a fixed N per second
//! (open loop, [`load::run_at_rate`]): latency counted from each request's intended send
//! time, so a service that falls behind shows its queue.
//!
//! Options come from the environment (the `bench` command line is shared):
//! `MICRO_BENCH_SECONDS` (default 10), `MICRO_BENCH_CONNECTIONS` (default 50),
//! `MICRO_BENCH_BIN_DIR` (use these binaries instead of a release build).

use super::load;
use crate::dev::{self, DevArgs, System};
use crate::local::process;
use crate::workspace::{self, Kind, SERVICES};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub struct ServicesBenchOptions {
    pub duration: Duration,
    pub connections: usize,
    pub bin_dir: Option<PathBuf>,
    /// `--rate N`: after each saturation run, the same requests at N per second, open loop.
    pub rate: Option<u32>,
}

/// How the generator drives a scenario.
#[derive(Clone, Copy)]
enum Mode {
    /// Every connection sends its next request when the previous answer is read: the
    /// throughput the service saturates at.
    Saturation,
    /// A fixed number of requests per second whatever the answers do: the latency at that
    /// load, queueing included.
    Rate(u32),
}

impl ServicesBenchOptions {
    pub fn from_env() -> Result<Self> {
        let number = |key: &str, default: u64| -> Result<u64> {
            match std::env::var(key) {
                Ok(text) => text
                    .parse()
                    .with_context(|| format!("{key}={text:?} is not a whole number")),
                Err(_) => Ok(default),
            }
        };
        let seconds = number("MICRO_BENCH_SECONDS", 10)?;
        let connections = number("MICRO_BENCH_CONNECTIONS", 50)? as usize;
        if seconds == 0 || connections == 0 {
            bail!("MICRO_BENCH_SECONDS and MICRO_BENCH_CONNECTIONS must be at least 1");
        }
        Ok(ServicesBenchOptions {
            duration: Duration::from_secs(seconds),
            connections,
            bin_dir: std::env::var_os("MICRO_BENCH_BIN_DIR").map(PathBuf::from),
            rate: None,
        })
    }
}

/// One kind of request the generator repeats.
struct Scenario {
    service: &'static str,
    method: &'static str,
    path: &'static str,
    form_body: Option<&'static str>,
}

/// What one scenario measured.
struct LoadResult {
    requests: u64,
    failures: u64,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    peak_rss_kb: BTreeMap<String, u64>,
}

pub fn run(opts: ServicesBenchOptions) -> Result<ExitCode> {
    let stop = process::catch_stop_signals();
    let bin_dir = match opts.bin_dir.clone() {
        Some(dir) => dir,
        None => dev::build_services(true)?,
    };
    let mut args = DevArgs {
        state_dir: Some(workspace::state_dir().join("bench")),
        port_offset: 0,
        ports: Vec::new(),
        dns_port: 0,
        bin_dir: Some(bin_dir),
        release: true,
        log: Some("warn".into()),
    };
    for service in SERVICES.iter().filter(|s| s.kind != Kind::Cli) {
        args.ports
            .push((service.name.to_string(), process::free_port()?));
    }
    let system = System::start(&args)?;
    system.wait_ready(Duration::from_secs(90), stop)?;
    // Ready means the port answers; give the services a moment to connect to
    // their dependencies before measuring "idle".
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_of(&system);

    let scenarios = [
        Scenario {
            service: "adderservice",
            method: "GET",
            path: "/add/2/3",
            form_body: None,
        },
        Scenario {
            service: "webapp",
            method: "POST",
            path: "/add/calculate",
            form_body: Some("first=2&second=3"),
        },
    ];
    let mut modes = vec![Mode::Saturation];
    modes.extend(opts.rate.map(Mode::Rate));
    let mut results = Vec::new();
    for scenario in &scenarios {
        for &mode in &modes {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let addr = SocketAddr::from(([127, 0, 0, 1], system.ports[scenario.service]));
            let how = match mode {
                Mode::Saturation => format!("{} connections", opts.connections),
                Mode::Rate(n) => format!("{n} req/s (open loop)"),
            };
            eprintln!(
                "loading {} {} {} with {how} for {}s",
                scenario.service,
                scenario.method,
                scenario.path,
                opts.duration.as_secs()
            );
            let result = measure(&system, addr, scenario, &opts, mode)?;
            results.push((scenario, mode, result));
        }
    }
    print_table(&results, &idle)?;
    drop(system);
    Ok(ExitCode::SUCCESS)
}

/// Warm up for a second, then load for the configured duration while sampling
/// every service's memory.
fn measure(
    system: &System,
    addr: SocketAddr,
    scenario: &Scenario,
    opts: &ServicesBenchOptions,
    mode: Mode,
) -> Result<LoadResult> {
    let request = load::request_bytes(addr, scenario.path, scenario.form_body);
    let drive = |request: Vec<u8>, duration: Duration| match mode {
        Mode::Saturation => load::run(addr, request, opts.connections, duration),
        Mode::Rate(n) => load::run_at_rate(addr, request, n, duration, opts.connections),
    };
    drive(request.clone(), Duration::from_secs(1))?;
    let sampling = Arc::new(AtomicBool::new(true));
    let pids = system.pids();
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak: BTreeMap<String, u64> = BTreeMap::new();
            while sampling.load(Ordering::SeqCst) {
                for (name, pid) in &pids {
                    let rss = vm_rss_kb(*pid).unwrap_or(0);
                    let entry = peak.entry(name.clone()).or_default();
                    *entry = (*entry).max(rss);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let outcome = drive(request, opts.duration);
    sampling.store(false, Ordering::SeqCst);
    let peak_rss_kb = sampler.join().expect("the memory sampler does not panic");
    let load::Outcome {
        mut latencies,
        failures,
        elapsed,
    } = outcome?;
    if latencies.is_empty() {
        bail!(
            "no request to {} {} succeeded",
            scenario.service,
            scenario.path
        );
    }
    // Exact percentiles: sort every latency.
    latencies.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        Duration::from_nanos(latencies[index])
    };
    Ok(LoadResult {
        requests: latencies.len() as u64,
        failures,
        elapsed,
        p50: percentile(0.50),
        p99: percentile(0.99),
        peak_rss_kb,
    })
}

fn rss_of(system: &System) -> BTreeMap<String, u64> {
    system
        .pids()
        .into_iter()
        .map(|(name, pid)| (name, vm_rss_kb(pid).unwrap_or(0)))
        .collect()
}

/// Resident memory of a process in kB, from /proc/<pid>/status.
fn vm_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn print_table(
    results: &[(&Scenario, Mode, LoadResult)],
    idle: &BTreeMap<String, u64>,
) -> std::io::Result<()> {
    use crate::cli::table::{Align, aligned};
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    let mb = |kb: u64| format!("{:.1} MB", kb as f64 / 1024.0);
    let header = ["endpoint", "load", "req/s", "p50", "p99", "failures"];
    let load_rows = results.iter().map(|(scenario, mode, r)| {
        let load = match mode {
            Mode::Saturation => "saturation".to_string(),
            Mode::Rate(n) => format!("{n}/s open loop"),
        };
        let rate = r.requests as f64 / r.elapsed.as_secs_f64();
        vec![
            format!("{} {} {}", scenario.service, scenario.method, scenario.path),
            load,
            format!("{rate:.0}"),
            ms(r.p50),
            ms(r.p99),
            r.failures.to_string(),
        ]
    });
    let rows: Vec<Vec<String>> = std::iter::once(header.map(String::from).to_vec())
        .chain(load_rows)
        .collect();
    let numbers = [
        Align::Left,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
        Align::Right,
    ];
    outln!("\n{}", aligned(&rows, &numbers))?;

    let peaks = results.iter().map(|(scenario, mode, _)| match mode {
        Mode::Saturation => format!("peak ({})", scenario.service),
        Mode::Rate(n) => format!("peak ({} {n}/s)", scenario.service),
    });
    let header: Vec<String> = ["service".to_string(), "idle RSS".to_string()]
        .into_iter()
        .chain(peaks)
        .collect();
    let memory_rows = idle.iter().map(|(name, idle_kb)| {
        let peaks = results
            .iter()
            .map(|(_, _, r)| mb(r.peak_rss_kb.get(name).copied().unwrap_or(0)));
        [name.clone(), mb(*idle_kb)]
            .into_iter()
            .chain(peaks)
            .collect()
    });
    let rows: Vec<Vec<String>> = std::iter::once(header).chain(memory_rows).collect();
    let right: Vec<Align> = std::iter::once(Align::Left)
        .chain(std::iter::repeat(Align::Right))
        .take(rows[0].len())
        .collect();
    out!("{}", aligned(&rows, &right))?;
    Ok(())
}
