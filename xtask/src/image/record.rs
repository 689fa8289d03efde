//! `target/xtask/images.json`: what build-all built and, per registry, pushed.
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
    /// Where this image was pushed: registry (`host[:port]`, or the name an
    /// environment knows it by) -> manifest digest (`sha256:...`). Render for
    /// an environment reads only its own registry's entry, so a push to one
    /// registry never moves another environment's manifests.
    #[serde(default)]
    pub pushed: BTreeMap<String, String>,
}

impl ImageEntry {
    /// The digest of this image in `registry`, if it was pushed there.
    pub fn digest_in(&self, registry: &str) -> Option<&str> {
        self.pushed
            .get(registry.trim_end_matches('/'))
            .map(String::as_str)
    }
}

// Read by the manifests module (render), which may not be wired in yet.
#[allow(dead_code)]
impl ImageRecord {
    pub fn path() -> std::path::PathBuf {
        crate::workspace::state_dir().join("images.json")
    }
}

impl ImageRecord {
    /// images.json under a given target dir (a workspace copy has its own).
    pub fn path_in(target_dir: &std::path::Path) -> std::path::PathBuf {
        target_dir.join("xtask").join("images.json")
    }

    /// The record at `path`; an empty record when there is no file yet.
    pub fn load_from(path: &std::path::Path) -> anyhow::Result<ImageRecord> {
        use anyhow::Context;
        if !path.exists() {
            return Ok(ImageRecord::default());
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    #[allow(dead_code)]
    pub fn load() -> anyhow::Result<ImageRecord> {
        Self::load_from(&Self::path())
    }

    /// Written to a temporary file and renamed: a reader never sees half a file.
    pub fn save_to(&self, path: &std::path::Path) -> anyhow::Result<()> {
        use anyhow::Context;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }
}
