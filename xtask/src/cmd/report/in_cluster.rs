//! `report --env <env> --in-cluster`: what `kubectl run -i --rm report` does.
//! The report image runs as a one-off Pod labelled `app.kubernetes.io/name=report`
//! (the label the NetworkPolicies let reach Redis), with the Redis password from
//! the same Secret the report's clients use; its log is followed and printed, and
//! the Pod is deleted however it ended.

use super::cluster::RedisTarget;
use crate::environment::Environment;
use crate::gitops::cluster::Cluster;
use anyhow::{Context, Result, anyhow, bail};
use futures::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, LogParams, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};

/// How long the Pod may take to start, and then to finish.
const START_TIMEOUT: Duration = Duration::from_secs(120);
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

pub async fn run(
    cluster: &Cluster,
    env: &Environment,
    image: &str,
    target: &RedisTarget,
    report_args: &[String],
) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &env.namespace);
    let name = format!("report-{:08x}", rand_suffix());
    let pod = pod(&name, image, target, report_args)?;
    pods.create(&PostParams::default(), &pod)
        .await
        .map_err(|e| cluster.explain(&format!("creating pod {}/{name}", env.namespace), e))?;
    let result = follow(&pods, &name).await;
    let _ = pods.delete(&name, &DeleteParams::default()).await;
    result
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ std::process::id())
        .unwrap_or(0)
}

fn pod(name: &str, image: &str, target: &RedisTarget, args: &[String]) -> Result<Pod> {
    let value = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "report", "app.kubernetes.io/part-of": "micro"}},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "report", "image": image, "args": args,
                "env": [{"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": target.secret, "key": target.key}}}],
            }],
        },
    });
    serde_json::from_value(value).context("building the report pod")
}

/// Waits for the container to start, prints its log as it comes, then its end.
async fn follow(pods: &Api<Pod>, name: &str) -> Result<()> {
    wait_for(pods, name, START_TIMEOUT, |phase| phase != "Pending").await?;
    let params = LogParams {
        follow: true,
        container: Some("report".into()),
        ..LogParams::default()
    };
    let mut lines = pods
        .log_stream(name, &params)
        .await
        .map_err(|e| anyhow!("reading the log of pod {name}: {e}"))?
        .lines();
    while let Some(line) = lines.next().await {
        let line = line.map_err(|e| anyhow!("reading the log of pod {name}: {e}"))?;
        outln!("{line}")?;
    }
    let phase = wait_for(pods, name, RUN_TIMEOUT, |phase| {
        phase == "Succeeded" || phase == "Failed"
    })
    .await?;
    if phase == "Failed" {
        bail!("the report pod {name} failed (its log is above)");
    }
    Ok(())
}

/// Polls the Pod's phase until `done` says so; returns that phase.
async fn wait_for(
    pods: &Api<Pod>,
    name: &str,
    timeout: Duration,
    done: impl Fn(&str) -> bool,
) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let pod = pods
            .get_opt(name)
            .await
            .map_err(|e| anyhow!("reading pod {name}: {e}"))?
            .ok_or_else(|| anyhow!("pod {name} disappeared"))?;
        let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
        if done(&phase) {
            return Ok(phase);
        }
        if Instant::now() > deadline {
            bail!("pod {name} is still {phase} after {}s", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
