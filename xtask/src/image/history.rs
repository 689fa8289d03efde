//! A service's build inputs in git: the commit an image is stamped with (the
//! last one that changed its inputs) and what `review` shows as the reason an
//! image moved (the commits between two images that changed them). The
//! inputs are the content tag's (`inputs::InputPaths`, `inputs::skipped`),
//! read here from git trees, so a commit that changes only files the content
//! tag ignores (docs, xtask, a crate's tests) changes no image.

pub use super::inputs::InputPaths;
use super::inputs::{self, Workspace};
use anyhow::{Context, Result};
use git2::{ObjectType, Oid, Repository};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub id: String,
    pub short_id: String,
    pub subject: String,
    pub author: String,
    pub time: i64,
}

impl CommitInfo {
    fn of(commit: &git2::Commit) -> CommitInfo {
        let id = commit.id().to_string();
        CommitInfo {
            short_id: crate::cli::abbrev(&id, crate::cli::REVIEW_COMMIT).to_string(),
            id,
            subject: commit
                .summary()
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_string(),
            author: commit.author().name().unwrap_or_default().to_string(),
            time: commit.time().seconds(),
        }
    }
}

/// The inputs of `service` in the cargo workspace at `root` (review passes a
/// commit's tree written to a temporary folder); None for anything that is
/// not a service built here (an upstream image).
pub fn input_paths(root: &Path, service: &str) -> Result<Option<InputPaths>> {
    if crate::workspace::service(service).is_err() {
        return Ok(None);
    }
    let ws = Workspace::load(root)?;
    Ok(Some(ws.input_paths(service)?))
}

/// (path, blob id) of every input file, sorted: equal fingerprints mean
/// equal inputs.
type Fingerprint = Vec<(String, Oid)>;

/// The fingerprint of the inputs in a git tree.
fn tree_fingerprint(
    repo: &Repository,
    tree: &git2::Tree,
    inputs: &InputPaths,
) -> Result<Fingerprint> {
    let mut out = Vec::new();
    for file in &inputs.files {
        if let Ok(entry) = tree.get_path(Path::new(file))
            && entry.kind() == Some(ObjectType::Blob)
        {
            out.push((file.clone(), entry.id()));
        }
    }
    for dir in &inputs.crates {
        if let Ok(entry) = tree.get_path(Path::new(dir))
            && entry.kind() == Some(ObjectType::Tree)
        {
            crate_blobs(repo, &repo.find_tree(entry.id())?, dir, true, &mut out)?;
        }
    }
    out.sort();
    Ok(out)
}

/// The files of one crate folder in git, by the content tag's rules.
fn crate_blobs(
    repo: &Repository,
    tree: &git2::Tree,
    prefix: &str,
    at_crate_root: bool,
    out: &mut Fingerprint,
) -> Result<()> {
    for entry in tree.iter() {
        let name = entry.name().unwrap_or_default();
        if inputs::skipped(name, at_crate_root) {
            continue;
        }
        let path = format!("{prefix}/{name}");
        match entry.kind() {
            Some(ObjectType::Tree) => {
                let sub = repo.find_tree(entry.id())?;
                // A nested package is hashed as a package of its own.
                if sub.get_name("Cargo.toml").is_none() {
                    crate_blobs(repo, &sub, &path, false, out)?;
                }
            }
            // Symlinks are not regular files: the work-tree walk skips them too.
            Some(ObjectType::Blob) if entry.filemode() != 0o120000 => out.push((path, entry.id())),
            _ => {}
        }
    }
    Ok(())
}

/// The fingerprint of the inputs in the work tree (what the content tag hashes).
fn worktree_fingerprint(root: &Path, inputs: &InputPaths) -> Result<Fingerprint> {
    let hash = |path: &Path| {
        Oid::hash_file(ObjectType::Blob, path)
            .with_context(|| format!("hashing {}", path.display()))
    };
    let mut out = Vec::new();
    for file in &inputs.files {
        let path = root.join(file);
        if path.is_file() {
            out.push((file.clone(), hash(&path)?));
        }
    }
    for dir in &inputs.crates {
        for rel in inputs::crate_files(&root.join(dir))? {
            out.push((format!("{dir}/{rel}"), hash(&root.join(dir).join(&rel))?));
        }
    }
    out.sort();
    Ok(out)
}

/// Fingerprints by commit, so a history walk reads each tree once.
struct Fingerprints<'r> {
    repo: &'r Repository,
    inputs: &'r InputPaths,
    by_commit: HashMap<Oid, Fingerprint>,
}

impl<'r> Fingerprints<'r> {
    fn new(repo: &'r Repository, inputs: &'r InputPaths) -> Self {
        Fingerprints {
            repo,
            inputs,
            by_commit: HashMap::new(),
        }
    }

    fn of(&mut self, commit: &git2::Commit) -> Result<&Fingerprint> {
        if !self.by_commit.contains_key(&commit.id()) {
            let print = tree_fingerprint(self.repo, &commit.tree()?, self.inputs)?;
            self.by_commit.insert(commit.id(), print);
        }
        Ok(&self.by_commit[&commit.id()])
    }

    /// Whether `commit` changed the inputs: it differs from every parent
    /// (a merge that kept one side's inputs did not change them), or it is
    /// a root commit that has any.
    fn changed(&mut self, commit: &git2::Commit) -> Result<bool> {
        let mine = self.of(commit)?.clone();
        if commit.parent_count() == 0 {
            return Ok(!mine.is_empty());
        }
        for parent in commit.parents() {
            if *self.of(&parent)? == mine {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// The commit that gave `head`'s inputs their content, as `git log -1 --
/// <inputs>` finds it: from `head`, follow a parent with the same inputs
/// until there is none. None when `head` has none of the inputs.
pub fn last_input_commit(
    repo: &Repository,
    head: Oid,
    inputs: &InputPaths,
) -> Result<Option<CommitInfo>> {
    let mut prints = Fingerprints::new(repo, inputs);
    let mut commit = repo.find_commit(head)?;
    let mine = prints.of(&commit)?.clone();
    if mine.is_empty() {
        return Ok(None);
    }
    loop {
        let mut same = None;
        for parent in commit.parents() {
            if *prints.of(&parent)? == mine {
                same = Some(parent);
                break;
            }
        }
        match same {
            Some(parent) => commit = parent,
            None => return Ok(Some(CommitInfo::of(&commit))),
        }
    }
}

/// Whether the work tree's inputs differ from those of `head`.
pub fn inputs_dirty(repo: &Repository, head: Oid, inputs: &InputPaths) -> Result<bool> {
    let root = repo.workdir().context("the repository has no work tree")?;
    let committed = tree_fingerprint(repo, &repo.find_commit(head)?.tree()?, inputs)?;
    Ok(worktree_fingerprint(root, inputs)? != committed)
}

/// The commits reachable from `to` but not `from` that changed the inputs,
/// newest first.
pub fn input_commits(
    repo: &Repository,
    from: Oid,
    to: Oid,
    inputs: &InputPaths,
) -> Result<Vec<CommitInfo>> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
    walk.push(to)?;
    walk.hide(from)?;
    let mut prints = Fingerprints::new(repo, inputs);
    let mut out = Vec::new();
    for id in walk {
        let commit = repo.find_commit(id?)?;
        if prints.changed(&commit)? {
            out.push(CommitInfo::of(&commit));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits `files` (path, contents) on top of HEAD; returns the commit.
    fn commit(repo: &Repository, files: &[(&str, &str)], message: &str) -> Oid {
        let root = repo.workdir().unwrap().to_path_buf();
        let mut index = repo.index().unwrap();
        for (path, text) in files {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, text).unwrap();
            index.add_path(Path::new(path)).unwrap();
        }
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let who =
            git2::Signature::new("t", "t@localhost", &git2::Time::new(1_700_000_000, 0)).unwrap();
        let parent = repo.head().ok().map(|h| h.peel_to_commit().unwrap());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(Some("HEAD"), &who, &who, message, &tree, &parents)
            .unwrap()
    }

    #[test]
    fn the_last_input_commit_skips_what_the_content_tag_ignores() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let inputs = InputPaths {
            crates: vec!["services/a".into()],
            files: vec!["Cargo.lock".into()],
        };
        let first = commit(
            &repo,
            &[
                ("services/a/src/main.rs", "fn main() {}\n"),
                ("Cargo.lock", ""),
            ],
            "a",
        );
        commit(&repo, &[("README.md", "docs\n")], "docs");
        commit(&repo, &[("services/a/tests/t.rs", "\n")], "a test");
        commit(&repo, &[("services/a/.hidden", "\n")], "hidden");
        let head = commit(&repo, &[("xtask/src/main.rs", "\n")], "xtask");
        let last = last_input_commit(&repo, head, &inputs).unwrap().unwrap();
        assert_eq!(last.id, first.to_string());
        assert!(!inputs_dirty(&repo, head, &inputs).unwrap());
        assert!(
            input_commits(&repo, first, head, &inputs)
                .unwrap()
                .is_empty()
        );

        let change = commit(
            &repo,
            &[("services/a/src/main.rs", "fn main() { }\n")],
            "a: change",
        );
        let head = commit(&repo, &[("README.md", "more docs\n")], "docs");
        let last = last_input_commit(&repo, head, &inputs).unwrap().unwrap();
        assert_eq!(last.id, change.to_string());
        let ids: Vec<String> = input_commits(&repo, first, head, &inputs)
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, [change.to_string()]);

        // An uncommitted edit of an input makes the inputs dirty; of a test, not.
        std::fs::write(dir.path().join("services/a/tests/t.rs"), "// edited\n").unwrap();
        assert!(!inputs_dirty(&repo, head, &inputs).unwrap());
        std::fs::write(dir.path().join("services/a/src/main.rs"), "// edited\n").unwrap();
        assert!(inputs_dirty(&repo, head, &inputs).unwrap());
    }
}
