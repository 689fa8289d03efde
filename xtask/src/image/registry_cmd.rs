//! `cargo xtask registry`: the team/minikube image registry on this machine.
//!
//! Runs the `registry:2` image when the engine already has it (it cannot be
//! pulled everywhere), else Debian's `docker-registry` binary through
//! `local::registry`. `--tls` serves HTTPS with a self-signed certificate kept
//! in the data folder (so engines trusting it keep trusting it across restarts).

use crate::local::registry::{self, RegistryConfig};
use anyhow::{Context, Result, bail};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(after_help = "Example: cargo xtask registry --listen 127.0.0.1:5000 --tls")]
pub struct RegistryArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5000")]
    pub listen: SocketAddr,
    /// Where the images are stored (default target/xtask/registry).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate (generated once, printed how to trust it).
    #[arg(long)]
    pub tls: bool,
}

pub fn run_registry(args: RegistryArgs) -> Result<ExitCode> {
    // Before anything is announced: a busy port is one clear error.
    crate::local::process::ensure_port_free(args.listen)
        .context("cannot start the registry (choose a free port with --listen)")?;
    let data = args
        .data
        .clone()
        .unwrap_or_else(|| crate::workspace::state_dir().join("registry"));
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    let data = data.canonicalize()?;
    let tls = if args.tls {
        Some(certificate(&data, args.listen)?)
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let stop = crate::local::process::catch_stop_signals();

    let runtime = crate::cli::runtime()?;
    let engine = runtime.block_on(super::engine::Engine::connect()).ok();
    let image = match &engine {
        Some(engine) => runtime
            .block_on(engine.inspect("registry:2"))?
            .map(|_| "registry:2"),
        None => None,
    };
    if let (Some(engine), Some(image)) = (&engine, image) {
        let name = format!("xtask-registry-{}", args.listen.port());
        runtime.block_on(engine.run_registry_container(
            &name,
            image,
            args.listen,
            &data,
            tls.as_ref(),
        ))?;
        outln!(
            "registry ({image} container {name}) on {scheme}://{} storing in {}; Ctrl-C stops it",
            args.listen,
            data.display()
        )?;
        print_trust(&args, tls.as_ref())?;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        runtime.block_on(engine.remove_container(&name))?;
        return Ok(ExitCode::SUCCESS);
    }

    let mut running = registry::start(&RegistryConfig {
        addr: args.listen,
        data_dir: data.clone(),
        tls: tls.clone(),
        output: None,
    })?;
    outln!(
        "registry (docker-registry) on {scheme}://{} storing in {}; Ctrl-C stops it",
        running.addr,
        data.display()
    )?;
    print_trust(&args, tls.as_ref())?;
    let status = running.guard.wait_unless(stop)?;
    if !stop.load(std::sync::atomic::Ordering::SeqCst) {
        bail!(
            "docker-registry exited on its own ({status}); see {}",
            data.join("registry.log").display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_trust(args: &RegistryArgs, tls: Option<&(PathBuf, PathBuf)>) -> std::io::Result<()> {
    if let Some((cert, _)) = tls {
        let host = args.listen;
        outln!("make the Docker engine trust it (no restart needed):")?;
        outln!(
            "  sudo mkdir -p /etc/docker/certs.d/{host} && sudo cp {} /etc/docker/certs.d/{host}/ca.crt",
            cert.display()
        )?;
    } else {
        outln!(
            "plain HTTP: engines trust 127.0.0.0/8 registries; others need \"insecure-registries\" in daemon.json"
        )?;
    }
    Ok(())
}

/// `<data>/certs/registry.{crt,key}`, generated when missing: a self-signed
/// certificate for the listen address, localhost and 127.0.0.1.
fn certificate(data: &Path, listen: SocketAddr) -> Result<(PathBuf, PathBuf)> {
    let dir = data.join("certs");
    let (cert_path, key_path) = (dir.join("registry.crt"), dir.join("registry.key"));
    if cert_path.exists() && key_path.exists() {
        return Ok((cert_path, key_path));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let ip = listen.ip().to_string();
    if !listen.ip().is_unspecified() && !names.contains(&ip) {
        names.push(ip);
    }
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim().to_string();
        if !host.is_empty() && !names.contains(&host) {
            names.push(host);
        }
    }
    let generated =
        rcgen::generate_simple_self_signed(names).context("generating the registry certificate")?;
    std::fs::write(&cert_path, generated.cert.pem())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    std::fs::write(&key_path, generated.signing_key.serialize_pem())
        .with_context(|| format!("writing {}", key_path.display()))?;
    Ok((cert_path, key_path))
}
