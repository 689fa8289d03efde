//! `cargo xtask testcluster`: serve the in-memory Kubernetes API of the testcluster crate.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TestclusterArgs {}

pub fn run(_args: TestclusterArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`testcluster` is not implemented yet")
}
