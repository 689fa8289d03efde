//! Git's side of the page: HEAD, the synced commit, the commits between
//! them, and the commit an image tag names. Read with git2; nothing is written.

use super::state::CommitInfo;
use git2::{Oid, Repository};
use std::path::Path;

/// At most this many commits between the synced one and HEAD are listed.
pub const LIMIT: usize = 50;

/// One commit as the page shows it; `None` when the repository lacks it.
pub fn info(repo: &Repository, id: &str) -> Option<CommitInfo> {
    let oid = Oid::from_str(id).ok()?;
    let commit = repo.find_commit(oid).ok()?;
    Some(describe(&commit))
}

fn describe(commit: &git2::Commit) -> CommitInfo {
    let id = commit.id().to_string();
    let subject = String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).into_owned();
    CommitInfo {
        short: crate::gitops::output::short(&id).to_string(),
        deploy: subject.starts_with("deploy("),
        author: commit.author().name().unwrap_or_default().to_string(),
        time: commit.time().seconds(),
        subject,
        id,
    }
}

/// The commits reachable from `head` but not from `synced`, newest first.
/// Without a synced commit (never synced, or unknown here) nothing is listed.
pub fn between(repo: &Repository, synced: Option<&str>, head: &str) -> Vec<CommitInfo> {
    let (Some(synced), Ok(head)) = (synced, Oid::from_str(head)) else {
        return Vec::new();
    };
    let Ok(synced) = Oid::from_str(synced) else {
        return Vec::new();
    };
    if repo.find_commit(synced).is_err() {
        return Vec::new();
    }
    let Ok(mut walk) = repo.revwalk() else {
        return Vec::new();
    };
    if walk.push(head).is_err() || walk.hide(synced).is_err() {
        return Vec::new();
    }
    walk.flatten()
        .take(LIMIT)
        .filter_map(|oid| repo.find_commit(oid).ok())
        .map(|c| describe(&c))
        .collect()
}

/// The commit an image tag names, when the tag is a commit id this
/// repository has (the commit tag `build` gives every image).
pub fn by_tag(repo: &Repository, tag: &str) -> Option<CommitInfo> {
    let hex = (7..=40).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex {
        return None;
    }
    let commit = repo.revparse_single(tag).ok()?.peel_to_commit().ok()?;
    Some(describe(&commit))
}

pub fn open(root: &Path) -> Option<Repository> {
    Repository::open(root).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(repo: &Repository, message: &str) -> String {
        let signature = git2::Signature::now("ada", "ada@example.com").unwrap();
        let tree = repo
            .find_tree(repo.index().unwrap().write_tree().unwrap())
            .unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .unwrap()
        .to_string()
    }

    #[test]
    fn lists_the_commits_after_the_synced_one_newest_first_and_marks_deploys() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let synced = commit(&repo, "deploy(minikube): webapp a -> b");
        commit(&repo, "docs: typo");
        let head = commit(&repo, "deploy(minikube): adderservice c -> d");
        let listed = between(&repo, Some(&synced), &head);
        let subjects: Vec<(&str, bool)> = listed
            .iter()
            .map(|c| (c.subject.as_str(), c.deploy))
            .collect();
        assert_eq!(
            subjects,
            [
                ("deploy(minikube): adderservice c -> d", true),
                ("docs: typo", false)
            ]
        );
        assert_eq!(listed[0].author, "ada");
        assert!(between(&repo, None, &head).is_empty());
        assert!(between(&repo, Some(&"0".repeat(40)), &head).is_empty());
        assert_eq!(by_tag(&repo, &head[..12]).map(|c| c.id), Some(head.clone()));
        assert_eq!(by_tag(&repo, "v1"), None);
        assert_eq!(
            info(&repo, &synced).map(|c| c.short),
            Some(synced[..7].to_string())
        );
    }
}
