//! The event-queue contract shared by its producers (webapp, report) and its consumer
//! (eventservice).

/// A summary is pushed only onto a return path with this prefix: a message on the queue
/// must not make eventservice write into an arbitrary Redis key (another service's list,
/// its own processing lists).
pub const SUMMARY_RETURN_PREFIX: &str = "report:";
