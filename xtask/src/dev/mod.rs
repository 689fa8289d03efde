//! `cargo xtask dev`: the whole system as local processes (the fuge equivalent).
//!
//! A private PostgreSQL and Redis (state under `target/xtask/dev/`), a DNS
//! server answering the cluster's SRV/A records, and every service with the
//! environment Kubernetes would give it; prefixed logs, restarts with backoff,
//! and a clean stop on Ctrl-C / SIGTERM.

mod dns;
mod state;
mod supervisor;

pub use state::DevState;

use crate::local::postgres::{self, Postgres, PostgresConfig};
use crate::local::process;
use crate::local::redis::{self, Redis, RedisConfig};
use crate::workspace::{self, Kind, SERVICES};
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use supervisor::Supervised;

pub const NAMESPACE: &str = "micro";
pub const DNS_SUFFIX: &str = "svc.cluster.local";
/// Cache lifetime of the dev DNS answers (seconds).
const DNS_TTL: u32 = 5;
/// The database role and database the services use.
const DB_USER: &str = "micro";
const DB_NAME: &str = "micro";

#[derive(clap::Args, Clone, Debug)]
#[command(
    after_help = "Examples:\n  cargo xtask dev\n  cargo xtask dev --port-offset 100 --state-dir /tmp/micro-dev"
)]
pub struct DevArgs {
    /// Folder for the PostgreSQL and Redis data (kept between runs).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Added to every service's default port (webapp 3000, adderservice 8080, ...).
    #[arg(long, default_value_t = 0)]
    pub port_offset: u16,
    /// One service's port, e.g. `--port webapp=3001` (repeatable).
    #[arg(long = "port", value_name = "SERVICE=PORT", value_parser = parse_port)]
    pub ports: Vec<(String, u16)>,
    /// Port of the DNS server on 127.0.0.1 (default: a free one).
    #[arg(long, default_value_t = 0)]
    pub dns_port: u16,
    /// Run the binaries in this folder instead of building them.
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Build and run optimised binaries.
    #[arg(long)]
    pub release: bool,
    /// The services' log filter (RUST_LOG), e.g. `debug` or `webapp=debug,info`.
    #[arg(long, value_name = "FILTER")]
    pub log: Option<String>,
}

fn parse_port(text: &str) -> Result<(String, u16), String> {
    let (name, port) = text.split_once('=').ok_or("expected SERVICE=PORT")?;
    let service = workspace::service(name).map_err(|e| e.to_string())?;
    if service.kind == Kind::Cli {
        return Err(format!("{name} is a command-line tool, it has no port"));
    }
    Ok((
        name.to_string(),
        port.parse()
            .map_err(|e| format!("bad port `{port}`: {e}"))?,
    ))
}

pub fn run(args: DevArgs) -> Result<ExitCode> {
    let stop = process::catch_stop_signals();
    let system = System::start(&args)?;
    let ready = system.wait_ready(Duration::from_secs(90), stop);
    if stop.load(Ordering::SeqCst) {
        eprintln!("stopping");
        drop(system);
        return Ok(ExitCode::SUCCESS);
    }
    match ready {
        Ok(()) => system.print_banner()?,
        Err(err) => eprintln!(
            "warning: {} (still trying; see the log lines above)",
            crate::cli::one_line(&err)
        ),
    }
    // A closed stdout ends dev as Ctrl-C does (see stdout.rs).
    while !stop.load(Ordering::SeqCst) && !crate::cli::stdout::closed() {
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("stopping every service, Redis and PostgreSQL");
    drop(system);
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The running local system. Dropping it stops the services first, then the
/// DNS server, Redis and PostgreSQL.
pub struct System {
    services: Vec<Supervised>,
    stop_services: Arc<AtomicBool>,
    pub ports: BTreeMap<&'static str, u16>,
    pub state: DevState,
    state_dir: PathBuf,
    _dns: dns::DnsServer,
    _redis: Redis,
    _postgres: Postgres,
}

impl System {
    pub fn start(args: &DevArgs) -> Result<System> {
        let state_dir = claim_state_dir(args)?;
        let ports = free_service_ports(args)?;
        let bin_dir = service_binaries(args)?;
        let (postgres, redis) = start_stores(&state_dir)?;
        let (dns, env) = start_dns(args, &ports, &postgres, &redis)?;
        let state = dev_state(&ports, &bin_dir, &postgres, &redis, &dns);
        state.save(&state_dir)?;
        let stop_services = Arc::new(AtomicBool::new(false));
        Ok(System {
            services: supervise_services(&bin_dir, &env, &stop_services),
            stop_services,
            ports,
            state,
            state_dir,
            _dns: dns,
            _redis: redis,
            _postgres: postgres,
        })
    }

    /// Wait until every service's port answers (or `interrupted` is set).
    pub fn wait_ready(&self, timeout: Duration, interrupted: &AtomicBool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for (name, port) in &self.ports {
            let addr = SocketAddr::from(([127, 0, 0, 1], *port));
            while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                if interrupted.load(Ordering::SeqCst) {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    bail!(
                        "{name} does not answer on {addr} after {}s",
                        timeout.as_secs()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// The current pid of each running service (for benchmarks).
    pub fn pids(&self) -> BTreeMap<String, u32> {
        self.services
            .iter()
            .map(|s| (s.name.clone(), s.pid.load(Ordering::SeqCst)))
            .collect()
    }

    fn print_banner(&self) -> std::io::Result<()> {
        let webapp = self.ports["webapp"];
        outln!()?;
        outln!("micro is running (Ctrl-C stops everything):")?;
        outln!(
            "  webapp        http://127.0.0.1:{webapp}/add   (audit: http://127.0.0.1:{webapp}/audit)"
        )?;
        for (name, port) in self.ports.iter().filter(|(n, _)| **n != "webapp") {
            outln!("  {name:<13} http://127.0.0.1:{port}/healthz")?;
        }
        outln!("  postgres      {}", self.state.postgres_url)?;
        outln!("  redis         {}", self.state.redis_url)?;
        outln!(
            "  dns           {} (try: dig @127.0.0.1 -p {} SRV _main._tcp.adderservice.{NAMESPACE}.{DNS_SUFFIX})",
            self.state.dns,
            self._dns.addr.port()
        )?;
        outln!("  report        cargo xtask report")?;
        outln!()
    }
}

impl Drop for System {
    fn drop(&mut self) {
        self.stop_services.store(true, Ordering::SeqCst);
        for service in self.services.drain(..) {
            service.join();
        }
        DevState::remove(&self.state_dir);
        // The DNS server, Redis and PostgreSQL stop as their fields drop.
    }
}

/// The state folder, absolute, refused while another dev runs with it.
fn claim_state_dir(args: &DevArgs) -> Result<PathBuf> {
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| workspace::state_dir().join("dev"));
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let state_dir = std::fs::canonicalize(&state_dir)?;
    if let Some(other) = DevState::running_in(&state_dir) {
        bail!(
            "another `cargo xtask dev` (pid {}) is running with state in {}; stop it or pass --state-dir",
            other.pid,
            state_dir.display()
        );
    }
    Ok(state_dir)
}

/// `service_ports`, each checked to be free now.
fn free_service_ports(args: &DevArgs) -> Result<BTreeMap<&'static str, u16>> {
    let ports = service_ports(args)?;
    for (name, port) in &ports {
        // A taken port would only show as an endless restart loop later.
        if std::net::TcpListener::bind(("127.0.0.1", *port)).is_err() {
            bail!("port {port} for {name} is in use; pass --port-offset N or --port {name}=PORT");
        }
    }
    Ok(ports)
}

/// The folder of the service binaries (`--bin-dir`, or built now), each present.
fn service_binaries(args: &DevArgs) -> Result<PathBuf> {
    let bin_dir = match &args.bin_dir {
        // Absolute, so dev.json means the same folder from any working directory.
        Some(dir) => {
            std::fs::canonicalize(dir).with_context(|| format!("--bin-dir {}", dir.display()))?
        }
        None => {
            let built = build_services(args.release)?;
            std::fs::canonicalize(&built).unwrap_or(built)
        }
    };
    for service in SERVICES {
        let bin = bin_dir.join(service.name);
        if !bin.is_file() {
            bail!(
                "{} is missing (build it, or pass another --bin-dir)",
                bin.display()
            );
        }
    }
    Ok(bin_dir)
}

/// PostgreSQL (with the services' role and database) and Redis, on free ports.
fn start_stores(state_dir: &std::path::Path) -> Result<(Postgres, Redis)> {
    let postgres = postgres::start(&PostgresConfig {
        dir: state_dir.join("postgres"),
        port: process::free_port()?,
        ephemeral: false,
        output: None,
    })
    .context("starting PostgreSQL")?;
    postgres.ensure_role_and_database(DB_USER, DB_NAME)?;
    let redis = redis::start(&RedisConfig {
        dir: state_dir.join("redis"),
        port: process::free_port()?,
        output: None,
    })
    .context("starting Redis")?;
    Ok((postgres, redis))
}

/// The DNS server answering for the stores and every service, and the
/// environment that points the services at it.
fn start_dns(
    args: &DevArgs,
    ports: &BTreeMap<&'static str, u16>,
    postgres: &Postgres,
    redis: &Redis,
) -> Result<(dns::DnsServer, Vec<(String, String)>)> {
    let mut zone = dns::Zone::new(NAMESPACE, DNS_SUFFIX, DNS_TTL);
    zone.services
        .insert("postgres".into(), dns::local(postgres.port));
    zone.services.insert("redis".into(), dns::local(redis.port));
    for (name, port) in ports {
        zone.services.insert(name.to_string(), dns::local(*port));
    }
    let dns = dns::serve(
        SocketAddr::from(([127, 0, 0, 1], args.dns_port)),
        Arc::new(RwLock::new(zone.clone())),
    )?;
    let mut env = service_env(&zone, dns.addr.port());
    if let Some(filter) = &args.log {
        env.push(("RUST_LOG".into(), filter.clone()));
    }
    Ok((dns, env))
}

/// What `report` and a second `dev` read about this one (dev.json).
fn dev_state(
    ports: &BTreeMap<&'static str, u16>,
    bin_dir: &std::path::Path,
    postgres: &Postgres,
    redis: &Redis,
    dns: &dns::DnsServer,
) -> DevState {
    DevState {
        pid: std::process::id(),
        redis_url: redis.url(),
        postgres_url: format!("postgres://{DB_USER}@127.0.0.1:{}/{DB_NAME}", postgres.port),
        dns: dns.addr.to_string(),
        ports: ports.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        bin_dir: bin_dir.to_path_buf(),
    }
}

/// One supervisor per long-running service, each started with `env`.
fn supervise_services(
    bin_dir: &std::path::Path,
    env: &[(String, String)],
    stop: &Arc<AtomicBool>,
) -> Vec<Supervised> {
    let labels = Labels::new();
    SERVICES
        .iter()
        .filter(|s| s.kind != Kind::Cli)
        .map(|service| {
            let make = service_command(bin_dir.join(service.name), env.to_vec());
            supervisor::supervise(
                service.name,
                labels.prefix(service.name),
                make,
                stop.clone(),
            )
        })
        .collect()
}

/// How a supervisor (re)starts one service binary.
fn service_command(
    bin: PathBuf,
    env: Vec<(String, String)>,
) -> impl Fn() -> Command + Send + 'static {
    move || {
        let mut cmd = Command::new(&bin);
        // Settings that would bypass discovery are not what the cluster gives.
        for key in [
            "DATABASE_URL",
            "REDIS_URL",
            "MICRO_TEST_PG_URL",
            "MICRO_TEST_REDIS_URL",
        ] {
            cmd.env_remove(key);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd
    }
}

/// Each long-running service's port: default + offset, unless set one by one.
fn service_ports(args: &DevArgs) -> Result<BTreeMap<&'static str, u16>> {
    let mut ports = BTreeMap::new();
    for service in SERVICES.iter().filter(|s| s.kind != Kind::Cli) {
        let port = match args.ports.iter().find(|(name, _)| name == service.name) {
            Some((_, port)) => *port,
            None => service
                .port
                .checked_add(args.port_offset)
                .context("--port-offset too large")?,
        };
        ports.insert(service.name, port);
    }
    Ok(ports)
}

/// What Kubernetes would inject into every pod of the namespace, plus the
/// dev-only settings (listen on loopback; ask our DNS server).
fn service_env(zone: &dns::Zone, dns_port: u16) -> Vec<(String, String)> {
    let mut env = vec![
        ("DNS_HOST".to_string(), "127.0.0.1".to_string()),
        ("DNS_PORT".to_string(), dns_port.to_string()),
        ("DNS_NAMESPACE".to_string(), zone.namespace.clone()),
        ("DNS_SUFFIX".to_string(), zone.suffix.clone()),
        ("LISTEN_HOST".to_string(), "127.0.0.1".to_string()),
        ("POSTGRES_USER".to_string(), DB_USER.to_string()),
        ("POSTGRES_PASSWORD".to_string(), String::new()),
        ("POSTGRES_DB".to_string(), DB_NAME.to_string()),
    ];
    for (name, addr) in &zone.services {
        let prefix = name.to_ascii_uppercase().replace('-', "_");
        env.push((format!("{prefix}_SERVICE_HOST"), addr.ip().to_string()));
        env.push((format!("{prefix}_SERVICE_PORT"), addr.port().to_string()));
    }
    if std::env::var_os("RUST_LOG").is_none() {
        env.push(("RUST_LOG".to_string(), "info".to_string()));
    }
    env
}

/// `cargo build` every service binary; returns the folder holding them.
pub fn build_services(release: bool) -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build").current_dir(workspace::root());
    if release {
        cmd.arg("--release");
    }
    for service in SERVICES {
        cmd.args(["-p", service.name]);
    }
    eprintln!(
        "building the services{}",
        if release { " (release)" } else { "" }
    );
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("building the services failed ({status})");
    }
    Ok(workspace::target_dir().join(if release { "release" } else { "debug" }))
}

/// Coloured, padded service names for log prefixes.
struct Labels {
    colour: bool,
    width: usize,
}

impl Labels {
    fn new() -> Self {
        let colour = crate::cli::colour::enabled();
        let width = SERVICES.iter().map(|s| s.name.len()).max().unwrap_or(0);
        Labels { colour, width }
    }

    fn prefix(&self, name: &str) -> String {
        let width = self.width;
        if !self.colour {
            return format!("{name:>width$} | ");
        }
        let index = SERVICES.iter().position(|s| s.name == name).unwrap_or(0);
        let colour = [36, 33, 35, 32, 34, 31][index % 6];
        format!("\x1b[{colour}m{name:>width$}\x1b[0m | ")
    }
}
