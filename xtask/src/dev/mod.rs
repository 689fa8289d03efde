//! `cargo xtask dev`: the whole system as local processes.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DevArgs {}

pub fn run(_args: DevArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`dev` is not implemented yet")
}
