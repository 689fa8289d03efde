//! Desired state: the manifests of one environment as committed in git.
//!
//! Read from a commit (HEAD or `--rev`), never from the working tree, so that
//! what is deployed is always something a reviewer could have seen. env.yaml
//! comes from the same commit as the manifests: a rollback uses the namespace
//! it was deployed with. Uncommitted edits are reported and ignored.

use super::kinds::{self, KindInfo, ObjectKey};
use super::scope::Scope;
use super::{validate, yaml};
use crate::environment::Environment;
use crate::ownership::{APPLYSET_PART_OF, Owner};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One object to apply, as written in git (namespace filled in, the owner's
/// ApplySet label added).
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
    /// env.yaml as committed in that same commit.
    pub env: Environment,
    /// The objects in scope (all of the commit's unless `-n`/`-l` narrowed it).
    pub objects: Vec<DesiredObject>,
    /// Working-tree paths of the environment (env.yaml, manifests) that differ from HEAD.
    pub uncommitted: Vec<String>,
    /// What `-n`/`-l` narrowed the objects to.
    pub scope: Scope,
    /// The commit's objects outside the scope: never written, never pruned.
    pub outside: Vec<DesiredObject>,
}

impl Desired {
    /// Who owns these objects: this environment in the namespace its env.yaml names.
    pub fn owner(&self) -> Owner {
        Owner::new(&self.env.name, &self.env.namespace)
    }

    /// The namespaces this commit declares: the environment's, and every
    /// namespace an object names. Prune never reaches outside them.
    pub fn namespaces(&self) -> BTreeSet<String> {
        let mut namespaces: BTreeSet<String> = self
            .objects
            .iter()
            .chain(&self.outside)
            .filter(|o| o.kind.namespaced)
            .map(|o| o.key.namespace.clone())
            .collect();
        namespaces.insert(self.env.namespace.clone());
        namespaces
    }

    /// Keep only the objects in `scope`; the rest move to `outside`.
    pub fn restrict(&mut self, scope: Scope) {
        let (inside, outside) = std::mem::take(&mut self.objects)
            .into_iter()
            .partition(|o| scope.contains(&o.key, &o.value));
        self.objects = inside;
        self.outside = outside;
        self.scope = scope;
    }
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

/// env.yaml of environment `env` as committed at `rev` (default HEAD).
pub fn environment_at(repo_root: &Path, env: &str, rev: Option<&str>) -> Result<Environment> {
    let repo = open(repo_root)?;
    let commit = peel(&repo, rev)?;
    read_environment(&repo, &commit, env)
}

fn read_environment(
    repo: &git2::Repository,
    commit: &git2::Commit,
    env: &str,
) -> Result<Environment> {
    let file = Environment::file_of(env);
    let id = commit.id().to_string();
    let short = super::output::short(&id);
    let entry = commit.tree()?.get_path(&file).map_err(|_| {
        anyhow!(
            "commit {short} has no {}: no environment `{env}` there (sync reads env.yaml from the commit it deploys)",
            file.display()
        )
    })?;
    let blob = entry
        .to_object(repo)?
        .peel_to_blob()
        .with_context(|| format!("{} in commit {short} is not a file", file.display()))?;
    let text = std::str::from_utf8(blob.content())
        .with_context(|| format!("{} in commit {short} is not UTF-8", file.display()))?;
    Environment::parse(env, text).with_context(|| format!("in commit {short}"))
}

/// Read environment `env` at `rev`: its env.yaml and every object under
/// `environments/<env>/manifests/`, both from that one commit.
pub fn read(repo_root: &Path, env: &str, rev: Option<&str>) -> Result<Desired> {
    let repo = open(repo_root)?;
    let commit = peel(&repo, rev)?;
    let environment = read_environment(&repo, &commit, env)?;
    let dir = manifests_dir(env);
    let id = commit.id().to_string();
    let short = super::output::short(&id);
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
    let owner = Owner::new(env, &environment.namespace);
    let mut objects = Vec::new();
    for parsed in parse_files(&files, &owner) {
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
    let mut uncommitted = uncommitted_changes(&repo, &dir)?;
    uncommitted.extend(uncommitted_changes(
        &repo,
        &environment.file.to_string_lossy(),
    )?);
    Ok(Desired {
        commit: commit.id().to_string(),
        env: environment,
        objects,
        uncommitted,
        scope: Scope::default(),
        outside: Vec::new(),
    })
}

/// At most this many threads parse manifests.
const PARSE_THREADS: usize = 4;

/// Parse `(path, bytes)` files on up to [`PARSE_THREADS`] threads; one
/// result per file, in the order given.
fn parse_files(files: &[(String, Vec<u8>)], owner: &Owner) -> Vec<Result<Vec<DesiredObject>>> {
    let parse = |(path, bytes): &(String, Vec<u8>)| {
        let text = std::str::from_utf8(bytes).with_context(|| format!("{path} is not UTF-8"))?;
        parse_file(path, text, owner)
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

/// Parse one manifest file (one or more YAML documents) of `owner`'s environment.
pub fn parse_file(path: &str, text: &str, owner: &Owner) -> Result<Vec<DesiredObject>> {
    let documents = yaml::documents(text).with_context(|| format!("{path}: not valid YAML"))?;
    documents
        .into_iter()
        .map(|value| to_object(value, owner).with_context(|| path.to_string()))
        .map(|object| {
            object.map(|o| DesiredObject {
                file: path.to_string(),
                ..o
            })
        })
        .collect()
}

fn to_object(mut value: Value, owner: &Owner) -> Result<DesiredObject> {
    let field = |v: &Value, name: &str| match v.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        None => bail!("no {name}"),
        Some(other) => bail!("{name} must be a string, not {other}"),
    };
    let api_version = field(&value, "apiVersion")?;
    let kind_name = field(&value, "kind")?;
    let kind = kinds::lookup(&api_version, &kind_name).ok_or_else(|| {
        let known: Vec<String> = kinds::KINDS
            .iter()
            .map(|k| format!("{} {}", k.api_version(), k.kind))
            .collect();
        anyhow!(
            "sync does not handle {api_version} {kind_name} (known: {})",
            known.join(", ")
        )
    })?;
    if !value.get("metadata").is_some_and(Value::is_object) {
        bail!("no metadata mapping");
    }
    let name = validate::metadata_string(&value, "name")?
        .ok_or_else(|| anyhow!("no metadata.name"))?
        .to_string();
    let namespace = match (
        kind.namespaced,
        validate::metadata_string(&value, "namespace")?,
    ) {
        (false, _) => String::new(),
        (true, Some(ns)) => ns.to_string(),
        (true, None) => {
            value["metadata"]["namespace"] = Value::String(owner.namespace.clone());
            owner.namespace.clone()
        }
    };
    validate::check(kind, &value)?;
    stamp_owner(&mut value, owner);
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
        file: String::new(),
    })
}

/// Add the owner's ApplySet label, as `kubectl apply --applyset` does: it is
/// what lets prune tell this environment's objects from everyone else's.
fn stamp_owner(value: &mut Value, owner: &Owner) {
    let metadata = &mut value["metadata"];
    if !metadata.get("labels").is_some_and(Value::is_object) {
        metadata["labels"] = Value::Object(Default::default());
    }
    metadata["labels"][APPLYSET_PART_OF] = Value::String(owner.applyset_id());
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
    flag.cloned().unwrap_or_else(crate::workspace::root)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = "# generated\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n";

    fn owner() -> Owner {
        Owner::new("minikube", "micro")
    }

    #[test]
    fn parse_fills_namespace_stamps_the_owner_and_rejects_unknown_kinds() {
        let objects = parse_file("d.yaml", DEPLOYMENT, &owner()).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].key.namespace, "micro");
        assert_eq!(objects[0].file, "d.yaml");
        assert_eq!(objects[0].value["metadata"]["namespace"], "micro");
        assert_eq!(
            objects[0].value["metadata"]["labels"][APPLYSET_PART_OF],
            owner().applyset_id()
        );

        let ns = parse_file(
            "n.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: micro\n",
            &owner(),
        )
        .unwrap();
        assert_eq!(ns[0].key.namespace, "");

        let err = parse_file(
            "e.yaml",
            "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata:\n  name: a\n",
            &owner(),
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("e.yaml"), "{err:#}");
        assert!(
            format!(
                "{:#}",
                parse_file("x.yaml", "kind: Service\n", &owner()).unwrap_err()
            )
            .contains("apiVersion")
        );
    }

    #[test]
    fn bad_identity_fields_and_duplicate_keys_name_the_file_and_field() {
        let error = |text: &str| format!("{:#}", parse_file("f.yaml", text, &owner()).unwrap_err());
        let numeric_ns =
            error("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: 5\n");
        assert!(
            numeric_ns.starts_with("f.yaml: metadata.namespace must be a string"),
            "{numeric_ns}"
        );
        let slash = error("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a/b\n");
        assert!(slash.contains("f.yaml: metadata.name `a/b`"), "{slash}");
        let duplicate =
            error("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: 1\n  k: 2\n");
        assert!(
            duplicate.contains("f.yaml: not valid YAML") && duplicate.contains("duplicate key `k`"),
            "{duplicate}"
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
        let results = parse_files(&files, &owner());
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
