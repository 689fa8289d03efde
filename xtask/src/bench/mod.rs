//! `cargo xtask bench <target>`: figures for services, build and sync.
use std::process::ExitCode;

mod build;
mod load;
mod services;
mod sync;

#[derive(clap::Args)]
pub struct BenchArgs {
    /// What to measure.
    #[arg(value_enum)]
    pub target: BenchTarget,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum BenchTarget {
    Services,
    Build,
    Sync,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.target {
        BenchTarget::Services => services::run(services::ServicesBenchOptions::from_env()?),
        BenchTarget::Build => {
            // MICRO_BENCH_COLD=1: also start from an empty target dir.
            let cold = std::env::var("MICRO_BENCH_COLD").is_ok_and(|v| v == "1");
            build::run(build::BuildBenchOptions { cold })
        }
        BenchTarget::Sync => sync::run(),
    }
}
