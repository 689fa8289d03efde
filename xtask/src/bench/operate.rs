//! `cargo xtask bench operate`: port-forward throughput through the test cluster
//! (100 MB each way, to a local TCP server a Pod is bound to), once through the
//! kube crate's WebSocket protocol (what `report --env` uses) and once through
//! `kubectl port-forward` (kubectl 1.31+'s SPDY tunnelled in a WebSocket).
//!
//! The server runs inside the bench process, so a debug build hands over to a
//! release build (`MICRO_BENCH_OPERATE_PROFILE=debug` measures this one).

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use testcluster::{Options, TestCluster};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const MB: usize = 1_000_000;
const TRANSFER: usize = 100 * MB;
const PORT: u16 = 9000;

pub fn run() -> Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (kube, kubectl) = runtime.block_on(measure())?;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    outln!("port-forward through the test cluster ({profile} build), 100 MB each way:")?;
    outln!(
        "  kube crate (v4.channel.k8s.io)   up {:>7.1} MB/s   down {:>7.1} MB/s",
        kube.0,
        kube.1
    )?;
    match kubectl {
        Ok((up, down)) => {
            outln!("  kubectl port-forward (SPDY/WS)   up {up:>7.1} MB/s   down {down:>7.1} MB/s")?
        }
        Err(e) => outln!(
            "  kubectl port-forward: not measured: {}",
            crate::cli::one_line(&e)
        )?,
    }
    Ok(ExitCode::SUCCESS)
}

type Rates = (f64, f64);

async fn measure() -> Result<(Rates, Result<Rates>)> {
    let cluster = TestCluster::start(Options {
        rollout_delay: Duration::from_millis(10),
        ..Options::default()
    })
    .await?;
    let sink = byte_server().await?;
    let client = client(&cluster).await?;
    let pods = bound_pod(&client, sink).await?;
    let kube = kube_rates(&pods).await?;
    let kubectl = kubectl_rates(&cluster).await;
    cluster.shutdown().await;
    Ok((kube, kubectl))
}

/// A server that, per connection, reads a 1-byte command: `u` then counts
/// TRANSFER bytes in and answers one byte; `d` sends TRANSFER bytes.
async fn byte_server() -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut cmd = [0u8; 1];
                if conn.read_exact(&mut cmd).await.is_err() {
                    return;
                }
                let _ = match cmd[0] {
                    b'u' => drain(&mut conn, TRANSFER).await.map(|_| ()),
                    _ => fill(&mut conn, TRANSFER).await,
                };
                let _ = conn.write_all(b"k").await;
                let _ = conn.shutdown().await;
            });
        }
    });
    Ok(addr)
}

async fn drain(r: &mut (impl AsyncRead + Unpin), mut left: usize) -> std::io::Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    while left > 0 {
        // Never past the transfer: the acknowledgement byte follows it.
        let want = left.min(buf.len());
        let n = r.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        left -= n;
    }
    Ok(())
}

async fn fill(w: &mut (impl AsyncWrite + Unpin), mut left: usize) -> std::io::Result<()> {
    let buf = vec![7u8; 256 * 1024];
    while left > 0 {
        let n = left.min(buf.len());
        w.write_all(&buf[..n]).await?;
        left -= n;
    }
    Ok(())
}

async fn client(cluster: &TestCluster) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

async fn bound_pod(client: &kube::Client, sink: SocketAddr) -> Result<Api<Pod>> {
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns =
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "micro"}});
    namespaces
        .create(&PostParams::default(), &serde_json::from_value(ns)?)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "micro");
    let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "sink", "annotations": {format!("forward.testcluster.micro/{PORT}"): sink.to_string()}},
        "spec": {"containers": [{"name": "sink", "image": "sink:1"}]}});
    pods.create(&PostParams::default(), &serde_json::from_value(pod)?)
        .await?;
    Ok(pods)
}

/// Up, then down, one forward each: MB/s.
async fn kube_rates(pods: &Api<Pod>) -> Result<Rates> {
    let mut rates = Vec::new();
    for cmd in [b'u', b'd'] {
        let mut forward = pods.portforward("sink", &[PORT]).await?;
        let mut stream = forward.take_stream(PORT).context("the forwarded stream")?;
        rates.push(
            transfer(&mut stream, cmd)
                .await
                .with_context(|| format!("kube crate forward, {}", cmd as char))?,
        );
        drop(stream);
        forward.abort();
    }
    Ok((rates[0], rates[1]))
}

async fn transfer(conn: &mut (impl AsyncRead + AsyncWrite + Unpin), cmd: u8) -> Result<f64> {
    let started = Instant::now();
    conn.write_all(&[cmd]).await?;
    if cmd == b'u' {
        fill(conn, TRANSFER).await?;
    } else {
        drain(conn, TRANSFER).await?;
    }
    let mut ack = [0u8; 1];
    conn.read_exact(&mut ack).await?;
    Ok(TRANSFER as f64 / MB as f64 / started.elapsed().as_secs_f64())
}

async fn kubectl_rates(cluster: &TestCluster) -> Result<Rates> {
    let mut child = Command::new("kubectl")
        .args([
            "port-forward",
            "-n",
            "micro",
            "pod/sink",
            &format!(":{PORT}"),
        ])
        .env("KUBECONFIG", cluster.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("running kubectl (is it installed?)")?;
    let mut stdout = BufReader::new(child.stdout.take().context("kubectl stdout")?);
    let line = tokio::task::block_in_place(|| {
        let mut line = String::new();
        stdout.read_line(&mut line).map(|_| line)
    })?;
    // kubectl prints a line per connection: keep its stdout open.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let port: u16 = line
        .split_whitespace()
        .nth(2)
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow!("kubectl port-forward printed {line:?}"))?;
    let mut rates = Vec::new();
    for cmd in [b'u', b'd'] {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        rates.push(
            transfer(&mut conn, cmd)
                .await
                .with_context(|| format!("kubectl forward, {}", cmd as char))?,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok((rates[0], rates[1]))
}
