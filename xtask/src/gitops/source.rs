//! Desired state: the manifests of one environment as committed in git.
//!
//! Read from a commit (HEAD or `--rev`), never from the working tree, so that
//! what is deployed is always something a reviewer could have seen. Uncommitted
//! edits under the manifests folder are reported and ignored.

use super::kinds::{self, KindInfo, ObjectKey};
use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One object to apply, as written in git (namespace filled in).
#[derive(Debug, Clone)]
pub struct DesiredObject {
    pub key: ObjectKey,
    pub kind: &'static KindInfo,
    pub value: Value,
    /// Path inside the repository, for error messages.
    pub file: String,
}

#[derive(Debug)]
pub struct Desired {
    /// Full commit id the objects were read from.
    pub commit: String,
    pub objects: Vec<DesiredObject>,
    /// Working-tree paths under the manifests folder that differ from HEAD.
    pub uncommitted: Vec<String>,
}

pub fn manifests_dir(env: &str) -> String {
    format!("environments/{env}/manifests")
}

/// Resolve `rev` (default HEAD) to a commit id.
pub fn resolve(repo_root: &Path, rev: Option<&str>) -> Result<String> {
    let repo = open(repo_root)?;
    let commit = peel(&repo, rev)?;
    Ok(commit.id().to_string())
}

fn open(repo_root: &Path) -> Result<git2::Repository> {
    git2::Repository::open(repo_root)
        .with_context(|| format!("opening the git repository at {}", repo_root.display()))
}

fn peel<'r>(repo: &'r git2::Repository, rev: Option<&str>) -> Result<git2::Commit<'r>> {
    let spec = rev.unwrap_or("HEAD");
    let object = repo
        .revparse_single(spec)
        .map_err(|e| anyhow!("unknown revision `{spec}`: {}", e.message()))?;
    object
        .peel_to_commit()
        .map_err(|e| anyhow!("`{spec}` is not a commit: {}", e.message()))
}

/// Read every object under `environments/<env>/manifests/` at `rev`.
pub fn read(
    repo_root: &Path,
    env: &str,
    default_namespace: &str,
    rev: Option<&str>,
) -> Result<Desired> {
    let repo = open(repo_root)?;
    let commit = peel(&repo, rev)?;
    let dir = manifests_dir(env);
    let short = &commit.id().to_string()[..7];
    let tree = commit.tree()?;
    let entry = tree.get_path(Path::new(&dir)).map_err(|_| {
        anyhow!("commit {short} has no {dir}/: render and commit the manifests first (`cargo xtask release --env {env}`)")
    })?;
    let folder = entry
        .to_object(&repo)?
        .into_tree()
        .map_err(|_| anyhow!("{dir} in commit {short} is not a folder"))?;

    let mut files = Vec::new();
    for item in folder.iter() {
        let Ok(name) = item.name() else { continue };
        if !(name.ends_with(".yaml") || name.ends_with(".yml")) {
            continue;
        }
        let path = format!("{dir}/{name}");
        let blob = item
            .to_object(&repo)?
            .peel_to_blob()
            .with_context(|| format!("{path} is not a file"))?;
        files.push((path, blob.content().to_vec()));
    }
    let mut objects = Vec::new();
    for parsed in parse_files(&files, default_namespace) {
        objects.extend(parsed?);
    }
    objects.sort_by(|a, b| a.key.order().cmp(&b.key.order()));
    for pair in objects.windows(2) {
        if pair[0].key == pair[1].key {
            bail!(
                "{} and {} both define {}",
                pair[0].file,
                pair[1].file,
                pair[1].key
            );
        }
    }
    let uncommitted = uncommitted_changes(&repo, &dir)?;
    Ok(Desired {
        commit: commit.id().to_string(),
        objects,
        uncommitted,
    })
}

/// At most this many threads parse manifests.
const PARSE_THREADS: usize = 4;

/// Parse `(path, bytes)` files on up to [`PARSE_THREADS`] threads; one
/// result per file, in the order given.
fn parse_files(
    files: &[(String, Vec<u8>)],
    default_namespace: &str,
) -> Vec<Result<Vec<DesiredObject>>> {
    let parse = |(path, bytes): &(String, Vec<u8>)| {
        let text = std::str::from_utf8(bytes).with_context(|| format!("{path} is not UTF-8"))?;
        parse_file(path, text, default_namespace)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(PARSE_THREADS)
        .min(files.len() / 32 + 1);
    if threads <= 1 {
        return files.iter().map(parse).collect();
    }
    let chunk = files.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let workers: Vec<_> = files
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(parse).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a manifest parser thread panicked"))
            .collect()
    })
}

/// Parse one manifest file (one or more YAML documents).
pub fn parse_file(path: &str, text: &str, default_namespace: &str) -> Result<Vec<DesiredObject>> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).with_context(|| format!("{path}: not valid YAML"))?;
        if value.is_null() {
            continue;
        }
        out.push(to_object(path, value, default_namespace)?);
    }
    Ok(out)
}

fn to_object(path: &str, mut value: Value, default_namespace: &str) -> Result<DesiredObject> {
    let field = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
    let api_version =
        field(&value, "apiVersion").ok_or_else(|| anyhow!("{path}: no apiVersion"))?;
    let kind_name = field(&value, "kind").ok_or_else(|| anyhow!("{path}: no kind"))?;
    let kind = kinds::lookup(&api_version, &kind_name).ok_or_else(|| {
        let known: Vec<String> = kinds::KINDS
            .iter()
            .map(|k| format!("{} {}", k.api_version(), k.kind))
            .collect();
        anyhow!(
            "{path}: sync does not handle {api_version} {kind_name} (known: {})",
            known.join(", ")
        )
    })?;
    let metadata = value
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| anyhow!("{path}: no metadata"))?;
    let name = metadata
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{path}: no metadata.name"))?;
    let namespace = if kind.namespaced {
        match metadata.get("namespace").and_then(Value::as_str) {
            Some(ns) => ns.to_string(),
            None => {
                metadata.insert(
                    "namespace".into(),
                    Value::String(default_namespace.to_string()),
                );
                default_namespace.to_string()
            }
        }
    } else {
        String::new()
    };
    let key = ObjectKey {
        group: kind.group.to_string(),
        kind: kind.kind.to_string(),
        namespace,
        name,
    };
    Ok(DesiredObject {
        key,
        kind,
        value,
        file: path.to_string(),
    })
}

/// Paths under `dir` whose working-tree content differs from HEAD (incl. untracked).
fn uncommitted_changes(repo: &git2::Repository, dir: &str) -> Result<Vec<String>> {
    if repo.is_bare() {
        return Ok(Vec::new());
    }
    let mut options = git2::StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .pathspec(dir);
    let statuses = repo.statuses(Some(&mut options))?;
    Ok(statuses
        .iter()
        .filter_map(|s| s.path().ok().map(str::to_string))
        .collect())
}

/// How many commits `head` has that `base` lacks (None when unrelated or unknown).
pub fn commits_ahead(repo_root: &Path, base: &str, head: &str) -> Option<usize> {
    let repo = open(repo_root).ok()?;
    let base = git2::Oid::from_str(base).ok()?;
    let head = git2::Oid::from_str(head).ok()?;
    repo.graph_ahead_behind(head, base)
        .ok()
        .map(|(ahead, _)| ahead)
}

/// The repository root to read from: `--repo` or the workspace.
pub fn repo_root(flag: Option<&PathBuf>) -> PathBuf {
    flag.cloned().unwrap_or_else(crate::project::root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_fills_namespace_and_rejects_unknown_kinds() {
        let text = "# generated\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec: {}\n";
        let objects = parse_file("d.yaml", text, "micro").unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].key.namespace, "micro");
        assert_eq!(objects[0].value["metadata"]["namespace"], "micro");

        let ns = parse_file(
            "n.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: micro\n",
            "x",
        )
        .unwrap();
        assert_eq!(ns[0].key.namespace, "");

        let err = parse_file(
            "e.yaml",
            "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: a\n",
            "m",
        )
        .unwrap_err();
        assert!(err.to_string().contains("e.yaml"), "{err}");
        assert!(
            parse_file("x.yaml", "kind: Service\n", "m")
                .unwrap_err()
                .to_string()
                .contains("apiVersion")
        );
    }

    #[test]
    fn parallel_parse_keeps_file_order_and_each_files_error() {
        let files: Vec<(String, Vec<u8>)> = (0..200)
            .map(|i| {
                let text = if i == 117 {
                    "apiVersion: v1\nkind: Service\nmetadata: [\n".to_string()
                } else {
                    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n")
                };
                (format!("f{i}.yaml"), text.into_bytes())
            })
            .collect();
        let results = parse_files(&files, "micro");
        assert_eq!(results.len(), files.len());
        for (i, result) in results.iter().enumerate() {
            match result {
                Ok(objects) => assert_eq!(objects[0].key.name, format!("cm-{i}")),
                Err(e) => {
                    assert_eq!(i, 117);
                    assert!(e.to_string().contains("f117.yaml"), "{e}");
                }
            }
        }
        assert!(results[117].is_err());
    }
}
