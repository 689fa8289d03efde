//! `cargo xtask testcluster`: serve the in-memory Kubernetes API of the testcluster crate.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Serve an in-memory Kubernetes API (test infrastructure: stores objects and
/// simulates controller status; runs no containers).
///
/// Example: cargo xtask testcluster --listen 127.0.0.1:6443 --kubeconfig /tmp/k --context minikube
#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  cargo xtask testcluster --listen 127.0.0.1:6443 --kubeconfig /tmp/k\n  KUBECONFIG=/tmp/k kubectl get ns"
)]
pub struct TestclusterArgs {
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where to write a kubeconfig for this server, once it answers.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Name of the kubeconfig context (and cluster and user).
    #[arg(long, default_value = "minikube")]
    context: String,
    /// Default namespace of the context.
    #[arg(long, default_value = "micro")]
    namespace: String,
    /// Append one JSON line per request to this file.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Milliseconds until a Deployment/StatefulSet looks rolled out after a change.
    #[arg(long, default_value_t = 1000)]
    rollout_delay_ms: u64,
    /// Seconds until a rollout of a `:broken` image reports ProgressDeadlineExceeded.
    #[arg(long, default_value_t = 10)]
    progress_deadline_secs: u64,
    /// Milliseconds until a LoadBalancer Service gets its hostname.
    #[arg(long, default_value_t = 2000)]
    load_balancer_delay_ms: u64,
}

pub fn run(args: TestclusterArgs) -> anyhow::Result<ExitCode> {
    let opts = testcluster::Options {
        listen: args.listen,
        context: args.context,
        namespace: args.namespace,
        kubeconfig: Some(args.kubeconfig),
        audit_log: args.audit_log,
        rollout_delay: Duration::from_millis(args.rollout_delay_ms),
        progress_deadline: Duration::from_secs(args.progress_deadline_secs),
        load_balancer_delay: Duration::from_millis(args.load_balancer_delay_ms),
    };
    let runtime = crate::cli::runtime()?;
    runtime.block_on(async {
        let cluster = testcluster::TestCluster::start(opts).await?;
        eprintln!(
            "testcluster: serving {} (kubeconfig {}); Ctrl-C stops it",
            cluster.url(),
            cluster.kubeconfig().display()
        );
        cluster.serve_until_signal().await
    })?;
    Ok(ExitCode::SUCCESS)
}
