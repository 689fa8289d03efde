//! A private redis-server: its own port on 127.0.0.1, its data (append-only
//! file) in a folder under target/.

use super::process::{self, Guard, Output};
use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Holds the append-only file, `redis.pid` and `redis.log`.
    pub dir: PathBuf,
    pub port: u16,
    /// Where the server's log lines go; `None` = `<dir>/redis.log`.
    pub output: Option<Output>,
}

#[derive(Debug)]
pub struct Redis {
    pub guard: Guard,
    pub port: u16,
}

impl Redis {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

pub fn ensure_installed() -> Result<PathBuf> {
    process::ensure_installed("redis-server", "redis-server", || {
        process::which("redis-server")
    })
}

/// Start redis-server and wait until it answers PING.
pub fn start(cfg: &RedisConfig) -> Result<Redis> {
    let bin = ensure_installed()?;
    std::fs::create_dir_all(&cfg.dir).with_context(|| format!("creating {}", cfg.dir.display()))?;
    let dir = std::fs::canonicalize(&cfg.dir)?;
    clear_stale_server(&dir);
    let log = dir.join("redis.log");
    let mut cmd = Command::new(bin);
    // No config file: everything on the command line, nothing from /etc/redis.
    cmd.args([
        "--bind",
        "127.0.0.1",
        "--port",
        &cfg.port.to_string(),
        "--daemonize",
        "no",
    ])
    .args([
        "--appendonly",
        "yes",
        "--save",
        "",
        "--protected-mode",
        "yes",
    ])
    .arg("--dir")
    .arg(&dir)
    .arg("--pidfile")
    .arg(dir.join("redis.pid"));
    let output = cfg
        .output
        .clone()
        .unwrap_or_else(|| Output::File(log.clone()));
    let mut guard = process::spawn("redis", cmd, output, libc::SIGTERM)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], cfg.port));
    // It accepts connections while still loading the append-only file
    // (answering -LOADING), so wait for a real PONG.
    process::wait_until(Duration::from_secs(60), &mut guard, Some(&log), || {
        ping(addr)
    })
    .with_context(|| format!("waiting for redis on {addr}"))?;
    Ok(Redis {
        guard,
        port: cfg.port,
    })
}

fn ping(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 5];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG"
}

/// Stop a redis-server left running in `dir` (as given to [`start`]), if any.
pub fn stop_leftover(dir: &Path) {
    clear_stale_server(dir);
}

/// A redis-server left running on this folder by a killed runner: stop it.
fn clear_stale_server(dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join("redis.pid")) else {
        return;
    };
    let pid: u32 = text.trim().parse().unwrap_or(0);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if pid != 0 && process::alive(pid) && comm.starts_with("redis-server") {
        eprintln!(
            "stopping a redis-server (pid {pid}) left running in {}",
            dir.display()
        );
        // SAFETY: plain syscall.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        for _ in 0..100 {
            if !process::alive(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let _ = std::fs::remove_file(dir.join("redis.pid"));
}
