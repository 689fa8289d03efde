//! `cargo xtask bench <target>`: figures for services, build and sync.
use std::process::ExitCode;

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
        BenchTarget::Services => anyhow::bail!("`bench services` is not implemented yet"),
        BenchTarget::Build => anyhow::bail!("`bench build` is not implemented yet"),
        BenchTarget::Sync => anyhow::bail!("`bench sync` is not implemented yet"),
    }
}
