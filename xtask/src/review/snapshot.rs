//! The manifests of one environment at one commit, straight from git objects
//! (no checkout: the work tree may be anything, even another branch).

use anyhow::{Context, Result, anyhow, bail};
use git2::{ObjectType, Oid, Repository, Tree};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One revision, resolved once so that every environment reads the same commit.
pub struct Revision<'r> {
    /// As the user wrote it (`origin/main`), for messages.
    pub spec: String,
    pub commit: git2::Commit<'r>,
}

impl Revision<'_> {
    pub fn id(&self) -> String {
        self.commit.id().to_string()
    }
}

/// Resolve `spec` to a commit: the error is one line naming it.
pub fn resolve<'r>(repo: &'r Repository, spec: &str) -> Result<Revision<'r>> {
    let object = repo
        .revparse_single(spec)
        .map_err(|e| anyhow!("unknown revision `{spec}`: {}", e.message()))?;
    let commit = object
        .peel_to_commit()
        .map_err(|_| anyhow!("revision `{spec}` is not a commit"))?;
    Ok(Revision {
        spec: spec.to_string(),
        commit,
    })
}

pub fn open(root: &Path) -> Result<Repository> {
    Repository::open(root)
        .with_context(|| format!("opening the git repository at {}", root.display()))
}

/// `environments/<env>/manifests` at one commit: file name -> (blob id, bytes).
#[derive(Default)]
pub struct Manifests {
    pub files: BTreeMap<String, (Oid, Vec<u8>)>,
}

fn subtree<'r>(repo: &'r Repository, tree: &Tree<'r>, path: &str) -> Result<Option<Tree<'r>>> {
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(None);
    };
    if entry.kind() != Some(ObjectType::Tree) {
        return Ok(None);
    }
    Ok(Some(entry.to_object(repo)?.peel_to_tree()?))
}

/// The id of `environments/<env>/manifests` at `rev`, if it exists.
fn manifests_tree_id(repo: &Repository, rev: &Revision, env: &str) -> Result<Option<Oid>> {
    let tree = rev.commit.tree()?;
    Ok(subtree(repo, &tree, &manifests_path(env))?.map(|t| t.id()))
}

pub fn manifests_path(env: &str) -> String {
    format!("environments/{env}/manifests")
}

/// Every `.yaml` file of the environment's manifests at `rev` (none when the
/// environment has no manifests there).
pub fn manifests(repo: &Repository, rev: &Revision, env: &str) -> Result<Manifests> {
    let tree = rev.commit.tree()?;
    let Some(folder) = subtree(repo, &tree, &manifests_path(env))? else {
        return Ok(Manifests::default());
    };
    let mut files = BTreeMap::new();
    for entry in folder.iter() {
        let Ok(name) = entry.name() else { continue };
        if entry.kind() != Some(ObjectType::Blob)
            || !(name.ends_with(".yaml") || name.ends_with(".yml"))
        {
            continue;
        }
        let blob = repo.find_blob(entry.id())?;
        files.insert(name.to_string(), (entry.id(), blob.content().to_vec()));
    }
    Ok(Manifests { files })
}

/// The environments that have manifests in either revision.
fn environment_names(repo: &Repository, revs: [&Revision; 2]) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for rev in revs {
        let tree = rev.commit.tree()?;
        let Some(envs) = subtree(repo, &tree, "environments")? else {
            continue;
        };
        for entry in envs.iter() {
            if let Ok(name) = entry.name()
                && manifests_tree_id(repo, rev, name)?.is_some()
            {
                names.insert(name.to_string());
            }
        }
    }
    Ok(names)
}

/// The environments to review: those named (each must exist in one of the
/// revisions), else every one whose manifests folder differs.
pub fn environments(
    repo: &Repository,
    base: &Revision,
    head: &Revision,
    named: &[String],
) -> Result<Vec<String>> {
    let known = environment_names(repo, [base, head])?;
    if !named.is_empty() {
        for env in named {
            if !known.contains(env) {
                let list: Vec<&str> = known.iter().map(String::as_str).collect();
                bail!(
                    "no environment `{env}` with manifests at `{}` or `{}` (there: {})",
                    base.spec,
                    head.spec,
                    if list.is_empty() {
                        "none".to_string()
                    } else {
                        list.join(", ")
                    }
                );
            }
        }
        let mut envs = named.to_vec();
        envs.dedup();
        return Ok(envs);
    }
    let mut differing = Vec::new();
    for env in known {
        if manifests_tree_id(repo, base, &env)? != manifests_tree_id(repo, head, &env)? {
            differing.push(env);
        }
    }
    Ok(differing)
}

/// Copy the files under `paths` (folders or files) of `rev` into `dir`.
pub fn extract(repo: &Repository, rev: &Revision, paths: &[&str], dir: &Path) -> Result<()> {
    let tree = rev.commit.tree()?;
    for path in paths {
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            continue;
        };
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let sub = entry.to_object(repo)?.peel_to_tree()?;
                let mut failure = None;
                sub.walk(git2::TreeWalkMode::PreOrder, |parent, item| {
                    if item.kind() != Some(ObjectType::Blob) {
                        return git2::TreeWalkResult::Ok;
                    }
                    let name = item.name().unwrap_or_default();
                    let to = dir.join(path).join(parent).join(name);
                    if let Err(e) = write_blob(repo, item.id(), &to) {
                        failure = Some(e);
                        return git2::TreeWalkResult::Abort;
                    }
                    git2::TreeWalkResult::Ok
                })?;
                if let Some(e) = failure {
                    return Err(e);
                }
            }
            Some(ObjectType::Blob) => write_blob(repo, entry.id(), &dir.join(path))?,
            _ => {}
        }
    }
    Ok(())
}

fn write_blob(repo: &Repository, id: Oid, to: &Path) -> Result<()> {
    let blob = repo.find_blob(id)?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(to, blob.content()).with_context(|| format!("writing {}", to.display()))
}
