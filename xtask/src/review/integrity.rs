//! Is the head's manifests folder what `render` writes for the head's own
//! definitions? The `render --check` of that revision, without a checkout:
//! the definitions and the environment folder are copied out of git objects
//! into a temporary folder and rendered there. Images come from the head's
//! committed manifests (an empty image record), so this checks everything
//! render decides except which digests were pushed.

use super::snapshot::{self, Revision};
use crate::image::record::ImageRecord;
use crate::manifest::{files, render};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum Integrity {
    /// Byte for byte what render writes.
    AsRendered { files: usize },
    /// Files that differ, are missing from git, or are not rendered at all.
    Differs {
        changed: Vec<String>,
        missing: Vec<String>,
        extra: Vec<String>,
    },
    /// The head's definitions do not render (the message says why).
    RenderFailed { error: String },
    /// The environment has no manifests at head (it was removed).
    NoManifests,
}

impl Integrity {
    pub fn is_clean(&self) -> bool {
        matches!(self, Integrity::AsRendered { .. } | Integrity::NoManifests)
    }

    /// One line for the summary.
    pub fn describe(&self, env: &str) -> String {
        match self {
            Integrity::AsRendered { files } => {
                format!("manifests are what `render --env {env}` writes ({files} files)")
            }
            Integrity::Differs {
                changed,
                missing,
                extra,
            } => {
                let mut parts = Vec::new();
                for (what, names) in [
                    ("differ", changed),
                    ("missing", missing),
                    ("not rendered", extra),
                ] {
                    if !names.is_empty() {
                        parts.push(format!("{what}: {}", names.join(", ")));
                    }
                }
                format!(
                    "manifests are NOT what `render --env {env}` writes for this revision's definitions ({})",
                    parts.join("; ")
                )
            }
            Integrity::RenderFailed { error } => {
                format!("this revision's definitions do not render: {error}")
            }
            Integrity::NoManifests => "no manifests at head".to_string(),
        }
    }
}

/// What git folders render reads for one environment.
fn inputs(env: &str) -> [String; 3] {
    [
        "deployment".to_string(),
        "infrastructure".to_string(),
        format!("environments/{env}"),
    ]
}

/// A folder removed when dropped.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(env: &str) -> Result<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("xtask-review-{}-{nanos}-{env}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Render environment `env` from `head`'s tree and compare with its manifests.
pub fn check(
    repo: &git2::Repository,
    head: &Revision,
    env: &str,
    has_manifests: bool,
) -> Result<Integrity> {
    if !has_manifests {
        return Ok(Integrity::NoManifests);
    }
    let dir = TempDir::new(env)?;
    let paths = inputs(env);
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    snapshot::extract(repo, head, &paths, &dir.0)?;
    Ok(compare_rendered(&dir.0, env))
}

fn compare_rendered(root: &Path, env: &str) -> Integrity {
    let rendered = match render::render(root, env, &ImageRecord::default()) {
        Ok(files) => files,
        Err(e) => {
            return Integrity::RenderFailed {
                error: crate::cli::one_line(&e),
            };
        }
    };
    match files::compare(root, env, &rendered) {
        Ok(c) if c.is_clean() => Integrity::AsRendered { files: c.unchanged },
        Ok(c) => Integrity::Differs {
            changed: c.changed,
            missing: c.missing,
            extra: c.extra,
        },
        Err(e) => Integrity::RenderFailed {
            error: crate::cli::one_line(&e),
        },
    }
}
