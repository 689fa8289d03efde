//! What every command shares at the edge: the output format (`-o`), the
//! async runtime, colour, stdout that survives a closed pipe, the one-line
//! error, the table printer, commit abbreviations and shell completions.

#[macro_use]
pub mod stdout;

pub mod colour;
pub mod completions;
pub mod output;
pub mod prompt;
pub mod table;
pub mod verbosity;

pub use output::Format;

/// The single-threaded runtime every async command runs on: a task runner
/// waits on the network, it does not need a thread per core.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Characters of a commit id in one-line output: git's default abbreviation.
pub const SHORT_COMMIT: usize = 7;
/// Characters of a commit id where reviews and pipeline summaries name
/// commits across a long history, so the id stays unambiguous.
pub const REVIEW_COMMIT: usize = 12;

/// A commit id cut to `len` characters (whole when shorter): the one place
/// ids are abbreviated.
pub fn abbrev(id: &str, len: usize) -> &str {
    &id[..id.len().min(len)]
}

/// A commit id as one-line output shows it.
pub fn short(id: &str) -> &str {
    abbrev(id, SHORT_COMMIT)
}

/// The error and its causes on one line: `reading env.yaml: no such file`.
pub fn one_line(err: &anyhow::Error) -> String {
    causes(err).join(": ").replace('\n', " ")
}

/// The error's cause chain, each message once (anyhow's context often
/// repeats the inner message).
pub fn causes(err: &anyhow::Error) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts
}
