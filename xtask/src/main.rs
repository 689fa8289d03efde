//! `cargo xtask`: the micro task runner.
//!
//! Each subcommand lives in its own module; this file only parses the command
//! line and turns errors into one line on stderr and a non-zero exit code.

#[macro_use]
mod cli;

mod bench;
mod cluster;
mod cmd;
mod dashboard;
mod dev;
mod environment;
mod gitops;
mod image;
mod local;
mod manifest;
mod ownership;
mod pipeline;
mod release;
mod review;
mod workspace;

use clap::{Parser, Subcommand};
use cli::{colour, completions, stdout};
use cmd::{logs, report, test as test_cmd, testcluster as testcluster_cmd};
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
    #[command(flatten)]
    verbosity: cli::verbosity::Flags,
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
    /// Print (or follow) the logs of a service's Pods in a cluster environment.
    Logs(logs::LogsArgs),
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
    Release(release::ReleaseArgs),
    /// The CI stages in one command: check, test, build, release, publish, deploy.
    Pipeline(pipeline::PipelineArgs),
    /// The environment's cluster as code, for kops: render, create, update, validate, delete.
    Cluster(cluster::ClusterArgs),
    /// Create (or rotate) the Postgres and Redis password Secrets in the cluster.
    Secrets(gitops::secrets::SecretsArgs),
    /// Show what sync would change.
    Diff(gitops::DiffArgs),
    /// Make the cluster match the manifests committed at HEAD.
    Sync(gitops::SyncArgs),
    /// Each object's state in the cluster against git.
    Status(gitops::StatusArgs),
    /// A live, read-only web page: commits, objects against git, rollouts, images, drift.
    Dashboard(dashboard::DashboardArgs),
    /// The pull-request view of a deploy: what changes between two commits' manifests.
    Review(review::ReviewArgs),
    /// Serve an in-memory Kubernetes API for tests.
    Testcluster(testcluster_cmd::TestclusterArgs),
    /// Measure speed and size.
    Bench(bench::BenchArgs),
    /// Print a shell completion script: `cargo xtask completions bash > ...`.
    Completions(completions::CompletionsArgs),
}

impl Command {
    /// The `-o` a command was given, for the error document of a failure.
    fn output_format(&self) -> cli::Format {
        use cli::Format;
        match self {
            Command::Diff(args) => args.target.output,
            Command::Sync(args) => args.target.output,
            Command::Status(args) => args.target.output,
            Command::Render(args) => args.output,
            Command::Build(args) => args.common.output,
            Command::BuildAll(args) => args.common.output,
            Command::Pipeline(args) => args.output,
            Command::Cluster(args) => args.output_format(),
            Command::Review(args) if args.output == review::Format::Json => Format::Json,
            Command::Review(args) if args.output == review::Format::Yaml => Format::Yaml,
            _ => Format::Text,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    colour::set(cli.color);
    cli::verbosity::set(cli.verbosity.level());
    let format = cli.command.output_format();
    let result = match cli.command {
        Command::Dev(args) => dev::run(args),
        Command::Test(args) => test_cmd::run(args),
        Command::Report(args) => report::run(args),
        Command::Logs(args) => logs::run(args),
        Command::Build(args) => image::run_build(args),
        Command::BuildAll(args) => image::run_build_all(args),
        Command::Registry(args) => image::run_registry(args),
        Command::Render(args) => manifest::run_render(args),
        Command::Commit(args) => manifest::run_commit(args),
        Command::Release(args) => release::run(args),
        Command::Pipeline(args) => pipeline::run(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Secrets(args) => gitops::secrets::run(args),
        Command::Diff(args) => gitops::run_diff(args),
        Command::Sync(args) => gitops::run_sync(args),
        Command::Status(args) => gitops::run_status(args),
        Command::Dashboard(args) => dashboard::run(args),
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
            // One line for the user: the chain of causes, no backtrace; and
            // for a script that asked for json/yaml, the same as a document.
            eprintln!("error: {}", cli::one_line(&err));
            if !format.is_text() {
                let _ = cli::output::emit(format, &cli::output::ErrorDoc::new(&err, 2));
            }
            ExitCode::from(2)
        }
    }
}
