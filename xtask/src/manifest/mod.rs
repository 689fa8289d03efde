//! Manifests: definitions + env.yaml -> environments/<env>/manifests/, and commit.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct RenderArgs {}
#[derive(clap::Args)]
pub struct CommitArgs {}
#[derive(clap::Args)]
pub struct ReleaseArgs {}
#[derive(clap::Args)]
pub struct SecretsArgs {}

pub fn run_render(_args: RenderArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`render` is not implemented yet")
}
pub fn run_commit(_args: CommitArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`commit` is not implemented yet")
}
pub fn run_release(_args: ReleaseArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`release` is not implemented yet")
}
pub fn run_secrets(_args: SecretsArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`secrets` is not implemented yet")
}
