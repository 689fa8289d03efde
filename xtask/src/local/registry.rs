//! A private image registry: Debian's `docker-registry` (distribution 2.x)
//! with a generated config, filesystem storage under a folder of ours, plain
//! HTTP or TLS.
//!
//! ```ignore
//! let reg = local::registry::start(&RegistryConfig {
//!     addr: "127.0.0.1:5000".parse()?,
//!     data_dir: workspace::state_dir().join("registry"),
//!     tls: None,
//!     output: None,
//! })?;
//! // push to reg.addr ...; dropping `reg` stops the registry.
//! ```

use super::process::{self, Guard, Output};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Where it listens, e.g. 127.0.0.1:5000.
    pub addr: SocketAddr,
    /// Holds `storage/`, the generated `config.yml` and `registry.log`.
    pub data_dir: PathBuf,
    /// PEM certificate and key paths: serve HTTPS instead of HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Where its log lines go; `None` = `<data_dir>/registry.log`.
    pub output: Option<Output>,
}

#[derive(Debug)]
pub struct Registry {
    /// Dropping it stops the registry; `guard.wait_unless(flag)` runs it in the foreground.
    pub guard: Guard,
    pub addr: SocketAddr,
}

pub fn ensure_installed() -> Result<PathBuf> {
    process::ensure_installed("docker-registry", "docker-registry", || {
        process::which("docker-registry")
    })
}

/// Start the registry and wait until its port answers.
pub fn start(cfg: &RegistryConfig) -> Result<Registry> {
    process::ensure_port_free(cfg.addr)?;
    let bin = ensure_installed()?;
    let storage = cfg.data_dir.join("storage");
    std::fs::create_dir_all(&storage).with_context(|| format!("creating {}", storage.display()))?;
    let storage = std::fs::canonicalize(storage)?;
    let config_path = cfg.data_dir.join("config.yml");
    std::fs::write(&config_path, config_yaml(cfg, &storage))
        .with_context(|| format!("writing {}", config_path.display()))?;
    let log = cfg.data_dir.join("registry.log");
    let mut cmd = Command::new(bin);
    cmd.arg("serve").arg(&config_path);
    // The Debian package reads no environment we rely on, but keep it from
    // picking up a user's REGISTRY_* overrides by accident.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            cmd.env_remove(key);
        }
    }
    let output = cfg
        .output
        .clone()
        .unwrap_or_else(|| Output::File(log.clone()));
    let mut guard = process::spawn("registry", cmd, output, libc::SIGTERM)?;
    process::wait_for_port(cfg.addr, Duration::from_secs(30), &mut guard, Some(&log))?;
    Ok(Registry {
        guard,
        addr: cfg.addr,
    })
}

fn config_yaml(cfg: &RegistryConfig, storage: &std::path::Path) -> String {
    let mut yaml = format!(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {}\n",
        quote(&storage.to_string_lossy()),
        cfg.addr
    );
    if let Some((cert, key)) = &cfg.tls {
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            quote(&cert.to_string_lossy()),
            quote(&key.to_string_lossy())
        ));
    }
    yaml
}

/// A YAML double-quoted scalar (paths may hold spaces or colons).
fn quote(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}
