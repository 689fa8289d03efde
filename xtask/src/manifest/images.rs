//! Which image each service runs: `registry/name:tag@sha256:...`.
//!
//! The digest comes from the image record that `build-all --push` wrote, and
//! only from its entry for the environment's registry (`env.yaml`
//! `registry`): a push to another registry is not in this environment, so it
//! never moves its manifests. A service with no such entry keeps the image
//! of the manifest already committed (so a partial rebuild, or a push to
//! another environment, changes nothing here). An image whose digest did not
//! change keeps the tag already committed, so an unchanged image never shows
//! a diff.

use super::definition::is_sha256_digest;
use crate::environment::Environment;
use crate::image::record::ImageRecord;
use anyhow::{Result, anyhow, bail};
use std::path::Path;

/// A parsed image reference `repository:tag@digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `registry/name`
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

impl ImageRef {
    /// Parses `repository:tag@sha256:...` (the tag is required: it is what
    /// reviewers read in the diff and the commit message).
    pub fn parse(text: &str) -> Result<ImageRef> {
        let (named, digest) = text
            .split_once('@')
            .ok_or_else(|| anyhow!("image `{text}` is not pinned by digest (`@sha256:...`)"))?;
        if !is_sha256_digest(digest) {
            bail!("image `{text}`: `{digest}` is not a sha256 digest");
        }
        // The tag follows the last `:` after the last `/` (a registry may have a port).
        let slash = named.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match named[slash..].rfind(':') {
            Some(i) => (&named[..slash + i], &named[slash + i + 1..]),
            None => bail!("image `{text}` has no tag"),
        };
        Ok(ImageRef {
            repository: repository.to_string(),
            tag: tag.to_string(),
            digest: digest.to_string(),
        })
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}@{}", self.repository, self.tag, self.digest)
    }
}

/// Reads the image record; a missing file is an empty record (every image
/// then comes from the committed manifests).
pub fn load_record(path: &Path) -> Result<ImageRecord> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ImageRecord::default()),
        Err(e) => Err(anyhow!("reading {}: {e}", path.display())),
    }
}

/// The image of `service` for `env`. `committed` is the image of the
/// service's manifest as committed (if any).
pub fn resolve(
    service: &str,
    env: &Environment,
    record: &ImageRecord,
    committed: Option<&str>,
) -> Result<ImageRef> {
    let repository = format!("{}/{service}", env.registry);
    let committed = committed
        .map(|image| {
            ImageRef::parse(image).map_err(|e| anyhow!("committed manifest of {service}: {e}"))
        })
        .transpose()?;
    if let Some(entry) = record.images.get(service)
        && let Some(digest) = entry.digest_in(&env.registry)
    {
        if !is_sha256_digest(digest) {
            bail!("image record: {service}: digest `{digest}` is not a sha256 digest");
        }
        // The same image re-tagged at a later commit keeps the committed
        // reference: an unchanged service shows no diff.
        if let Some(old) = committed.filter(|old| old.digest == digest) {
            return Ok(ImageRef {
                repository,
                tag: old.tag,
                digest: old.digest,
            });
        }
        let tag = entry.commit_tag.clone();
        return Ok(ImageRef {
            repository,
            tag,
            digest: digest.to_string(),
        });
    }
    if let Some(old) = committed {
        return Ok(ImageRef {
            repository,
            tag: old.tag,
            digest: old.digest,
        });
    }
    let built = if record.images.contains_key(service) {
        format!("was not pushed to {}", env.registry)
    } else {
        "has no image".to_string()
    };
    bail!(
        "{service} {built} and no manifest of environment `{}` pins one: run `cargo xtask build-all --push --env {}` first",
        env.name,
        env.name
    )
}
