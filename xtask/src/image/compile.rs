//! One `cargo build --release` of every service, whenever any image is new.

use anyhow::{Result, anyhow};
use std::path::Path;
use xshell::{Shell, cmd};

use crate::workspace::SERVICES;

/// Builds every service of [`SERVICES`], even when one image is new: cargo unifies
/// dependency features across the packages of one invocation, so a service built alone
/// gets other bytes than the same source built with the rest, and a content tag must
/// always name the same bytes. Cargo's own messages (progress, and the compiler's
/// errors in full) go straight to our stderr as they come; on failure the
/// one-line error names the command and points at them.
pub fn release_build(root: &Path) -> Result<()> {
    let packages: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
    let sh = Shell::new()?;
    sh.change_dir(root);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let package_args = packages.iter().flat_map(|p| ["-p", p]);
    let shown = format!("cargo build --release -p {}", packages.join(" -p "));
    // stdout stays clean for `--output json`; stderr is inherited, so cargo's
    // error reaches the user as cargo printed it.
    cmd!(sh, "{cargo} build --release {package_args...}")
        .quiet()
        .ignore_stdout()
        .run()
        .map_err(|e| anyhow!("`{shown}` failed (cargo's messages are above): {e}"))
}
