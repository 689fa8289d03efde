//! `cargo xtask report`: run the report CLI against a running system.
//!
//! Without `--env`: the system `cargo xtask dev` runs (its Redis, read from
//! `dev.json` in the dev state folder). With `--env`: a cluster environment,
//! through the Kubernetes API only (`cluster`, `forward`).

mod cluster;
mod forward;
mod in_cluster;

use crate::dev::DevState;
use crate::workspace;
use anyhow::{Context, Result, bail};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask report\n  cargo xtask report -- --json\n  cargo xtask report --env minikube"
)]
pub struct ReportArgs {
    /// Ask a cluster environment (environments/<env>) instead of the local dev system:
    /// the Redis password from its Secret, a port-forward to redis-0 through the API server.
    #[arg(long)]
    pub env: Option<String>,
    /// Kubeconfig file with --env (default: $KUBECONFIG, then ~/.kube/config, as kubectl).
    #[arg(long, requires = "env")]
    pub kubeconfig: Option<PathBuf>,
    /// Use this kube context instead of env.yaml's `context` (with --env).
    #[arg(long, requires = "env")]
    pub context: Option<String>,
    /// Run the report image in the cluster as a one-off Pod (as `kubectl run
    /// -i --rm`), print its log and delete it.
    #[arg(long, requires = "env")]
    pub in_cluster: bool,
    /// The image for --in-cluster (default: report's image pushed to env.yaml's registry,
    /// from the image record of `build-all --push`).
    #[arg(long, requires = "in_cluster")]
    pub image: Option<String>,
    /// The state folder of the `cargo xtask dev` to ask (if it was started with --state-dir).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Arguments for the report tool (after `--`), e.g. `--json`.
    #[arg(last = true)]
    pub report_args: Vec<String>,
}

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    if let Some(env) = &args.env {
        return cluster::run(env, &args);
    }
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| workspace::state_dir().join("dev"));
    let state = DevState::running_in(&state_dir).with_context(|| {
        format!(
            "no `cargo xtask dev` is running with state in {}; start it first",
            state_dir.display()
        )
    })?;
    let report = state.bin_dir.join("report");
    if !report.is_file() {
        bail!(
            "{} is missing: restart `cargo xtask dev` to build it",
            report.display()
        );
    }
    let err = Command::new(&report)
        .args(&args.report_args)
        .env("REDIS_URL", &state.redis_url)
        .exec();
    Err(err).with_context(|| format!("running {}", report.display()))
}
