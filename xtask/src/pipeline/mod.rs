//! `cargo xtask pipeline --env <env>`: the Jenkins job's CI stages as one command.
//!
//! - `stages`: what each stage does, each a call into xtask's own functions
//! - `runner`: which stages run, in order, stopping at the first failure
//! - `summary`: the table, `--output json` and the JUnit XML file
//!
//! The CI files (Jenkinsfile, .github/workflows/) only call this command, so
//! what runs in CI runs the same on a laptop.

#[cfg(test)]
mod ci_files;
mod runner;
mod stages;
mod summary;

pub use stages::Stage;

use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    after_help = "Stages, in order: check, test, build, release, publish, deploy (deploy only with --deploy).\n\
Examples:\n  cargo xtask pipeline --env minikube\n  cargo xtask pipeline --env aws --stages build,release,publish\n  \
cargo xtask pipeline --env minikube --from build --deploy --junit target/xtask/pipeline/junit.xml\n  \
cargo xtask pipeline --env minikube --stages test -- -p adderservice"
)]
pub struct PipelineArgs {
    /// Environment: a folder of environments/ with an env.yaml (minikube, aws).
    #[arg(long)]
    pub env: String,
    /// Run only these stages (comma-separated), in pipeline order.
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "from")]
    pub stages: Vec<Stage>,
    /// Run this stage and every one after it.
    #[arg(long, value_enum)]
    pub from: Option<Stage>,
    /// Push images here instead of env.yaml's registry (`host[:port]`, or `docker.io/<namespace>`);
    /// the push is recorded under env.yaml's registry too, as `release --registry` does.
    #[arg(long)]
    pub registry: Option<String>,
    /// Commit the manifests on the current branch instead of a new `deploy/<env>/<short-sha>`.
    #[arg(long)]
    pub in_place: bool,
    /// Remote to push the deploy branch to (default: the current branch's upstream, else origin).
    #[arg(long)]
    pub remote: Option<String>,
    /// Also run `deploy` (sync the deployed commit): push-to-deploy, as the Jenkins job did.
    /// Without it, GitOps deploys after the deploy branch is merged.
    #[arg(long)]
    pub deploy: bool,
    /// `text`, or `json`: {"env", "result", "failed", "stages": [{"stage", "result", "seconds", "detail"}]}.
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: crate::cli::Format,
    /// Also write the stages as JUnit XML (what Jenkins and GitHub render).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Workspace root to work on (tests use a temporary clone).
    #[arg(long, hide = true)]
    pub root: Option<PathBuf>,
    /// Arguments for `cargo xtask test` (after `--`).
    #[arg(last = true)]
    pub test_args: Vec<String>,
}

pub fn run(args: PipelineArgs) -> Result<ExitCode> {
    runner::run(args)
}
