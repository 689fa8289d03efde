//! Child processes that never outlive the task runner.
//!
//! Every child runs in its own process group, so stopping it also stops what it
//! forked (postgres backends, cargo's test binaries). The [`Guard`] stops the
//! group when dropped, and the kernel sends the stop signal to the child if the
//! runner itself dies without running destructors (PR_SET_PDEATHSIG).

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use xshell::cmd;

/// Where a child's stdout and stderr go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Each line on our stdout, after this prefix (which may hold colour codes).
    Prefixed(String),
    /// Appended to a log file (shown to the user when the child fails).
    File(PathBuf),
    /// Our own stdout/stderr, untouched.
    Inherit,
}

/// A running child; dropping it stops the child's whole process group.
#[derive(Debug)]
pub struct Guard {
    name: String,
    child: Child,
    stop_signal: i32,
    stopped: bool,
}

/// How long a child may take to stop after the stop signal before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Start `cmd` in a new process group. `stop_signal` is what asks it to stop
/// (SIGTERM for most programs, SIGINT for postgres' "fast" shutdown).
/// Supervised children stay on `std::process`: xshell only runs a command to completion.
pub fn spawn(name: &str, mut cmd: Command, output: Output, stop_signal: i32) -> Result<Guard> {
    cmd.stdin(Stdio::null()).process_group(0);
    // SAFETY: prctl is async-signal-safe; it runs in the forked child before exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, stop_signal as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    match &output {
        Output::Prefixed(_) => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Output::File(path) => {
            let file = File::options()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?;
            cmd.stdout(file.try_clone()?).stderr(file);
        }
        Output::Inherit => {}
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {name} (`{program}`)"))?;
    if let Output::Prefixed(prefix) = output {
        if let Some(out) = child.stdout.take() {
            forward_lines(out, prefix.clone());
        }
        if let Some(err) = child.stderr.take() {
            forward_lines(err, prefix);
        }
    }
    Ok(Guard {
        name: name.to_string(),
        child,
        stop_signal,
        stopped: false,
    })
}

/// Copy each line of `source` to our stdout after `prefix`, in one write so
/// lines of different children never interleave mid-line.
fn forward_lines(source: impl Read + Send + 'static, prefix: String) {
    thread::spawn(move || {
        let mut reader = BufReader::new(source);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\n', '\r']);
                    // A closed stdout drops the line; dev notices via stdout::closed().
                    let _ = outln!("{prefix}{text}");
                }
            }
        }
    });
}

impl Guard {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the child has exited (never blocks).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let status = self
            .child
            .try_wait()
            .with_context(|| format!("checking on {}", self.name))?;
        if status.is_some() {
            self.stopped = true;
        }
        Ok(status)
    }

    /// Send a signal to the child's whole process group.
    pub fn signal_group(&self, signal: i32) {
        // SAFETY: plain syscall; a negative pid addresses the process group.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), signal);
        }
    }

    /// Ask the group to stop, wait up to [`STOP_GRACE`], then kill it.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if self.stopped {
            // The leader is gone, but it may have left group members behind.
            self.signal_group(libc::SIGKILL);
            return self.child.try_wait().ok().flatten();
        }
        self.signal_group(self.stop_signal);
        let deadline = Instant::now() + STOP_GRACE;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
                _ => {
                    self.signal_group(libc::SIGKILL);
                    break self.child.wait().ok();
                }
            }
        };
        // Stragglers that ignored the signal (none expected) go too.
        self.signal_group(libc::SIGKILL);
        self.stopped = true;
        status
    }

    /// Wait for the child to exit on its own, polling `interrupted`: once it is
    /// set, the group is stopped instead. Returns the exit status.
    pub fn wait_unless(&mut self, interrupted: &AtomicBool) -> Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if interrupted.load(Ordering::SeqCst) {
                return self
                    .stop()
                    .with_context(|| format!("{} did not stop", self.name));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A port on 127.0.0.1 that nobody listens on right now.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// Fail unless `addr` can be bound now. `wait_for_port` cannot tell our
/// server from another one already on the port, so servers check this first
/// (a port taken in between still fails, later and less clearly).
/// It binds without listening: a listening probe would, for a moment, accept the
/// connections of whoever waits for the real server (with SO_REUSEADDR, as servers bind,
/// so a port in TIME_WAIT counts as free).
pub fn ensure_port_free(addr: SocketAddr) -> Result<()> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .context("creating a socket")?;
    socket.set_reuseaddr(true).context("setting SO_REUSEADDR")?;
    match socket.bind(addr) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "port {} on {} is already in use by another program",
            addr.port(),
            addr.ip()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot listen on {addr}")),
    }
}

/// Wait until something accepts TCP connections on `addr`. Fails early, with
/// the child's log, if `guard`'s child exits first.
pub fn wait_for_port(
    addr: SocketAddr,
    timeout: Duration,
    guard: &mut Guard,
    log: Option<&PathBuf>,
) -> Result<()> {
    wait_until(timeout, guard, log, || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    })
    .with_context(|| format!("waiting for {} to listen on {addr}", guard.name))
}

/// Poll `ready` until it holds, the child exits, or `timeout` passes.
pub fn wait_until(
    timeout: Duration,
    guard: &mut Guard,
    log: Option<&PathBuf>,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(status) = guard.try_wait()? {
            bail!(
                "{} exited ({status}) before it was ready{}",
                guard.name,
                log_tail(log)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "{} was not ready after {}s{}",
                guard.name,
                timeout.as_secs(),
                log_tail(log)
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// The last lines of a log file, for error messages.
pub fn log_tail(log: Option<&PathBuf>) -> String {
    let Some(path) = log else {
        return String::new();
    };
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    let tail: Vec<&str> = lines.into_iter().rev().collect();
    format!(" (log {}: {})", path.display(), tail.join(" | "))
}

/// Whether a process with this pid exists.
pub fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// Set by the SIGINT/SIGTERM handler installed by [`catch_stop_signals`].
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP_REQUESTED.store(true, Ordering::SeqCst);
}

/// Turn Ctrl-C and SIGTERM into a flag instead of dying on the spot, so the
/// runner can stop its children (their destructors would not run otherwise).
pub fn catch_stop_signals() -> &'static AtomicBool {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_stop_signal as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_stop_signal as *const () as libc::sighandler_t,
        );
    }
    &STOP_REQUESTED
}

/// Whether the program is installed (found on PATH or at this path).
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Make sure `program` exists: on Debian/Ubuntu as root, install `package`
/// with apt-get (and say so); otherwise fail with the command to run.
pub fn ensure_installed(
    program: &str,
    package: &str,
    found: impl Fn() -> Option<PathBuf>,
) -> Result<PathBuf> {
    if let Some(path) = found() {
        return Ok(path);
    }
    let debian = std::path::Path::new("/etc/debian_version").exists();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !(debian && root) {
        let sudo = if root { "" } else { "sudo " };
        if debian {
            bail!(
                "`{program}` is not installed; install it with: {sudo}apt-get install -y {package}"
            );
        }
        bail!(
            "`{program}` is not installed; install the `{package}` package of your system (Debian/Ubuntu: apt-get install -y {package})"
        );
    }
    eprintln!("`{program}` is missing: installing it with `apt-get install -y {package}`");
    let sh = xshell::Shell::new()?;
    sh.set_var("DEBIAN_FRONTEND", "noninteractive");
    // apt-get's own progress stays on the terminal; `quiet` only drops xshell's echo.
    let install = || {
        cmd!(sh, "apt-get install -y -q {package}")
            .quiet()
            .run()
            .is_ok()
    };
    if !install() {
        // A fresh machine may have no package lists yet.
        let _ = cmd!(sh, "apt-get update -q").quiet().run();
        if !install() {
            bail!("`apt-get install -y {package}` failed; install it by hand");
        }
    }
    found().with_context(|| format!("installed {package} but still cannot find `{program}`"))
}
