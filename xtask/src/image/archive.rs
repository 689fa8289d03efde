//! Byte-for-byte reproducible image archives.
//!
//! A layer is a tar whose entries are sorted by path and carry a fixed mtime
//! (the commit time), uid/gid 0 and no user/group names, so the same files
//! always give the same layer digest. The image itself is a `docker save`
//! tarball (manifest.json + config + layers) that the engine loads with
//! `POST /images/load`; its image ID is the sha256 of the config bytes we write.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// One file or directory inside a layer, path relative to `/`.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
}

/// The files of one layer, keyed (and therefore sorted) by path.
#[derive(Debug, Default, Clone)]
pub struct Layer {
    entries: BTreeMap<String, Entry>,
}

impl Layer {
    /// Adds a file and every parent directory it needs.
    pub fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) {
        let path = path.trim_start_matches('/').to_string();
        self.parents(&path);
        self.entries.insert(path, Entry::File { mode, data });
    }

    fn parents(&mut self, path: &str) {
        let mut prefix = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for part in &parts[..parts.len().saturating_sub(1)] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            self.entries
                .entry(prefix.clone())
                .or_insert(Entry::Dir { mode: 0o755 });
        }
    }

    /// The layer as an uncompressed tar. BTreeMap order puts `a` before `a/b`,
    /// so a directory always precedes its contents.
    pub fn to_tar(&self, mtime: u64) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(mtime);
            header.set_uid(0);
            header.set_gid(0);
            match entry {
                Entry::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{path}/"), std::io::empty())?;
                }
                Entry::File { mode, data } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, path, data.as_slice())?;
                }
            }
        }
        builder.into_inner().context("finishing layer tar")
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A `docker save`-format tarball holding one image: its layers (as given),
/// the config (image ID = sha256 of these bytes) and the tags to apply.
pub fn docker_save_tarball(
    config: &[u8],
    layers: &[Vec<u8>],
    repo_tags: &[String],
    mtime: u64,
) -> Result<Vec<u8>> {
    let config_name = format!("{}.json", sha256_hex(config));
    let layer_names: Vec<String> = layers
        .iter()
        .map(|l| format!("{}/layer.tar", sha256_hex(l)))
        .collect();
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": repo_tags,
        "Layers": layer_names,
    }]);
    let mut files: BTreeMap<String, &[u8]> = BTreeMap::new();
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    files.insert("manifest.json".into(), &manifest_bytes);
    files.insert(config_name, config);
    for (name, layer) in layer_names.iter().zip(layers) {
        files.insert(name.clone(), layer);
    }
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(mtime);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, data)?;
    }
    builder.into_inner().context("finishing image tarball")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_is_sorted_with_parents_and_reproducible() {
        let mut a = Layer::default();
        a.file("/usr/local/bin/x", 0o755, b"bin".to_vec());
        a.file("/etc/passwd", 0o644, b"p".to_vec());
        let mut b = Layer::default();
        b.file("/etc/passwd", 0o644, b"p".to_vec());
        b.file("/usr/local/bin/x", 0o755, b"bin".to_vec());
        let (ta, tb) = (
            a.to_tar(1_700_000_000).unwrap(),
            b.to_tar(1_700_000_000).unwrap(),
        );
        assert_eq!(ta, tb, "insertion order must not matter");

        let mut archive = tar::Archive::new(ta.as_slice());
        let entries: Vec<(String, u64, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                )
            })
            .collect();
        let paths: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            paths,
            [
                "etc/",
                "etc/passwd",
                "usr/",
                "usr/local/",
                "usr/local/bin/",
                "usr/local/bin/x"
            ]
        );
        assert!(entries.iter().all(|e| e.1 == 1_700_000_000 && e.2 == 0));
        assert_ne!(ta, a.to_tar(1).unwrap(), "mtime is part of the layer");
    }
}
