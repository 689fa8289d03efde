//! `-q/--quiet` and `-v/--verbose`, decided once for the whole run (as
//! colour is): quiet drops progress bars and warnings from stderr, verbose
//! adds a note for each step a command takes (connect, read, list) with its
//! time. stdout, the command's answer, is the same at every level.

use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quiet,
    #[default]
    Normal,
    Verbose,
}

/// The two global flags.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct Flags {
    /// Only the answer and errors: no progress bars or warnings on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Also say, on stderr, what each step did and how long it took.
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

impl Flags {
    pub fn level(self) -> Level {
        match (self.quiet, self.verbose) {
            (true, _) => Level::Quiet,
            (_, true) => Level::Verbose,
            _ => Level::Normal,
        }
    }
}

static LEVEL: OnceLock<Level> = OnceLock::new();

/// Record the command line's level (first call wins).
pub fn set(level: Level) {
    let _ = LEVEL.set(level);
}

fn level() -> Level {
    LEVEL.get().copied().unwrap_or_default()
}

/// No progress bars.
pub fn quiet() -> bool {
    level() == Level::Quiet
}

/// `warning: …` on stderr, unless quiet.
pub fn warn(message: &str) {
    if level() > Level::Quiet {
        eprintln!("warning: {message}");
    }
}

/// A step's note on stderr, only when verbose.
pub fn note(message: &str) {
    if level() == Level::Verbose {
        eprintln!("{message}");
    }
}

/// A progress bar of `total` steps, hidden when quiet.
pub fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if quiet() {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_wins_over_nothing_and_verbose_is_its_own_level() {
        let flags = |quiet, verbose| Flags { quiet, verbose }.level();
        assert_eq!(flags(false, false), Level::Normal);
        assert_eq!(flags(true, false), Level::Quiet);
        assert_eq!(flags(false, true), Level::Verbose);
    }
}
