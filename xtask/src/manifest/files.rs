//! The manifests folder on disk: write what render produced (and remove what
//! it no longer produces), or compare without writing (`--check`). The
//! `_dir` forms do the same for any generated folder (`cluster render`).

use super::render::{Files, manifests_dir};
use anyhow::{Result, anyhow};
use std::path::Path;

/// How the folder on disk differs from what render produces.
#[derive(Debug, Default)]
pub struct Comparison {
    pub changed: Vec<String>,
    /// Rendered but not on disk.
    pub missing: Vec<String>,
    /// On disk but not rendered (a deleted definition, a hand-added file).
    pub extra: Vec<String>,
    pub unchanged: usize,
}

impl Comparison {
    pub fn is_clean(&self) -> bool {
        self.changed.is_empty() && self.missing.is_empty() && self.extra.is_empty()
    }

    /// Exit 1 when a `--check` found a difference, else 0.
    pub fn exit_code(&self, check: bool) -> std::process::ExitCode {
        if check && !self.is_clean() {
            std::process::ExitCode::from(1)
        } else {
            std::process::ExitCode::SUCCESS
        }
    }

    /// The document of `render` and `cluster render` for machines.
    pub fn document(&self, env: &str, check: bool) -> serde_json::Value {
        serde_json::json!({
            "env": env,
            "check": check,
            "clean": self.is_clean(),
            "changed": self.changed,
            "missing": self.missing,
            "extra": self.extra,
            "unchanged": self.unchanged,
        })
    }
}

/// `--check` compares `files` with `dir`; otherwise `dir` is made to hold them.
pub fn check_or_write(dir: &Path, files: &Files, check: bool) -> Result<Comparison> {
    if check {
        compare_dir(dir, files)
    } else {
        write_dir(dir, files)
    }
}

/// Compares `files` with `<root>/environments/<env>/manifests/`.
pub fn compare(root: &Path, env: &str, files: &Files) -> Result<Comparison> {
    compare_dir(&root.join(manifests_dir(env)), files)
}

/// Compares `files` with the `.yaml` files of `dir`.
pub fn compare_dir(dir: &Path, files: &Files) -> Result<Comparison> {
    let mut result = Comparison::default();
    let on_disk = list_yaml(dir)?;
    for name in &on_disk {
        if !files.contains_key(name) {
            result.extra.push(name.clone());
        }
    }
    for (name, text) in files {
        match std::fs::read(dir.join(name)) {
            Ok(bytes) if bytes == text.as_bytes() => result.unchanged += 1,
            Ok(_) => result.changed.push(name.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => result.missing.push(name.clone()),
            Err(e) => return Err(anyhow!("reading {}: {e}", dir.join(name).display())),
        }
    }
    Ok(result)
}

/// Makes `dir` hold exactly `files` (as its `.yaml` files); untouched files
/// keep their mtime.
pub fn write_dir(dir: &Path, files: &Files) -> Result<Comparison> {
    let comparison = compare_dir(dir, files)?;
    std::fs::create_dir_all(dir).map_err(|e| anyhow!("creating {}: {e}", dir.display()))?;
    for name in comparison.changed.iter().chain(&comparison.missing) {
        let path = dir.join(name);
        // Write beside, then rename: a reader never sees half a file.
        let partial = dir.join(format!(".{name}.partial"));
        std::fs::write(&partial, &files[name])
            .map_err(|e| anyhow!("writing {}: {e}", partial.display()))?;
        std::fs::rename(&partial, &path).map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    }
    for name in &comparison.extra {
        let path = dir.join(name);
        std::fs::remove_file(&path).map_err(|e| anyhow!("removing {}: {e}", path.display()))?;
    }
    Ok(comparison)
}

fn list_yaml(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow!("reading {}: {e}", dir.display())),
    };
    let mut names = Vec::new();
    for entry in entries {
        let name = entry
            .map_err(|e| anyhow!("reading {}: {e}", dir.display()))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".yaml") || name.ends_with(".yml") {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// What `render` (or `cluster render`) did to `dir`, for people: a count line,
/// or with `check` a line per file that differs and one error line naming
/// `command`, the command that re-renders it.
pub fn report(dir: &Path, check: bool, comparison: &Comparison, command: &str) -> Result<()> {
    if !check {
        outln!(
            "{}: {} written, {} removed, {} unchanged",
            dir.display(),
            comparison.changed.len() + comparison.missing.len(),
            comparison.extra.len(),
            comparison.unchanged
        )?;
    } else if comparison.is_clean() {
        outln!(
            "{}: {} files, all as rendered",
            dir.display(),
            comparison.unchanged
        )?;
    } else {
        for (what, names) in [
            ("differs", &comparison.changed),
            ("missing", &comparison.missing),
            ("not rendered", &comparison.extra),
        ] {
            for name in names {
                outln!("{what}: {}", dir.join(name).display())?;
            }
        }
        eprintln!(
            "error: {} is not what `{command}` writes: re-render and commit",
            dir.display()
        );
    }
    Ok(())
}
