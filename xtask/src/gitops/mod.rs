//! GitOps: diff, sync and status of committed manifests against a live cluster.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct DiffArgs {}
#[derive(clap::Args)]
pub struct SyncArgs {}
#[derive(clap::Args)]
pub struct StatusArgs {}

pub fn run_diff(_args: DiffArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`diff` is not implemented yet")
}
pub fn run_sync(_args: SyncArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`sync` is not implemented yet")
}
pub fn run_status(_args: StatusArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`status` is not implemented yet")
}
