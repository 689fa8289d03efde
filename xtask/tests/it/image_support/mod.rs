//! Shared by the image tests: a private copy of the workspace to build in, the
//! xtask binary, a tiny HTTP/1.0 client, and cleanup of what a test created.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn main_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A unique, lowercase name for this test run (image prefix, containers).
pub fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("xt{tag}{}x{nanos:x}", std::process::id())
}

/// A copy of the workspace (tracked and untracked-but-not-ignored files) in
/// a stable folder under target/, with a git repository of its own and a
/// persistent CARGO_TARGET_DIR, so runs after the first reuse the compiles.
/// A file lock keeps two test runs from sharing one copy at the same time,
/// and another keeps two copies from building into the shared target folder
/// at once (all image tests are one test binary: without it they overlapped,
/// and a compile error in one copy went unseen).
pub struct WorkspaceCopy {
    pub dir: PathBuf,
    pub target_dir: PathBuf,
    _lock: std::fs::File,
    _target_lock: std::fs::File,
}

impl WorkspaceCopy {
    pub fn new(name: &str) -> WorkspaceCopy {
        let base = main_root().join("target/image-tests");
        std::fs::create_dir_all(&base).unwrap();
        let target_lock = std::fs::File::create(base.join("target.lock")).unwrap();
        target_lock.lock().unwrap();
        let lock = std::fs::File::create(base.join(format!("{name}.lock"))).unwrap();
        lock.lock().unwrap();
        let dir = base.join(format!("ws-{name}"));
        let target_dir = base.join("target");
        let listed = Command::new("git")
            .current_dir(main_root())
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .output()
            .unwrap();
        assert!(listed.status.success());
        for rel in listed.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let rel = std::str::from_utf8(rel).unwrap();
            let src = main_root().join(rel);
            let Ok(data) = std::fs::read(&src) else {
                continue;
            }; // deleted in the work tree
            let dst = dir.join(rel);
            // Unchanged files keep their mtime, so cargo sees them as fresh.
            if std::fs::read(&dst).ok().as_deref() != Some(data.as_slice()) {
                std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
                std::fs::write(&dst, &data).unwrap();
            }
        }
        let _ = std::fs::remove_dir_all(dir.join(".git"));
        git(&dir, &["init", "-q"]);
        git(&dir, &["add", "-A"]);
        git(
            &dir,
            &[
                "-c",
                "user.name=test",
                "-c",
                "user.email=test@localhost",
                "commit",
                "-q",
                "-m",
                "copy",
            ],
        );
        WorkspaceCopy {
            dir,
            target_dir,
            _lock: lock,
            _target_lock: target_lock,
        }
    }

    /// `cargo xtask <args>` against this copy, images named `<prefix>/<service>`.
    pub fn xtask(&self, prefix: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(args)
            .arg("--root")
            .arg(&self.dir)
            .arg("--image-prefix")
            .arg(format!("{prefix}/"))
            .env("CARGO_TARGET_DIR", &self.target_dir)
            .current_dir(&self.dir);
        cmd.output().unwrap()
    }

    pub fn head(&self) -> String {
        let out = Command::new("git")
            .current_dir(&self.dir)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    pub fn images_json(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.target_dir.join("xtask/images.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

pub fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .current_dir(dir)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

/// `docker <args>` that must succeed; its stdout, trimmed.
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Removes, on drop, every container, network and image this test created.
#[derive(Default)]
pub struct Cleanup {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    /// Images whose repository contains this text.
    pub image_marker: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
        if !self.image_marker.is_empty() {
            let out = docker(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
            let refs: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains(&self.image_marker))
                .map(String::from)
                .collect();
            if !refs.is_empty() {
                let mut args = vec!["rmi", "-f"];
                args.extend(refs.iter().map(String::as_str));
                let _ = docker(&args);
            }
        }
    }
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 request (no chunked answers, the connection closes at the end).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {head:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

/// Retries `http` until it answers (a container needs a moment to listen).
pub fn http_retry(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match http(addr, method, path, headers, body) {
            Ok(r) => return r,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("{method} http://{addr}{path}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The last stderr line, which must be the one-line `error: ...`.
pub fn error_line(out: &Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_string()
}

/// A `cargo xtask registry` process, stopped on drop.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SIGTERM: the command stops its registry and exits.
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
    }
}

pub fn free_addr() -> String {
    // The kernel may hand the same free port to two tests that ask one after the
    // other (each lets it go at once): never give out one port twice per process.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        if !given.contains(&addr.port()) {
            given.push(addr.port());
            return addr.to_string();
        }
    }
}

/// `cargo xtask registry --listen addr --data data [--tls]`.
pub fn start_registry(addr: &str, data: &Path, tls: bool) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(["registry", "--listen", addr, "--data"])
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if tls {
        cmd.arg("--tls");
    }
    Running(cmd.spawn().unwrap())
}

pub fn wait_for_listener(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "registry did not listen on {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
