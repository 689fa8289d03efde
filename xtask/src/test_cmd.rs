//! `cargo xtask test`: start what the tests need, run the suite.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TestArgs {}

pub fn run(_args: TestArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`test` is not implemented yet")
}
