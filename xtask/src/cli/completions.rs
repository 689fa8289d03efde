//! `cargo xtask completions <shell>`: the completion script clap_complete
//! generates from the same `Cli` definition that parses the command line, so
//! it cannot drift from the real flags.

use anyhow::Result;
use clap_complete::Shell;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  cargo xtask completions bash > ~/.local/share/bash-completion/completions/cargo-xtask\n  cargo xtask completions fish > ~/.config/fish/completions/cargo-xtask.fish"
)]
pub struct CompletionsArgs {
    /// The shell to write a script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run<C: clap::CommandFactory>(args: CompletionsArgs) -> Result<ExitCode> {
    let mut command = C::command();
    let mut script = Vec::new();
    // Named after the binary so the script completes `xtask ...`; `cargo
    // xtask` goes through cargo's own completion, which does not delegate.
    clap_complete::generate(args.shell, &mut command, "xtask", &mut script);
    out!("{}", String::from_utf8_lossy(&script))?;
    Ok(ExitCode::SUCCESS)
}
