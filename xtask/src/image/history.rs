//! Which commits changed a service's build inputs: what `review` shows as
//! the reason an image moved. The inputs are those of the content tag
//! (`inputs`): the service crate, the shared crate, the lockfile, the root
//! manifest and cargo's configuration.

use anyhow::Result;
use git2::{Oid, Repository};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct CommitInfo {
    pub id: String,
    pub short_id: String,
    pub subject: String,
    pub author: String,
    pub time: i64,
}

/// The repository paths whose changes change `service`'s image (none for
/// anything that is not a service built here).
pub fn input_paths(service: &str) -> Vec<String> {
    if crate::project::service(service).is_err() {
        return Vec::new();
    }
    vec![
        format!("services/{service}"),
        "services/common".to_string(),
        "Cargo.lock".to_string(),
        "Cargo.toml".to_string(),
        ".cargo/config.toml".to_string(),
    ]
}

/// The tree entry of each path at `commit` (None when absent): equal ids
/// mean nothing under the path changed.
fn entry_ids(
    repo: &Repository,
    commit: &git2::Commit,
    paths: &[String],
) -> Result<Vec<Option<Oid>>> {
    let tree = commit.tree()?;
    let _ = repo;
    Ok(paths
        .iter()
        .map(|p| tree.get_path(Path::new(p)).ok().map(|e| e.id()))
        .collect())
}

/// The commits reachable from `to` but not `from` that changed one of
/// `paths`, newest first (a merge counts when it differs from every parent).
pub fn input_commits(
    repo: &Repository,
    from: Oid,
    to: Oid,
    paths: &[String],
) -> Result<Vec<CommitInfo>> {
    let mut walk = repo.revwalk()?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
    walk.push(to)?;
    walk.hide(from)?;
    let mut out = Vec::new();
    for id in walk {
        let commit = repo.find_commit(id?)?;
        let mine = entry_ids(repo, &commit, paths)?;
        let touched = if commit.parent_count() == 0 {
            mine.iter().any(Option::is_some)
        } else {
            commit
                .parents()
                .map(|p| entry_ids(repo, &p, paths))
                .collect::<Result<Vec<_>>>()?
                .iter()
                .all(|theirs| *theirs != mine)
        };
        if touched {
            let id = commit.id().to_string();
            out.push(CommitInfo {
                short_id: id[..12].to_string(),
                id,
                subject: commit
                    .summary()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
                    .to_string(),
                author: commit.author().name().unwrap_or_default().to_string(),
                time: commit.time().seconds(),
            });
        }
    }
    Ok(out)
}
