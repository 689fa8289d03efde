//! `cargo xtask test`: start what the tests need, run the suite.
//!
//! Each run gets its own PostgreSQL, Redis and registry on free ports, with
//! state in `target/xtask/test/run-<pid>/` (so several runs can share a work
//! tree), and exports them to the tests:
//! `MICRO_TEST_PG_URL`, `MICRO_TEST_REDIS_URL`, `MICRO_TEST_REGISTRY`, and
//! `MICRO_BIN_DIR` (the built service binaries, for end-to-end tests).

use crate::local::postgres::{self, PostgresConfig};
use crate::local::process::{self, Output};
use crate::local::redis::{self, RedisConfig};
use crate::local::registry::{self, RegistryConfig};
use crate::workspace;
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask test\n  cargo xtask test -- -p adderservice\n  cargo xtask test -- -p xtask --test it e2e:: -- --nocapture"
)]
pub struct TestArgs {
    /// Arguments for `cargo test` (after `--`); without `-p`, the whole workspace.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
}

pub fn run(args: TestArgs) -> Result<ExitCode> {
    let stop = process::catch_stop_signals();
    let mut cargo_args = args.cargo_args;
    if cargo_args.first().map(String::as_str) == Some("--") {
        cargo_args.remove(0);
    }
    let base = workspace::state_dir().join("test");
    remove_stale_runs(&base);
    let run_dir = base.join(format!("run-{}", std::process::id()));
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)?;
    }
    std::fs::create_dir_all(&run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let run_dir = std::fs::canonicalize(&run_dir)?;
    let result = run_in(&run_dir, cargo_args, stop);
    // Everything is stopped by now (guards dropped); the state goes too.
    let _ = std::fs::remove_dir_all(&run_dir);
    result
}

fn run_in(
    run_dir: &Path,
    cargo_args: Vec<String>,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<ExitCode> {
    eprintln!("starting test infrastructure in {}", run_dir.display());
    let pg = postgres::start(&PostgresConfig {
        dir: run_dir.join("postgres"),
        port: process::free_port()?,
        ephemeral: true,
        output: None,
    })
    .context("starting PostgreSQL for the tests")?;
    let redis = redis::start(&RedisConfig {
        dir: run_dir.join("redis"),
        port: process::free_port()?,
        output: None,
    })
    .context("starting Redis for the tests")?;
    let registry = registry::start(&RegistryConfig {
        addr: SocketAddr::from(([127, 0, 0, 1], process::free_port()?)),
        data_dir: run_dir.join("registry"),
        tls: None,
        output: None,
    })
    .context("starting the registry for the tests")?;
    eprintln!(
        "  MICRO_TEST_PG_URL={}\n  MICRO_TEST_REDIS_URL={}\n  MICRO_TEST_REGISTRY={}",
        pg.superuser_url(),
        redis.url(),
        registry.addr
    );

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let bin_dir = build_services(&cargo, &cargo_args);

    // A supervised child (its own process group, stopped with the runner), so std::process.
    let mut cmd = Command::new(&cargo);
    cmd.arg("test").current_dir(workspace::root());
    let selects_packages = cargo_args
        .iter()
        .any(|a| a == "-p" || a.starts_with("--package"));
    if !selects_packages {
        cmd.arg("--workspace");
    }
    cmd.args(&cargo_args)
        .env("MICRO_TEST_PG_URL", pg.superuser_url())
        .env("MICRO_TEST_REDIS_URL", redis.url())
        .env("MICRO_TEST_REGISTRY", registry.addr.to_string());
    if let Some(dir) = bin_dir {
        cmd.env("MICRO_BIN_DIR", dir);
    }
    let mut tests = process::spawn("cargo test", cmd, Output::Inherit, libc::SIGTERM)?;
    let status = tests.wait_unless(stop)?;
    drop(tests);
    if stop.load(std::sync::atomic::Ordering::SeqCst) {
        eprintln!("interrupted: stopping the test infrastructure");
    }
    let pg_data = pg.data_dir.clone();
    drop((registry, redis, pg));
    if !pg_data.starts_with(run_dir) {
        // Kept outside (the postgres user cannot enter the work tree).
        let _ = std::fs::remove_dir_all(pg_data.parent().unwrap_or(&pg_data));
    }
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(code.clamp(1, 255) as u8),
        // Killed by a signal: the shell convention, 128 + signal number.
        None => ExitCode::from(
            128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(1) as u8,
        ),
    })
}

/// Build the service binaries the end-to-end tests run (unless the selected
/// packages cannot include those tests). `cargo test` alone does not build
/// them, and a test cannot run cargo itself while cargo holds the build lock.
fn build_services(cargo: &std::ffi::OsStr, cargo_args: &[String]) -> Option<PathBuf> {
    let selected: Vec<&String> = cargo_args
        .windows(2)
        .filter(|w| w[0] == "-p" || w[0] == "--package")
        .map(|w| &w[1])
        .collect();
    if !selected.is_empty() && !selected.iter().any(|p| p.as_str() == "xtask") {
        return None;
    }
    let mut cmd = Command::new(cargo);
    cmd.arg("build").current_dir(workspace::root());
    for service in workspace::SERVICES {
        cmd.args(["-p", service.name]);
    }
    match cmd.status() {
        Ok(status) if status.success() => Some(workspace::target_dir().join("debug")),
        _ => {
            eprintln!("warning: the service binaries did not build; end-to-end tests will fail");
            None
        }
    }
}

/// Runs whose runner is gone (killed): stop any server they left behind and
/// remove their state.
fn remove_stale_runs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("run-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if process::alive(pid) {
            continue;
        }
        postgres::stop_leftover(&entry.path().join("postgres"));
        redis::stop_leftover(&entry.path().join("redis"));
        let _ = std::fs::remove_dir_all(entry.path());
    }
}
