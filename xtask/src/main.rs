//! `cargo xtask`: the micro task runner.
//!
//! Each subcommand lives in its own module; this file only parses the command
//! line and turns errors into one line on stderr and a non-zero exit code.

#[macro_use]
mod stdout;

mod bench;
mod colour;
mod completions;
mod dev;
mod environment;
mod gitops;
mod image;
mod image_record;
mod infra;
mod manifest;
mod ownership;
mod pipeline;
mod project;
mod report;
mod review;
mod test_cmd;
mod testcluster_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    version,
    about = "Build, version and deploy the micro system the GitOps way."
)]
struct Cli {
    /// Colour: `auto` (when stdout is a terminal and NO_COLOR is unset), `always`, `never`.
    #[arg(long, global = true, value_enum, default_value_t = colour::Choice::Auto)]
    color: colour::Choice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole system locally: Postgres, Redis, DNS and every service.
    Dev(dev::DevArgs),
    /// Start what the tests need and run the whole test suite.
    Test(test_cmd::TestArgs),
    /// Ask eventservice for the page-visit summary and print it.
    Report(report::ReportArgs),
    /// Build the images of the named services.
    Build(image::BuildArgs),
    /// Build the images of every service.
    BuildAll(image::BuildAllArgs),
    /// Run a local image registry for the minikube environment.
    Registry(image::RegistryArgs),
    /// Write environments/<env>/manifests/ from the definitions.
    Render(manifest::RenderArgs),
    /// Commit the rendered manifests of one environment.
    Commit(manifest::CommitArgs),
    /// build-all --push, render, commit: propose a deploy.
    Release(manifest::ReleaseArgs),
    /// The CI stages in one command: check, test, build, release, publish, deploy.
    Pipeline(pipeline::PipelineArgs),
    /// Create or rotate the database Secret in the cluster.
    Secrets(manifest::SecretsArgs),
    /// Show what sync would change.
    Diff(gitops::DiffArgs),
    /// Make the cluster match the manifests committed at HEAD.
    Sync(gitops::SyncArgs),
    /// Each object's state in the cluster against git.
    Status(gitops::StatusArgs),
    /// The pull-request view of a deploy: what changes between two commits' manifests.
    Review(review::ReviewArgs),
    /// Serve an in-memory Kubernetes API for tests.
    Testcluster(testcluster_cmd::TestclusterArgs),
    /// Measure speed and size.
    Bench(bench::BenchArgs),
    /// Print a shell completion script: `cargo xtask completions bash > ...`.
    Completions(completions::CompletionsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    colour::set(cli.color);
    let result = match cli.command {
        Command::Dev(args) => dev::run(args),
        Command::Test(args) => test_cmd::run(args),
        Command::Report(args) => report::run(args),
        Command::Build(args) => image::run_build(args),
        Command::BuildAll(args) => image::run_build_all(args),
        Command::Registry(args) => image::run_registry(args),
        Command::Render(args) => manifest::run_render(args),
        Command::Commit(args) => manifest::run_commit(args),
        Command::Release(args) => manifest::run_release(args),
        Command::Pipeline(args) => pipeline::run(args),
        Command::Secrets(args) => manifest::run_secrets(args),
        Command::Diff(args) => gitops::run_diff(args),
        Command::Sync(args) => gitops::run_sync(args),
        Command::Status(args) => gitops::run_status(args),
        Command::Review(args) => review::run(args),
        Command::Testcluster(args) => testcluster_cmd::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Completions(args) => completions::run::<Cli>(args),
    };
    match result {
        Ok(code) => code,
        Err(err) if stdout::is_broken_pipe(&err) => {
            // The reader closed stdout (`| head`): stop quietly, see stdout.rs.
            ExitCode::SUCCESS
        }
        Err(err) => {
            // One line for the user: the chain of causes, no backtrace.
            eprintln!("error: {}", project::one_line(&err));
            ExitCode::from(2)
        }
    }
}
