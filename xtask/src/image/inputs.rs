//! The content tag: a sha256 over everything that decides a service image's
//! bytes, so an existing tag in the engine means "nothing to build".
//!
//! Inputs: the service crate and every workspace crate it depends on (path
//! dependencies, from `cargo metadata --no-deps`), Cargo.lock, the root
//! Cargo.toml (profile), .cargo/config.toml, `rustc -vV`, RUSTFLAGS, the host
//! libraries copied into the image, the service name and port, and
//! FORMAT_VERSION. The image user (`rootfs::NONROOT`) is not hashed: changing
//! it, like any change to how images are packed, needs a FORMAT_VERSION bump.
//! The commit is deliberately NOT an input: a commit that does not touch a
//! service reuses its image, and the commit stamped into an image is the last
//! one that changed these inputs (`history`, which reads them from git with
//! the same `InputPaths` and `skipped`), so rebuilding it gives the same bytes.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use xshell::cmd;

/// Bump when the way images are assembled changes: every content tag changes.
const FORMAT_VERSION: &str = "micro-image-v3";

/// Host libraries that end up in images (their identity, not their bytes, is hashed).
const HOST_LIBRARY_DIRS: &[&str] = &["/lib/x86_64-linux-gnu", "/lib64"];
const HOST_LIBRARY_PREFIXES: &[&str] = &[
    "ld-linux",
    "libc.so",
    "libm.so",
    "libgcc_s.so",
    "libpthread.so",
    "libdl.so",
    "librt.so",
];

#[derive(Debug, Clone)]
pub struct Package {
    pub version: String,
    /// `package.repository`: the image's `org.opencontainers.image.source`.
    pub repository: Option<String>,
    pub dir: PathBuf,
    /// The package's binary targets (the service binary is the one named like the package).
    pub bins: Vec<String>,
    /// Workspace packages it depends on through `path = ...`.
    pub path_deps: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    pub packages: BTreeMap<String, Package>,
}

impl Workspace {
    pub fn load(root: &Path) -> Result<Workspace> {
        let sh = xshell::Shell::new()?;
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = root.join("Cargo.toml");
        let out = cmd!(
            sh,
            "{cargo} metadata --no-deps --format-version 1 --offline --manifest-path {manifest}"
        )
        .ignore_status()
        .output()
        .context("running cargo metadata")?;
        if !out.status.success() {
            bail!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let meta: Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
        let target_dir = PathBuf::from(
            meta["target_directory"]
                .as_str()
                .context("no target_directory")?,
        );
        let mut by_dir: BTreeMap<PathBuf, String> = BTreeMap::new();
        let mut packages = BTreeMap::new();
        for p in meta["packages"].as_array().context("no packages")? {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let manifest = PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
            let dir = manifest.parent().map(Path::to_path_buf).unwrap_or_default();
            let bins = p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| {
                    t["kind"]
                        .as_array()
                        .is_some_and(|k| k.iter().any(|k| k == "bin"))
                })
                .filter_map(|t| t["name"].as_str().map(String::from))
                .collect();
            let dep_dirs: Vec<String> = p["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                // dev-dependencies never reach the binary.
                .filter(|d| d["kind"].as_str() != Some("dev"))
                .filter_map(|d| d["path"].as_str().map(String::from))
                .collect();
            by_dir.insert(dir.clone(), name.clone());
            let version = p["version"].as_str().unwrap_or_default().to_string();
            let repository = p["repository"].as_str().map(String::from);
            let pkg = Package {
                version,
                repository,
                dir,
                bins,
                path_deps: vec![],
            };
            packages.insert(name, (pkg, dep_dirs));
        }
        let root = PathBuf::from(
            meta["workspace_root"]
                .as_str()
                .context("no workspace_root")?,
        );
        let repository = workspace_repository(&root);
        let packages = packages
            .into_iter()
            .map(|(name, (mut pkg, dep_dirs))| {
                pkg.repository = pkg.repository.or_else(|| repository.clone());
                pkg.path_deps = dep_dirs
                    .iter()
                    .filter_map(|d| by_dir.get(Path::new(d)).cloned())
                    .collect();
                (name, pkg)
            })
            .collect();
        Ok(Workspace {
            root,
            target_dir,
            packages,
        })
    }

    pub fn package(&self, name: &str) -> Result<&Package> {
        self.packages
            .get(name)
            .with_context(|| format!("package `{name}` is not in the workspace"))
    }

    /// The package and every workspace package it reaches through path dependencies.
    pub fn closure(&self, name: &str) -> Result<BTreeSet<String>> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(next) = todo.pop() {
            if seen.insert(next.clone()) {
                todo.extend(self.package(&next)?.path_deps.iter().cloned());
            }
        }
        Ok(seen)
    }
}

/// `[workspace.package] repository` of the root Cargo.toml (cargo metadata
/// only shows it for packages that inherit it).
fn workspace_repository(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join("Cargo.toml")).ok()?;
    let mut in_section = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_section = line == "[workspace.package]";
        } else if in_section && let Some(value) = line.strip_prefix("repository") {
            return Some(
                value
                    .trim_start()
                    .strip_prefix('=')?
                    .trim()
                    .trim_matches('"')
                    .to_string(),
            );
        }
    }
    None
}

/// The workspace files every image depends on (lockfile, profile, cargo configuration).
pub const SHARED_FILES: [&str; 3] = ["Cargo.lock", "Cargo.toml", ".cargo/config.toml"];

/// Whether an entry named `name` of a crate folder is left out of the
/// crate's inputs: hidden files, build output, and at the crate root the
/// tests, benches and examples (they never reach the service binary). The
/// content tag (work tree) and `history` (git trees) both ask this.
pub fn skipped(name: &str, at_crate_root: bool) -> bool {
    name.starts_with('.')
        || name == "target"
        || (at_crate_root && ["tests", "benches", "examples"].contains(&name))
}

/// A service's inputs as repository paths (`/`-separated, relative to the
/// workspace root): the crate folders hashed into its content tag (minus
/// what `skipped` leaves out and nested packages) and the shared files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputPaths {
    pub crates: Vec<String>,
    pub files: Vec<String>,
}

impl Workspace {
    /// The inputs of `service`: its crate and every crate of its closure.
    pub fn input_paths(&self, service: &str) -> Result<InputPaths> {
        let mut crates = Vec::new();
        for name in self.closure(service)? {
            let dir = &self.package(&name)?.dir;
            let rel = dir.strip_prefix(&self.root).with_context(|| {
                format!("crate {name} ({}) is outside the workspace", dir.display())
            })?;
            crates.push(rel.to_string_lossy().into_owned());
        }
        crates.sort();
        Ok(InputPaths {
            crates,
            files: SHARED_FILES.iter().map(|f| f.to_string()).collect(),
        })
    }
}

/// Inputs shared by every service, hashed once per run.
pub struct SharedInputs {
    digest: Vec<u8>,
}

impl SharedInputs {
    pub fn collect(ws: &Workspace) -> Result<SharedInputs> {
        let mut h = Sha256::new();
        field(&mut h, "format", FORMAT_VERSION.as_bytes());
        for file in SHARED_FILES {
            let path = ws.root.join(file);
            let data = if path.exists() {
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?
            } else {
                vec![]
            };
            field(&mut h, file, &data);
        }
        let sh = xshell::Shell::new()?;
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let rustc = cmd!(sh, "{rustc} -vV")
            .ignore_status()
            .output()
            .context("running rustc -vV")?;
        field(&mut h, "rustc", &rustc.stdout);
        for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET"] {
            field(
                &mut h,
                var,
                std::env::var(var).unwrap_or_default().as_bytes(),
            );
        }
        for dir in HOST_LIBRARY_DIRS {
            let mut names: Vec<_> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .collect();
            names.sort_by_key(|e| e.file_name());
            for entry in names {
                let name = entry.file_name().to_string_lossy().to_string();
                if HOST_LIBRARY_PREFIXES.iter().any(|p| name.starts_with(p))
                    && let Ok(meta) = std::fs::metadata(entry.path())
                {
                    let mtime = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                    field(
                        &mut h,
                        &name,
                        format!("{} {:?}", meta.len(), mtime).as_bytes(),
                    );
                }
            }
        }
        Ok(SharedInputs {
            digest: h.finalize().to_vec(),
        })
    }
}

/// `c-<20 hex>` for one service.
pub fn content_tag(
    ws: &Workspace,
    shared: &SharedInputs,
    service: &crate::workspace::Service,
) -> Result<String> {
    let mut h = Sha256::new();
    field(&mut h, "shared", &shared.digest);
    field(
        &mut h,
        "service",
        format!("{} {}", service.name, service.port).as_bytes(),
    );
    for name in ws.closure(service.name)? {
        let pkg = ws.package(&name)?;
        field(&mut h, "package", name.as_bytes());
        for rel in crate_files(&pkg.dir)? {
            let data = std::fs::read(pkg.dir.join(&rel))
                .with_context(|| format!("reading {}", pkg.dir.join(&rel).display()))?;
            field(&mut h, &rel, &data);
        }
    }
    Ok(format!("c-{}", &hex::encode(h.finalize())[..20]))
}

/// Length-prefixed so that ("ab","c") and ("a","bc") hash differently.
fn field(h: &mut Sha256, name: &str, data: &[u8]) {
    h.update((name.len() as u64).to_le_bytes());
    h.update(name.as_bytes());
    h.update((data.len() as u64).to_le_bytes());
    h.update(data);
}

/// The input files of the crate folder `dir`, relative to it and sorted:
/// every file but what `skipped` leaves out and nested workspace packages
/// (they are hashed as packages of their own).
pub fn crate_files(dir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if skipped(&name, dir == base) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if path != base && path.join("Cargo.toml").exists() {
                continue;
            }
            walk(base, &path, out)?;
        } else if kind.is_file() {
            out.push(
                path.strip_prefix(base)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .to_string(),
            );
        }
    }
    Ok(())
}
