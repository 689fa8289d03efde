//! `dev.json` in the dev state folder: what a running `cargo xtask dev` serves,
//! for `cargo xtask report` and for refusing a second runner on the same data.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevState {
    /// The runner's pid.
    pub pid: u32,
    pub redis_url: String,
    pub postgres_url: String,
    /// The DNS server, `127.0.0.1:PORT`.
    pub dns: String,
    /// Service -> port on 127.0.0.1.
    pub ports: BTreeMap<String, u16>,
    pub bin_dir: PathBuf,
}

const FILE: &str = "dev.json";

impl DevState {
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(FILE);
        std::fs::write(&path, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// The state of the runner using `dir`, if it is still alive.
    pub fn running_in(dir: &Path) -> Option<DevState> {
        let text = std::fs::read_to_string(dir.join(FILE)).ok()?;
        let state: DevState = serde_json::from_str(&text).ok()?;
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", state.pid)).unwrap_or_default();
        let is_xtask = String::from_utf8_lossy(&cmdline).contains("xtask");
        (is_xtask && state.pid != std::process::id()).then_some(state)
    }

    pub fn remove(dir: &Path) {
        let _ = std::fs::remove_file(dir.join(FILE));
    }
}
