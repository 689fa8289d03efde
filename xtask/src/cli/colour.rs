//! The one colour decision: `--color auto|always|never`, `NO_COLOR`, and
//! whether stdout is a terminal. Every coloured line asks `enabled()`.
//!
//! `main` records the flag once before any command runs; code that runs
//! without a command line (tests calling modules directly) gets `auto`.

use std::io::IsTerminal;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// Colour when stdout is a terminal and NO_COLOR is unset or empty.
    #[default]
    Auto,
    /// Colour even into a pipe or file (and despite NO_COLOR).
    Always,
    /// No colour.
    Never,
}

static CHOICE: OnceLock<Choice> = OnceLock::new();

/// Record the command line's choice (first call wins).
pub fn set(choice: Choice) {
    let _ = CHOICE.set(choice);
}

/// Whether to write ANSI colour codes on stdout.
pub fn enabled() -> bool {
    decide(
        CHOICE.get().copied().unwrap_or_default(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        std::io::stdout().is_terminal(),
    )
}

/// https://no-color.org: a set, non-empty NO_COLOR turns colour off unless
/// the user asked for it explicitly with `--color always`.
fn decide(choice: Choice, no_color: bool, terminal: bool) -> bool {
    match choice {
        Choice::Always => true,
        Choice::Never => false,
        Choice::Auto => terminal && !no_color,
    }
}

#[cfg(test)]
mod tests {
    use super::{Choice, decide};

    #[test]
    fn always_beats_no_color_and_auto_needs_a_terminal() {
        assert!(decide(Choice::Always, true, false));
        assert!(!decide(Choice::Never, false, true));
        assert!(decide(Choice::Auto, false, true));
        assert!(!decide(Choice::Auto, true, true));
        assert!(!decide(Choice::Auto, false, false));
    }
}
