//! Images: one compile, one FROM-scratch image per service, tag, push.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct BuildArgs {}
#[derive(clap::Args)]
pub struct BuildAllArgs {}
#[derive(clap::Args)]
pub struct RegistryArgs {}

pub fn run_build(_args: BuildArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`build` is not implemented yet")
}
pub fn run_build_all(_args: BuildAllArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`build-all` is not implemented yet")
}
pub fn run_registry(_args: RegistryArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`registry` is not implemented yet")
}
