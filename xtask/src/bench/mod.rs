//! `cargo xtask bench <target>`: figures for services, build, sync, review, dashboard and operate.
use std::process::ExitCode;

mod build;
mod dashboard;
mod load;
mod operate;
mod review;
mod services;
mod sync;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub target: BenchTarget,
    /// services only: also send a fixed N requests per second (open loop; latency counted
    /// from each request's intended send time, so queueing is not hidden).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate: Option<u32>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum BenchTarget {
    Services,
    Build,
    Sync,
    Review,
    Dashboard,
    /// Port-forward throughput through the test cluster (kube crate and kubectl).
    Operate,
}

/// Set in the release child, so that it never hands over again.
const HANDED_OVER: &str = "MICRO_BENCH_HANDED_OVER";

/// A debug build measures optimized code by handing over to a release build,
/// unless `<profile_var>=debug` asks to measure this build.
fn must_hand_over(target: &str, profile_var: &str) -> bool {
    if !cfg!(debug_assertions)
        || std::env::var_os(HANDED_OVER).is_some()
        || std::env::var(profile_var).is_ok_and(|v| v == "debug")
    {
        return false;
    }
    eprintln!(
        "bench {target}: building xtask (release) to measure optimized code \
         ({profile_var}=debug measures this build)"
    );
    true
}

/// Builds xtask in release mode and becomes `xtask bench <target>` of that
/// build (exec: signals and the exit code reach it directly), for benches
/// whose own code is part of what they measure.
fn hand_over_to_release(target: &str, extra: &[String]) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    use std::os::unix::process::CommandExt as _;
    let sh = xshell::Shell::new()?;
    sh.change_dir(crate::workspace::root());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    xshell::cmd!(sh, "{cargo} build --release --quiet -p xtask")
        .run()
        .context("building xtask (release)")?;
    let exe = crate::workspace::target_dir().join("release").join("xtask");
    let err = std::process::Command::new(&exe)
        .args(["bench", target])
        .args(extra)
        .env(HANDED_OVER, "1")
        .exec();
    Err(err).with_context(|| format!("running {}", exe.display()))
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.target {
        BenchTarget::Services => {
            // The load generator shares the CPU with the services: an unoptimized
            // one measures itself.
            let rate: Vec<String> = args
                .rate
                .iter()
                .flat_map(|n| ["--rate".to_string(), n.to_string()])
                .collect();
            if must_hand_over("services", "MICRO_BENCH_SERVICES_PROFILE") {
                return hand_over_to_release("services", &rate);
            }
            let mut options = services::ServicesBenchOptions::from_env()?;
            options.rate = args.rate;
            services::run(options)
        }
        BenchTarget::Build
        | BenchTarget::Sync
        | BenchTarget::Review
        | BenchTarget::Dashboard
        | BenchTarget::Operate
            if args.rate.is_some() =>
        {
            anyhow::bail!("--rate applies to `bench services` only")
        }
        BenchTarget::Build => {
            // MICRO_BENCH_COLD=1: also start from an empty target dir.
            let cold = std::env::var("MICRO_BENCH_COLD").is_ok_and(|v| v == "1");
            build::run(build::BuildBenchOptions { cold })
        }
        BenchTarget::Sync => {
            // The test server runs in this process and sync is this binary: both
            // must be optimized code for the figures to mean anything.
            if must_hand_over("sync", "MICRO_BENCH_SYNC_PROFILE") {
                return hand_over_to_release("sync", &[]);
            }
            sync::run()
        }
        BenchTarget::Review => {
            // Review is this binary's own code: measure it optimized.
            if must_hand_over("review", "MICRO_BENCH_REVIEW_PROFILE") {
                return hand_over_to_release("review", &[]);
            }
            review::run()
        }
        BenchTarget::Dashboard => {
            // The dashboard is this binary and the server runs in-process.
            if must_hand_over("dashboard", "MICRO_BENCH_DASHBOARD_PROFILE") {
                return hand_over_to_release("dashboard", &[]);
            }
            dashboard::run()
        }
        BenchTarget::Operate => {
            // The test server (and its port-forward) runs in this process.
            if must_hand_over("operate", "MICRO_BENCH_OPERATE_PROFILE") {
                return hand_over_to_release("operate", &[]);
            }
            operate::run()
        }
    }
}
