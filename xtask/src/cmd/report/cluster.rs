//! `report --env <env>`: the report against a live cluster, through the Kubernetes
//! API only. Connect as sync does (env.yaml's context guard), read the Redis
//! password from the Secret the redis definition names, port-forward to `redis-0`,
//! run the report library against the forwarded port, close the forward.

use super::ReportArgs;
use super::forward::Forward;
use crate::environment::Environment;
use crate::gitops::cluster::{Cluster, connect};
use crate::manifest::definition::{Definitions, EnvValue, InfraDefinition};
use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::Api;
use std::process::ExitCode;

/// The Redis the report asks, as the definitions describe it.
pub struct RedisTarget {
    pub pod: String,
    pub port: u16,
    pub secret: String,
    pub key: String,
}

pub fn run(env_name: &str, args: &ReportArgs) -> Result<ExitCode> {
    let root = crate::workspace::root();
    let env = Environment::load_in(&root, env_name)?;
    let target = redis_target(&Definitions::load(&root)?)?;
    let parsed = report_args(&args.report_args)?;
    let image = match (args.in_cluster, &args.image) {
        (false, _) => None,
        (true, Some(image)) => Some(image.clone()),
        (true, None) => Some(report_image(&env)?),
    };
    crate::cli::runtime()?.block_on(async {
        let cluster = connect(args.kubeconfig.as_deref(), args.context.as_deref(), &env).await?;
        match image {
            Some(image) => {
                password(&cluster, &env.namespace, &target, &env.name).await?;
                super::in_cluster::run(&cluster, &env, &image, &target, &args.report_args).await
            }
            None => {
                let out = report(&cluster, &env, &target, parsed).await?;
                out!("{out}")?;
                Ok(())
            }
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// report's image as pushed to the environment's registry (`build-all --push`).
fn report_image(env: &Environment) -> Result<String> {
    let record = crate::image::record::ImageRecord::load()?;
    Ok(crate::manifest::images::resolve("report", env, &record, None)?.to_string())
}

/// The report tool's own flags (`-- --json --timeout 10s`).
fn report_args(extra: &[String]) -> Result<report::Args> {
    let argv = std::iter::once("report".to_string()).chain(extra.iter().cloned());
    report::Args::try_parse_from(argv).map_err(|e| {
        let text = e.to_string();
        anyhow!("report arguments: {}", text.lines().next().unwrap_or(""))
    })
}

/// redis-0 of the `redis` StatefulSet, its port, and where its clients' password is.
fn redis_target(defs: &Definitions) -> Result<RedisTarget> {
    let redis: &InfraDefinition = defs
        .infrastructure
        .iter()
        .find(|d| d.name == "redis")
        .context("no infrastructure definition named redis")?;
    let Some(EnvValue::Secret(secret)) = redis.client_env.get("REDIS_PASSWORD") else {
        bail!("infrastructure/redis.yaml gives clients no REDIS_PASSWORD secretKeyRef");
    };
    Ok(RedisTarget {
        pod: format!("{}-0", redis.name),
        port: redis.port,
        secret: secret.secret_key_ref.name.clone(),
        key: secret.secret_key_ref.key.clone(),
    })
}

async fn report(
    cluster: &Cluster,
    env: &Environment,
    target: &RedisTarget,
    mut args: report::Args,
) -> Result<String> {
    let ns = env.namespace.as_str();
    let password = password(cluster, ns, target, &env.name).await?;
    running_pod(cluster, ns, &target.pod, &env.name).await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
    let forward = Forward::open(pods, &target.pod, target.port).await?;
    args.redis_url = Some(report::redis_url_with_password(
        &password,
        &forward.addr().to_string(),
    ));
    let result = report::run(&args).await;
    forward.close().await;
    result.map_err(|e| anyhow!("{e:#} (through a port-forward to pod {ns}/{})", target.pod))
}

async fn password(cluster: &Cluster, ns: &str, target: &RedisTarget, env: &str) -> Result<String> {
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), ns);
    let what = format!("reading Secret {ns}/{}", target.secret);
    let secret = secrets
        .get_opt(&target.secret)
        .await
        .map_err(|e| cluster.explain(&what, e))?
        .ok_or_else(|| {
            anyhow!(
                "Secret {ns}/{} does not exist: create it with `cargo xtask secrets --env {env}`",
                target.secret
            )
        })?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&target.key))
        .ok_or_else(|| anyhow!("Secret {ns}/{} has no key {:?}", target.secret, target.key))?;
    String::from_utf8(value.0.clone()).map_err(|_| {
        anyhow!(
            "Secret {ns}/{} key {:?} is not text",
            target.secret,
            target.key
        )
    })
}

async fn running_pod(cluster: &Cluster, ns: &str, name: &str, env: &str) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), ns);
    let what = format!("reading pod {ns}/{name}");
    let pod = pods
        .get_opt(name)
        .await
        .map_err(|e| cluster.explain(&what, e))?
        .ok_or_else(|| {
            anyhow!("pod {ns}/{name} does not exist: is redis deployed (`cargo xtask sync --env {env}`)?")
        })?;
    let phase = pod
        .status
        .and_then(|s| s.phase)
        .unwrap_or_else(|| "Unknown".into());
    if phase != "Running" {
        bail!("pod {ns}/{name} is {phase}, not Running: see `cargo xtask status --env {env}`");
    }
    Ok(())
}
