//! `cargo xtask report`: run the report CLI against a running system.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ReportArgs {}

pub fn run(_args: ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`report` is not implemented yet")
}
