//! A `cargo xtask dev` system for end-to-end tests: the real runner binary, on
//! free ports, with its state in a temp folder; the service binaries come from
//! `MICRO_BIN_DIR` (built and exported by `cargo xtask test`).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn bin_dir() -> PathBuf {
    let dir = std::env::var_os("MICRO_BIN_DIR")
        .expect("MICRO_BIN_DIR unset: run the suite with `cargo xtask test` (it builds the services and sets it)");
    PathBuf::from(dir)
}

pub struct DevSystem {
    child: Option<Child>,
    pub state_dir: tempfile::TempDir,
    pub ports: BTreeMap<&'static str, u16>,
}

impl DevSystem {
    /// Start `xtask dev` and wait until webapp and auditservice are ready.
    pub fn start() -> DevSystem {
        let bin_dir = bin_dir();
        let state_dir = tempfile::Builder::new()
            .prefix("micro-e2e-")
            .tempdir()
            .unwrap();
        // PostgreSQL runs as the `postgres` user when we are root: it must be
        // able to enter the folder.
        std::fs::set_permissions(state_dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let ports: BTreeMap<&'static str, u16> =
            ["adderservice", "auditservice", "eventservice", "webapp"]
                .into_iter()
                .map(|s| (s, free_port()))
                .collect();
        let log = std::fs::File::create(state_dir.path().join("dev.log")).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("dev")
            .arg("--bin-dir")
            .arg(&bin_dir)
            .arg("--state-dir")
            .arg(state_dir.path());
        for (name, port) in &ports {
            cmd.arg("--port").arg(format!("{name}={port}"));
        }
        cmd.env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd.spawn().expect("start xtask dev");
        let mut system = DevSystem {
            child: Some(child),
            state_dir,
            ports,
        };
        system.wait_ready(Duration::from_secs(180));
        system
    }

    pub fn url(&self, service: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports[service])
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state_dir.path().join("dev.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for service in ["webapp", "auditservice", "eventservice"] {
            let url = self.url(service, "/readyz");
            loop {
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    panic!(
                        "xtask dev exited ({status}) before it was ready; log:\n{}",
                        self.log()
                    );
                }
                if http_status(self.ports[service], "/readyz") == Some(200) {
                    break;
                }
                if Instant::now() > deadline {
                    panic!(
                        "{url} not ready after {}s; log:\n{}",
                        timeout.as_secs(),
                        self.log()
                    );
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// `cargo xtask report --json` against this system: url -> count.
    pub fn report(&self) -> Result<BTreeMap<String, u64>, String> {
        let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg("report")
            .arg("--state-dir")
            .arg(self.state_dir.path())
            .args(["--", "--json"])
            .output()
            .expect("run xtask report");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("report --json output: {e}"))?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r["url"].as_str().unwrap_or_default().to_string(),
                    r["count"].as_u64().unwrap_or(0),
                )
            })
            .collect())
    }

    /// SIGTERM the runner, wait for it, and check that every process it
    /// started (services, postgres, redis) is gone.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let tree = descendants(child.id());
        assert!(
            tree.len() >= 6,
            "expected services, postgres and redis under the runner, found {tree:?}"
        );
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "xtask dev did not stop within 60s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        // Orphans would be re-parented; look them up by pid.
        std::thread::sleep(Duration::from_millis(200));
        let left: Vec<_> = tree.iter().filter(|pid| alive_not_zombie(**pid)).collect();
        assert!(
            left.is_empty(),
            "processes left behind after SIGTERM: {left:?}; log:\n{}",
            self.log()
        );
        status
    }
}

impl Drop for DevSystem {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // A failed test: stop the runner the polite way so it cleans up.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            for _ in 0..300 {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
        }
    }
}

/// The status code of `GET path` on 127.0.0.1:port (None if it does not answer).
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// Every process below `root` (children, grandchildren, ...).
pub fn descendants(root: u32) -> BTreeSet<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The command name may hold spaces: fields start after the last ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let ppid: u32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        parents.push((pid, ppid));
    }
    let mut found = BTreeSet::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, ppid) in &parents {
            if *ppid == parent && found.insert(*pid) {
                frontier.push(*pid);
            }
        }
    }
    found
}

fn alive_not_zombie(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .map(|(_, r)| r.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}
