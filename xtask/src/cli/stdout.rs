//! Everything xtask prints on stdout goes through `out!`/`outln!`, so a
//! closed stdout (`cargo xtask status | head -1`) ends a command quietly.
//!
//! `print!` panics when the reader has gone. These macros return the
//! `io::Error` instead; callers pass it up with `?` and `main` turns a broken
//! pipe into a quiet exit 0, as ripgrep does: the reader chose to stop
//! reading, which is not the command's failure. (C tools and Go tools such as
//! kubectl die of SIGPIPE, 141 in a shell; Rust ignores SIGPIPE, and an
//! orderly return still runs destructors: leases are released, children
//! stopped.) Threads that cannot return an error (dev's log forwarding) drop
//! the line; `closed()` tells the long-running loop to stop.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Write and flush, so a closed pipe shows up at this call and not later.
pub fn write(args: std::fmt::Arguments) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let result = out.write_fmt(args).and_then(|()| out.flush());
    if let Err(err) = &result
        && err.kind() == io::ErrorKind::BrokenPipe
    {
        CLOSED.store(true, Ordering::SeqCst);
    }
    result
}

/// Whether a write found stdout closed.
pub fn closed() -> bool {
    CLOSED.load(Ordering::SeqCst)
}

/// Whether `err` (or one of its causes) is stdout's reader going away.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    }) && closed()
}

/// `print!` that returns `io::Result<()>` instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!($($arg)*))
    };
}

/// `println!` that returns `io::Result<()>` instead of panicking.
macro_rules! outln {
    () => {
        $crate::cli::stdout::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::stdout::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
