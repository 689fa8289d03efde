//! One `cargo build --release` for every service that needs a new image.

use anyhow::{Result, bail};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

/// Builds the packages; cargo's own messages go to stderr as they come, and
/// the first compiler error becomes part of the one-line error.
pub fn release_build(root: &Path, packages: &[&str], quiet: bool) -> Result<()> {
    let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cmd.current_dir(root).args(["build", "--release"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    let shown = format!("cargo build --release -p {}", packages.join(" -p "));
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("running `{shown}`: {e}"))?;
    let mut first_error: Option<String> = None;
    let mut log = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line?;
            if first_error.is_none() && line.starts_with("error") {
                first_error = Some(line.clone());
            }
            if quiet {
                log.push(line);
            } else {
                let _ = writeln!(std::io::stderr(), "{line}");
            }
        }
    }
    let status = child.wait()?;
    if !status.success() {
        if quiet {
            // Still show cargo's output: it is the only useful part of a compile error.
            for line in &log {
                eprintln!("{line}");
            }
        }
        bail!(
            "`{shown}` failed ({status}): {}",
            first_error.unwrap_or_else(|| "see cargo's messages above".into())
        );
    }
    Ok(())
}
