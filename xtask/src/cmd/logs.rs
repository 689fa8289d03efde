//! `cargo xtask logs --env <env> <service> [-f]`: the logs of every Pod of a
//! service (label `app.kubernetes.io/name=<service>`), through the Kubernetes API,
//! each line prefixed with its Pod's name as `dev` prefixes its services' lines.
//! Without `-f` each Pod's log is printed whole, one Pod after the other; with
//! `-f` the lines of all replicas interleave as they come.

use crate::environment::Environment;
use crate::gitops::cluster::{Cluster, connect};
use anyhow::{Result, anyhow, bail};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, LogParams};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask logs --env minikube webapp\n  cargo xtask logs --env aws eventservice -f --tail 20"
)]
pub struct LogsArgs {
    /// Environment: its kube context and namespace come from env.yaml.
    #[arg(long)]
    pub env: String,
    /// The service whose Pods to read (their label app.kubernetes.io/name).
    pub service: String,
    /// Keep following the logs.
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines of each Pod.
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, as kubectl).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Use this kube context instead of env.yaml's `context`.
    #[arg(long)]
    pub context: Option<String>,
}

pub fn run(args: LogsArgs) -> Result<ExitCode> {
    let env = Environment::load_in(&crate::workspace::root(), &args.env)?;
    crate::cli::runtime()?.block_on(async {
        let cluster = connect(args.kubeconfig.as_deref(), args.context.as_deref(), &env).await?;
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &env.namespace);
        let names = pod_names(&cluster, &pods, &env, &args.service).await?;
        let labels = Labels::new(&names);
        let params = LogParams {
            follow: args.follow,
            tail_lines: args.tail,
            ..LogParams::default()
        };
        if args.follow {
            follow(&pods, &names, &params, &labels).await
        } else {
            whole(&pods, &names, &params, &labels).await
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn pod_names(
    cluster: &Cluster,
    pods: &Api<Pod>,
    env: &Environment,
    service: &str,
) -> Result<Vec<String>> {
    let selector = format!("app.kubernetes.io/name={service}");
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| cluster.explain(&format!("listing the pods of {service}"), e))?;
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    if names.is_empty() {
        bail!(
            "no pods of service `{service}` in namespace {} (label {selector}): is it deployed (`cargo xtask status --env {}`)?",
            env.namespace,
            env.name
        );
    }
    names.sort();
    Ok(names)
}

async fn whole(
    pods: &Api<Pod>,
    names: &[String],
    params: &LogParams,
    labels: &Labels,
) -> Result<()> {
    for name in names {
        let text = pods
            .logs(name, params)
            .await
            .map_err(|e| anyhow!("reading the log of pod {name}: {e}"))?;
        for line in text.lines() {
            outln!("{}{line}", labels.prefix(name))?;
        }
    }
    Ok(())
}

/// Every Pod's lines as they come, until every log has ended.
async fn follow(
    pods: &Api<Pod>,
    names: &[String],
    params: &LogParams,
    labels: &Labels,
) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<(String, String)>>(256);
    for name in names {
        let (pods, name, params, tx) = (pods.clone(), name.clone(), params.clone(), tx.clone());
        tokio::spawn(async move {
            let stream = match pods.log_stream(&name, &params).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx
                        .send(Err(anyhow!("reading the log of pod {name}: {e}")))
                        .await;
                    return;
                }
            };
            let mut lines = stream.lines();
            while let Some(Ok(line)) = lines.next().await {
                if tx.send(Ok((name.clone(), line))).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    while let Some(item) = rx.recv().await {
        let (name, line) = item?;
        outln!("{}{line}", labels.prefix(&name))?;
    }
    Ok(())
}

/// Padded, coloured Pod names, as `dev` prefixes its services' lines.
struct Labels {
    names: Vec<String>,
    width: usize,
    colour: bool,
}

impl Labels {
    fn new(names: &[String]) -> Labels {
        Labels {
            names: names.to_vec(),
            width: names.iter().map(String::len).max().unwrap_or(0),
            colour: crate::cli::colour::enabled(),
        }
    }

    fn prefix(&self, name: &str) -> String {
        let width = self.width;
        if !self.colour {
            return format!("{name:>width$} | ");
        }
        let index = self.names.iter().position(|n| n == name).unwrap_or(0);
        let colour = [36, 33, 35, 32, 34, 31][index % 6];
        format!("\x1b[{colour}m{name:>width$}\x1b[0m | ")
    }
}
