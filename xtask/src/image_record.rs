//! `target/xtask/images.json`: what build-all built and pushed.
//! Written by the image module, read by render to pin images by digest.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Keyed by service name.
    pub images: BTreeMap<String, ImageEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageEntry {
    /// Image name without registry or tag, e.g. `adderservice`.
    pub name: String,
    /// sha256 over the build inputs, e.g. `c-0123abcd...`.
    pub content_tag: String,
    /// Short git commit, with `-dirty` when the tree had changes.
    pub commit_tag: String,
    /// Full commit the image was built from.
    pub commit: String,
    /// The engine's image ID (`sha256:...`).
    pub image_id: String,
    /// Uncompressed size in bytes.
    pub size: u64,
    /// Manifest digest from the last push (`sha256:...`), if pushed.
    pub digest: Option<String>,
    /// Registry it was last pushed to.
    pub registry: Option<String>,
}

impl ImageRecord {
    pub fn path() -> std::path::PathBuf {
        crate::project::state_dir().join("images.json")
    }
}
