//! `cargo xtask commit --env <env>`: commit exactly `environments/<env>/`.
//!
//! Only that folder is staged (adds, edits and deletions); the commit refuses
//! to run when anything else is staged already, so it can never sweep someone
//! else's change into a deploy commit. The message says which images changed
//! (`deploy(aws): adderservice 1a2b3c4 -> 5d6e7f8`), the body lists digests
//! and files, so the commit reads as a deploy proposal.

use super::images::ImageRef;
use super::render::manifests_dir;
use crate::environment::Environment;
use anyhow::{Context, Result, anyhow, bail};
use git2::{Commit, Delta, ErrorCode, Index, IndexAddOption, Oid, Repository, Signature, Tree};
use std::collections::BTreeMap;
use std::path::Path;

pub struct Outcome {
    /// The new commit's id (hex).
    pub id: String,
    /// Its first line.
    pub summary: String,
}

/// Commits `<root>/environments/<env>/` as it is on disk; `None` when it is
/// already what HEAD holds.
pub fn commit_environment(root: &Path, env: &str) -> Result<Option<Outcome>> {
    Environment::load_in(root, env)?;
    let repo = Repository::open(root)
        .with_context(|| format!("opening the git repository at {}", root.display()))?;
    let parent = head_commit(&repo, env)?;
    let head_tree = parent.tree()?;
    let prefix = format!("environments/{env}/");
    let mut index = repo.index().context("reading the git index")?;
    refuse_other_staged(&repo, &head_tree, &index, &prefix)?;
    let tree_id = stage_folder(&mut index, &prefix)?;
    if tree_id == head_tree.id() {
        return Ok(None);
    }
    commit_tree(&repo, &parent, &head_tree, tree_id, env).map(Some)
}

/// The commit of the branch HEAD is on (not detached, not unborn).
fn head_commit<'r>(repo: &'r Repository, env: &str) -> Result<Commit<'r>> {
    if repo.head_detached().context("reading HEAD")? {
        bail!(
            "HEAD is detached: switch to a branch first (`git switch -c deploy-{env}`), then commit"
        );
    }
    let head = match repo.head() {
        Ok(head) => head,
        Err(e) if e.code() == ErrorCode::UnbornBranch => {
            bail!("the repository has no commit yet: make a first commit")
        }
        Err(e) => return Err(anyhow!(e).context("reading HEAD")),
    };
    head.peel_to_commit().context("reading the HEAD commit")
}

/// Anything staged outside `prefix` would ride along in the deploy commit.
fn refuse_other_staged(
    repo: &Repository,
    head_tree: &Tree,
    index: &Index,
    prefix: &str,
) -> Result<()> {
    let staged = repo.diff_tree_to_index(Some(head_tree), Some(index), None)?;
    let others: Vec<String> = staged
        .deltas()
        .filter_map(|d| {
            d.new_file()
                .path()
                .or(d.old_file().path())
                .map(|p| p.to_string_lossy().into_owned())
        })
        .filter(|p| !p.starts_with(prefix))
        .collect();
    if !others.is_empty() {
        bail!(
            "other changes are already staged ({}): commit or unstage them first, `commit` commits only {prefix}",
            others.join(", ")
        );
    }
    Ok(())
}

/// Stage the folder (new and changed files, then deleted ones); returns the index's tree.
fn stage_folder(index: &mut Index, prefix: &str) -> Result<Oid> {
    let only_env = &mut |path: &Path, _: &[u8]| {
        if path.to_string_lossy().starts_with(prefix) {
            0
        } else {
            1
        }
    };
    index
        .add_all([prefix], IndexAddOption::DEFAULT, Some(&mut *only_env))
        .context("staging")?;
    index
        .update_all([prefix], Some(only_env))
        .context("staging deletions")?;
    index.write().context("writing the git index")?;
    index.write_tree().context("writing the tree")
}

/// Commits `tree_id` on HEAD, with the deploy message.
fn commit_tree(
    repo: &Repository,
    parent: &Commit,
    head_tree: &Tree,
    tree_id: Oid,
    env: &str,
) -> Result<Outcome> {
    let tree = repo.find_tree(tree_id)?;
    let message = message(repo, head_tree, &tree, env)?;
    let signature = repo
        .signature()
        .or_else(|_| Signature::now("xtask", "xtask@localhost"))?;
    let id = repo
        .commit(
            Some("HEAD"),
            &signature,
            &signature,
            &message,
            &tree,
            &[parent],
        )
        .context("committing")?;
    Ok(Outcome {
        id: id.to_string(),
        summary: message.lines().next().unwrap_or_default().to_string(),
    })
}

/// `deploy(<env>): a 1a2b3c4 -> 5d6e7f8, b ...` and a body with digests and files.
fn message(repo: &Repository, old: &Tree, new: &Tree, env: &str) -> Result<String> {
    let before = images_in(repo, old, env)?;
    let after = images_in(repo, new, env)?;
    let mut changes = Vec::new();
    let mut digests = Vec::new();
    let names: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    for name in names {
        match (before.get(name), after.get(name)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                if a.tag == b.tag {
                    changes.push(format!("{name} {} (rebuilt)", b.tag));
                } else {
                    changes.push(format!("{name} {} -> {}", a.tag, b.tag));
                }
                digests.push(format!("  {name}: {} -> {}", a.digest, b.digest));
            }
            (None, Some(b)) => {
                changes.push(format!("{name} new at {}", b.tag));
                digests.push(format!("  {name}: {}", b.digest));
            }
            (Some(_), None) => changes.push(format!("{name} removed")),
            (None, None) => {}
        }
    }
    let diff = repo.diff_tree_to_tree(Some(old), Some(new), None)?;
    let mut files = Vec::new();
    for delta in diff.deltas() {
        let path = delta
            .new_file()
            .path()
            .or(delta.old_file().path())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let mark = match delta.status() {
            Delta::Added => "A",
            Delta::Deleted => "D",
            _ => "M",
        };
        files.push(format!("  {mark} {path}"));
    }
    let subject = if changes.is_empty() {
        format!("deploy({env}): configuration only, {} file(s)", files.len())
    } else {
        format!("deploy({env}): {}", changes.join(", "))
    };
    let mut body = String::new();
    if !digests.is_empty() {
        body.push_str("\nImages:\n");
        body.push_str(&digests.join("\n"));
        body.push('\n');
    }
    body.push_str("\nFiles:\n");
    body.push_str(&files.join("\n"));
    body.push('\n');
    Ok(format!("{subject}\n{body}"))
}

/// Workload name -> image, from the Deployments and StatefulSets of one tree.
fn images_in(repo: &Repository, tree: &Tree, env: &str) -> Result<BTreeMap<String, ImageRef>> {
    let mut images = BTreeMap::new();
    let dir = manifests_dir(env);
    let Ok(entry) = tree.get_path(&dir) else {
        return Ok(images);
    };
    let Ok(folder) = entry.to_object(repo).and_then(|o| o.peel_to_tree()) else {
        return Ok(images);
    };
    for entry in folder.iter() {
        let name = entry.name().unwrap_or_default().to_string();
        let Some(workload) = name
            .strip_prefix("deployment-")
            .or(name.strip_prefix("statefulset-"))
            .and_then(|n| n.strip_suffix(".yaml"))
        else {
            continue;
        };
        let blob = entry.to_object(repo)?.peel_to_blob()?;
        // A file that does not parse has no image we can name; the file list still shows it.
        let Ok(value) = serde_yaml::from_slice::<serde_yaml::Value>(blob.content()) else {
            continue;
        };
        let image = value["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .and_then(|i| ImageRef::parse(i).ok());
        if let Some(image) = image {
            images.insert(workload.to_string(), image);
        }
    }
    Ok(images)
}
