//! Facts about the workspace: where it is and which services it holds.

use std::path::PathBuf;

/// How a service runs: an HTTP server on a port, a queue worker, or a CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Http,
    Worker,
    Cli,
}

#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub name: &'static str,
    /// Default port (`<NAME>_SERVICE_PORT` overrides it at run time).
    pub port: u16,
    pub kind: Kind,
}

/// Every service of the system, in start-up order (dependencies first).
pub const SERVICES: &[Service] = &[
    Service {
        name: "adderservice",
        port: 8080,
        kind: Kind::Http,
    },
    Service {
        name: "auditservice",
        port: 8081,
        kind: Kind::Http,
    },
    Service {
        name: "eventservice",
        port: 8082,
        kind: Kind::Worker,
    },
    Service {
        name: "webapp",
        port: 3000,
        kind: Kind::Http,
    },
    Service {
        name: "report",
        port: 0,
        kind: Kind::Cli,
    },
];

pub fn service(name: &str) -> anyhow::Result<&'static Service> {
    SERVICES.iter().find(|s| s.name == name).ok_or_else(|| {
        let valid: Vec<_> = SERVICES.iter().map(|s| s.name).collect();
        anyhow::anyhow!(
            "unknown service `{name}`; valid services: {}",
            valid.join(", ")
        )
    })
}

/// The workspace root (the folder holding the top-level Cargo.toml).
pub fn root() -> PathBuf {
    // xtask/ sits directly under the root.
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .to_path_buf()
}

/// Cargo's target dir: `CARGO_TARGET_DIR`, else `target/` under the root.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// `target/xtask/`: where the task runner keeps its state (never committed).
pub fn state_dir() -> PathBuf {
    target_dir().join("xtask")
}
