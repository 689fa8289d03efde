//! A private PostgreSQL cluster: initdb into a folder under target/, its own
//! port on 127.0.0.1, trust authentication for 127.0.0.1 only, the unix socket
//! inside the data folder (so it never collides with a system cluster).
//!
//! initdb and postgres refuse to run as root, so as root both run as the
//! `postgres` system user, which owns the data folder.

use super::process::{self, Guard, Output};
use anyhow::{Context, Result, bail};
use std::ffi::CString;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// Holds `data/` (the cluster) and `postgres.log`.
    pub dir: PathBuf,
    pub port: u16,
    /// Trade durability for speed (fsync off): for throw-away test clusters.
    pub ephemeral: bool,
    /// Where the server's own log lines go; `None` = `<dir>/postgres.log`.
    pub output: Option<Output>,
}

#[derive(Debug)]
pub struct Postgres {
    pub guard: Guard,
    pub port: u16,
    pub data_dir: PathBuf,
}

/// Start a cluster, creating it first if `dir` holds none, and wait until it
/// accepts queries.
pub fn start(cfg: &PostgresConfig) -> Result<Postgres> {
    let bin = ensure_installed()?;
    let owner = run_as_user()?;
    std::fs::create_dir_all(&cfg.dir).with_context(|| format!("creating {}", cfg.dir.display()))?;
    let log = cfg.dir.join("postgres.log");
    let data_dir = data_dir(&cfg.dir, owner.as_ref())?;
    if !data_dir.join("PG_VERSION").exists() {
        init_cluster(&bin, &data_dir, owner.as_ref(), &log)?;
    }
    clear_stale_server(&data_dir)?;

    let mut cmd = Command::new(bin.join("postgres"));
    cmd.arg("-D")
        .arg(&data_dir)
        .arg("-p")
        .arg(cfg.port.to_string());
    // The unix socket sits in the data folder, away from any system cluster;
    // a path too long for a socket address (108 bytes) means TCP only.
    if data_dir.as_os_str().len() + ".s.PGSQL.65535".len() < 100 {
        cmd.arg("-k").arg(&data_dir);
    } else {
        cmd.args(["-c", "unix_socket_directories="]);
    }
    cmd.args([
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=300",
    ]);
    if cfg.ephemeral {
        cmd.args([
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "synchronous_commit=off",
        ]);
    }
    as_user(&mut cmd, owner.as_ref());
    let output = cfg
        .output
        .clone()
        .unwrap_or_else(|| Output::File(log.clone()));
    // SIGINT is postgres' "fast" shutdown: it does not wait for clients to leave.
    let mut guard = process::spawn("postgres", cmd, output, libc::SIGINT)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], cfg.port));
    process::wait_for_port(addr, Duration::from_secs(60), &mut guard, Some(&log))?;
    // The port answers before recovery is over; wait until a query works.
    let url = superuser_url(cfg.port);
    let mut last_error = String::new();
    process::wait_until(
        Duration::from_secs(60),
        &mut guard,
        Some(&log),
        || match execute(&url, "SELECT 1") {
            Ok(()) => true,
            Err(err) => {
                last_error = crate::cli::one_line(&err);
                false
            }
        },
    )
    .with_context(|| {
        format!(
            "postgres on port {} does not answer queries: {last_error}",
            cfg.port
        )
    })?;
    let pg = Postgres {
        guard,
        port: cfg.port,
        data_dir,
    };
    Ok(pg)
}

impl Postgres {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the superuser (trust auth).
    pub fn superuser_url(&self) -> String {
        superuser_url(self.port)
    }

    /// Create a login role and a database it owns, if they do not exist yet.
    pub fn ensure_role_and_database(&self, role: &str, database: &str) -> Result<()> {
        let url = self.superuser_url();
        let role_sql = format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE \"{role}\" LOGIN; END IF; END $$"
        );
        execute(&url, &role_sql).with_context(|| format!("creating role {role}"))?;
        let exists = query_one_bool(
            &url,
            &format!("SELECT EXISTS (SELECT FROM pg_database WHERE datname = '{database}')"),
        )?;
        if !exists {
            execute(
                &url,
                &format!("CREATE DATABASE \"{database}\" OWNER \"{role}\""),
            )
            .with_context(|| format!("creating database {database}"))?;
        }
        Ok(())
    }
}

fn superuser_url(port: u16) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres")
}

/// Run statements on `url` (one connection, closed afterwards).
pub fn execute(url: &str, sql: &str) -> Result<()> {
    block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let conn = tokio::spawn(connection);
        client.batch_execute(sql).await?;
        drop(client);
        let _ = conn.await;
        Ok(())
    })
}

fn query_one_bool(url: &str, sql: &str) -> Result<bool> {
    block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let conn = tokio::spawn(connection);
        let row = client.query_one(sql, &[]).await?;
        drop(client);
        let _ = conn.await;
        Ok(row.get(0))
    })
}

fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    crate::cli::runtime()?.block_on(future)
}

/// The folder with initdb and postgres: the newest Debian cluster version, or
/// whatever PATH has.
fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| {
            bin.join("initdb").is_file() && bin.join("postgres").is_file()
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    let initdb = process::which("initdb")?;
    let bin = std::fs::canonicalize(initdb).ok()?.parent()?.to_path_buf();
    bin.join("postgres").is_file().then_some(bin)
}

pub fn ensure_installed() -> Result<PathBuf> {
    process::ensure_installed("postgres", "postgresql", find_bin_dir)
}

/// The system user to run postgres as: `postgres` when we are root, else none.
#[derive(Debug, Clone)]
pub struct User {
    name: String,
    uid: u32,
    gid: u32,
}

fn run_as_user() -> Result<Option<User>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("postgres")?;
    // SAFETY: getpwnam returns null or a pointer to a static passwd entry we copy at once.
    let entry = unsafe { libc::getpwnam(name.as_ptr()) };
    if entry.is_null() {
        bail!(
            "running as root, and there is no `postgres` system user to run postgres as (initdb refuses root)"
        );
    }
    // SAFETY: non-null pointer from getpwnam.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some(User {
        name: "postgres".into(),
        uid,
        gid,
    }))
}

fn as_user(cmd: &mut Command, user: Option<&User>) {
    if let Some(user) = user {
        cmd.uid(user.uid)
            .gid(user.gid)
            .env("USER", &user.name)
            .env("HOME", "/tmp");
    }
}

fn chown(path: &Path, user: &User) -> Result<()> {
    let c = CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: valid NUL-terminated path.
    if unsafe { libc::chown(c.as_ptr(), user.uid, user.gid) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("chown {} to {}", path.display(), user.name));
    }
    Ok(())
}

/// Where the cluster lives: `<dir>/data`, unless postgres runs as the
/// `postgres` user and cannot walk down to `dir` (a work tree under /root, a
/// 0700 temp dir): then a folder of its own under the system temp dir, named
/// after `dir` so the same state folder always finds the same cluster.
pub fn data_dir(dir: &Path, user: Option<&User>) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    let dir = std::fs::canonicalize(dir)?;
    let Some(user) = user else {
        return Ok(dir.join("data"));
    };
    let blocked = dir.ancestors().skip(1).find(|ancestor| {
        std::fs::metadata(ancestor)
            .map(|m| m.uid() != user.uid && m.mode() & 0o001 == 0)
            .unwrap_or(true)
    });
    match blocked {
        None => {
            chown(&dir, user)?;
            Ok(dir.join("data"))
        }
        Some(ancestor) => {
            let hash = hex::encode(Sha256::digest(dir.as_os_str().as_encoded_bytes()));
            let outside = std::env::temp_dir().join(format!("micro-postgres-{}", &hash[..16]));
            std::fs::create_dir_all(&outside)?;
            std::fs::set_permissions(
                &outside,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )?;
            chown(&outside, user)?;
            eprintln!(
                "note: the `{}` user cannot enter {}; the PostgreSQL data lives in {}",
                user.name,
                ancestor.display(),
                outside.display()
            );
            Ok(outside.join("data"))
        }
    }
}

fn init_cluster(bin: &Path, data_dir: &Path, owner: Option<&User>, log: &Path) -> Result<()> {
    if data_dir.exists() {
        // A half-made cluster from an interrupted initdb: start over.
        std::fs::remove_dir_all(data_dir)
            .with_context(|| format!("removing {}", data_dir.display()))?;
    }
    std::fs::create_dir_all(data_dir)?;
    if let Some(user) = owner {
        chown(data_dir, user)?;
    }
    // A one-shot, but on std::process rather than xshell: as root it must run as
    // the `postgres` user (uid/gid), which xshell's `Cmd` cannot set.
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D").arg(data_dir).args([
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    ]);
    as_user(&mut cmd, owner);
    let out = cmd.output().context("running initdb")?;
    std::fs::write(log, [&out.stdout[..], &out.stderr[..]].concat())?;
    if !out.status.success() {
        bail!(
            "initdb failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    // Trust, but only over the private socket and 127.0.0.1.
    let hba = "local all all trust\nhost all all 127.0.0.1/32 trust\n";
    std::fs::write(data_dir.join("pg_hba.conf"), hba)?;
    if let Some(user) = owner {
        chown(&data_dir.join("pg_hba.conf"), user)?;
    }
    Ok(())
}

/// Stop a server left running in `dir` (as given to [`start`]), if any, and
/// remove a data folder kept outside `dir`.
pub fn stop_leftover(dir: &Path) {
    let Ok(user) = run_as_user() else { return };
    let Ok(data) = data_dir(dir, user.as_ref()) else {
        return;
    };
    let _ = clear_stale_server(&data);
    if !data.starts_with(std::fs::canonicalize(dir).unwrap_or_default()) {
        let _ = std::fs::remove_dir_all(data.parent().unwrap_or(&data));
    }
}

/// A server left running by a runner that was killed: stop it (the caller owns
/// this folder). A lock file of a process that is gone is removed.
fn clear_stale_server(data_dir: &Path) -> Result<()> {
    let pid_file = data_dir.join("postmaster.pid");
    let Ok(text) = std::fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let pid: u32 = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if pid != 0 && process::alive(pid) && comm.trim() == "postgres" {
        eprintln!(
            "stopping a postgres (pid {pid}) left running in {}",
            data_dir.display()
        );
        // SAFETY: plain syscall.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
        for _ in 0..100 {
            if !process::alive(pid) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if process::alive(pid) {
            // SAFETY: plain syscall.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let _ = std::fs::remove_file(&pid_file);
    Ok(())
}
