//! Asking before a destructive step, as kapp does: only when stdin is a
//! terminal (a script or CI job is never asked, and must pass `--yes`
//! where a command requires an answer).

use anyhow::{Context, Result};
use std::io::{BufRead, IsTerminal, Write};

/// Can we ask? stdin is a terminal.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Print `what` (the change table) and `question` on stderr and read the
/// answer: only `y` or `yes` is yes; end of input is no.
pub fn confirm(what: &str, question: &str) -> Result<bool> {
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{what}{question} [y/N] ").context("writing the prompt")?;
    stderr.flush().context("writing the prompt")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    Ok(is_yes(&answer))
}

fn is_yes(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_y_or_yes_is_yes() {
        for yes in ["y\n", "Y", " yes "] {
            assert!(super::is_yes(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "sure"] {
            assert!(!super::is_yes(no), "{no:?}");
        }
    }
}
