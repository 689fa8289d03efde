//! Stale renders: are the manifests committed at the commit being deployed
//! what `render` writes for that commit's own committed definitions? The
//! check is review's integrity check (rendered from git objects in a
//! temporary folder); here it becomes one warning line on stderr, or with
//! `--strict` an error before anything is written. A commit without
//! definitions (`deployment/`) has manifests render never wrote: not checked.

use super::output::short;
use super::source::Desired;
use crate::review::integrity::{self, Integrity};
use crate::review::snapshot;
use anyhow::{Result, bail};
use std::path::Path;

/// Warn (or, `strict`, fail) when `desired`'s manifests are stale.
pub fn check(repo_root: &Path, desired: &Desired, strict: bool) -> Result<()> {
    let env = &desired.env.name;
    let problem = match integrity_at(repo_root, &desired.commit, env) {
        Ok(None) => return Ok(()),
        Ok(Some(found)) if found.is_clean() => return Ok(()),
        Ok(Some(found)) => describe(&found, env, &desired.commit),
        Err(e) => format!(
            "could not check that commit {}'s manifests of `{env}` are as rendered: {}",
            short(&desired.commit),
            crate::cli::one_line(&e)
        ),
    };
    if strict {
        bail!("{problem}; nothing was changed (--strict)");
    }
    crate::cli::verbosity::warn(&problem);
    Ok(())
}

/// The integrity of `env`'s manifests at `commit`; None when the commit has
/// no definitions to render them from.
fn integrity_at(repo_root: &Path, commit: &str, env: &str) -> Result<Option<Integrity>> {
    let repo = snapshot::open(repo_root)?;
    let revision = snapshot::resolve(&repo, commit)?;
    if revision
        .commit
        .tree()?
        .get_path(Path::new("deployment"))
        .is_err()
    {
        return Ok(None);
    }
    let has_manifests = !snapshot::manifests(&repo, &revision, env)?.files.is_empty();
    integrity::check(&repo, &revision, env, has_manifests).map(Some)
}

/// One line: which commit and environment, which files, and the fix.
fn describe(found: &Integrity, env: &str, commit: &str) -> String {
    let what = format!(
        "commit {} of `{env}`: {}",
        short(commit),
        found.describe(env)
    );
    match found {
        Integrity::Differs { .. } => format!(
            "{what}; run `cargo xtask render --env {env}` then `cargo xtask commit --env {env}`"
        ),
        _ => what,
    }
}
