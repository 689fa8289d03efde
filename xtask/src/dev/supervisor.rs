//! Keeps one service running: starts it, restarts it with exponential backoff
//! when it exits, stops it when the runner stops.

use crate::local::process::{self, Output};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// First wait before a restart; doubled after each quick crash.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A run this long counts as healthy: the next crash starts the backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

pub struct Supervised {
    pub name: String,
    /// The running child's pid (0 while it is down), for benchmarks.
    pub pid: Arc<AtomicU32>,
    thread: JoinHandle<()>,
}

impl Supervised {
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Run the command `make_command` builds, again and again, until `stop` is set.
/// Its output lines are prefixed with `prefix`; our own notes use `prefix` too.
pub fn supervise(
    name: &str,
    prefix: String,
    make_command: impl Fn() -> Command + Send + 'static,
    stop: Arc<AtomicBool>,
) -> Supervised {
    let pid = Arc::new(AtomicU32::new(0));
    let thread = {
        let (name, pid) = (name.to_string(), pid.clone());
        thread::spawn(move || run_loop(&name, &prefix, make_command, &stop, &pid))
    };
    Supervised {
        name: name.to_string(),
        pid,
        thread,
    }
}

fn run_loop(
    name: &str,
    prefix: &str,
    make_command: impl Fn() -> Command,
    stop: &AtomicBool,
    pid: &AtomicU32,
) {
    let mut backoff = FIRST_BACKOFF;
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        let mut child = match process::spawn(
            name,
            make_command(),
            Output::Prefixed(prefix.to_string()),
            libc::SIGTERM,
        ) {
            Ok(child) => child,
            Err(err) => {
                let _ = outln!("{prefix}cannot start: {}", crate::cli::one_line(&err));
                sleep_unless(backoff, stop);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        pid.store(child.pid(), Ordering::SeqCst);
        let status = child.wait_unless(stop);
        pid.store(0, Ordering::SeqCst);
        drop(child);
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF;
        }
        let how = match status {
            Ok(status) => status.to_string(),
            Err(err) => crate::cli::one_line(&err),
        };
        let _ = outln!(
            "{prefix}exited ({how}); restarting in {}s",
            backoff.as_secs()
        );
        sleep_unless(backoff, stop);
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn sleep_unless(duration: Duration, stop: &AtomicBool) {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline && !stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(50));
    }
}
