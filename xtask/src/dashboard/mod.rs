//! `cargo xtask dashboard`: a read-only web page of what git says, what runs,
//! and how they differ, kept live by watches and Server-Sent Events.
//!
//! `worker` runs one loop per environment (HEAD, connect, `watch`, then
//! `compute` on every change) and publishes into the `hub`; `server` serves
//! the page (`html`), `/api/state` (`state`, as JSON or YAML) and `/events`
//! (`sse`). It never writes to the cluster or to git: the only requests are
//! the watches and, when an object looks changed, the dry-run apply `status`
//! also makes to confirm it.

mod commits;
mod compute;
pub mod html;
mod hub;
mod server;
mod sse;
pub mod state;
mod watch;
mod worker;

use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cargo xtask dashboard --env minikube\n  \
                        cargo xtask dashboard --env minikube --env aws --listen 127.0.0.1:9000\n  \
                        curl -s 127.0.0.1:8900/api/state?output=json\n\n\
                        Read-only: it never writes to the cluster or to git.")]
pub struct DashboardArgs {
    /// An environment to show (repeat for several; default: every folder
    /// under environments/ with an env.yaml).
    #[arg(long = "env", value_name = "ENV")]
    pub envs: Vec<String>,
    /// Where to serve the page. Loopback by default: anything else shows the
    /// cluster's state to whoever can reach the port.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8900")]
    pub listen: SocketAddr,
    /// Use this kube context, even if it is not the one env.yaml names.
    #[arg(long)]
    pub context: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Read manifests and env.yaml from this git repository (tests, benches).
    #[arg(long, hide = true)]
    pub root: Option<PathBuf>,
}

pub fn run(args: DashboardArgs) -> Result<ExitCode> {
    let root = crate::gitops::source::repo_root(args.root.as_ref());
    let envs = if args.envs.is_empty() {
        crate::environment::Environment::known_in(&root)
    } else {
        args.envs.clone()
    };
    if envs.is_empty() {
        bail!(
            "no environment to show: {} has no environments/<env>/env.yaml",
            root.display()
        );
    }
    // A name that is not an environment at HEAD is bad input, not a banner.
    let mut named = Vec::new();
    for env in &envs {
        let at_head = crate::gitops::source::environment_at(&root, env, None)?;
        named.push((env.clone(), at_head.context));
    }
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "warning: serving on {}, not loopback: anyone who reaches it sees the cluster's state",
            args.listen
        );
    }
    // A LocalSet: the workers hold git2 handles and borrow across awaits;
    // on the one current-thread runtime they need not be Send.
    let local = tokio::task::LocalSet::new();
    crate::cli::runtime()?.block_on(local.run_until(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener.local_addr()?;
        let hub = hub::Hub::new(&named);
        for (env, _) in &named {
            let worker = worker::Worker {
                env: env.clone(),
                root: root.clone(),
                kubeconfig: args.kubeconfig.clone(),
                context: args.context.clone(),
                images: crate::image::record::ImageRecord::path(),
                hub: hub.clone(),
            };
            tokio::task::spawn_local(worker.run());
        }
        outln!("dashboard on http://{address}/ (Ctrl-C stops it)")?;
        // Not a graceful shutdown: open /events streams never end by themselves.
        tokio::select! {
            served = axum::serve(listener, server::router(hub, server::allowed_hosts(address))) => served.context("serving the dashboard")?,
            _ = stop_signal() => {}
        }
        Ok(ExitCode::SUCCESS)
    }))
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
