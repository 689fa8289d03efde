//! Which images moved, and why: for each container whose image differs, the
//! old and new tag and digest, and the commits between the two images'
//! revisions that touched the service's build inputs. An image's tag names
//! the last commit that changed its inputs (`image::history`), so the
//! repository itself answers why its digest moved.

use super::compare::{ChangeKind, EnvChanges};
use super::integrity::TempDir;
use super::snapshot::{self, Revision};
use crate::image::history::{self, CommitInfo, InputPaths};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// `registry/name:tag@sha256:...`, the digest optional (an unpinned image).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ImageName {
    pub repository: String,
    pub tag: String,
    pub digest: Option<String>,
}

impl ImageName {
    pub fn parse(text: &str) -> ImageName {
        let (named, digest) = match text.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (text, None),
        };
        let slash = named.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match named[slash..].rfind(':') {
            Some(i) => (&named[..slash + i], &named[slash + i + 1..]),
            None => (named, "latest"),
        };
        ImageName {
            repository: repository.to_string(),
            tag: tag.to_string(),
            digest,
        }
    }

    /// `29b3699e8226 1f4ed3238a2a` (the tag and 12 hex digits of the digest).
    pub fn short(&self) -> String {
        match &self.digest {
            Some(d) => {
                let hex = d.trim_start_matches("sha256:");
                format!("{} {}", self.tag, &hex[..hex.len().min(12)])
            }
            None => format!("{} (no digest)", self.tag),
        }
    }
}

/// A commit that touched a service's inputs.
#[derive(Debug, Clone, Serialize)]
pub struct SourceCommit {
    pub id: String,
    pub short_id: String,
    pub subject: String,
    pub author: String,
    /// Seconds since the epoch.
    pub time: i64,
}

impl From<CommitInfo> for SourceCommit {
    fn from(c: CommitInfo) -> SourceCommit {
        SourceCommit {
            id: c.id,
            short_id: c.short_id,
            subject: c.subject,
            author: c.author,
            time: c.time,
        }
    }
}

/// Why an image moved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Sources {
    /// The commits between the two images' revisions that touched the inputs.
    Commits { commits: Vec<SourceCommit> },
    /// Not a service built here (an upstream image such as postgres).
    Upstream,
    /// A new container: there is no old image to start from.
    New,
    /// The revisions could not be followed (the reason says why).
    Unknown { reason: String },
}

/// One image change, in every environment where it is the same change.
#[derive(Debug, Clone, Serialize)]
pub struct ImageMove {
    pub service: String,
    pub envs: Vec<String>,
    pub old: Option<ImageName>,
    pub new: ImageName,
    pub sources: Sources,
}

/// Container name -> image of a workload's pod template.
fn images_of(object: Option<&Value>) -> BTreeMap<String, String> {
    let Some(spec) = object.and_then(|o| o.pointer("/spec/template/spec")) else {
        return BTreeMap::new();
    };
    ["initContainers", "containers"]
        .iter()
        .filter_map(|f| spec.get(*f).and_then(Value::as_array))
        .flatten()
        .filter_map(|c| {
            let name = c.get("name")?.as_str()?;
            let image = c.get("image")?.as_str()?;
            Some((name.to_string(), image.to_string()))
        })
        .collect()
}

/// Every image that differs in the environments reviewed, merged across
/// environments when it is the same move.
pub fn moves(repo: &git2::Repository, envs: &[&EnvChanges]) -> Vec<ImageMove> {
    let mut merged: BTreeMap<(String, Option<ImageName>, ImageName), Vec<String>> = BTreeMap::new();
    for env in envs {
        for change in env
            .changes
            .iter()
            .filter(|c| c.change != ChangeKind::Deleted)
        {
            let before = images_of(change.before.as_ref());
            for (container, image) in images_of(change.after.as_ref()) {
                let old = before.get(&container);
                if old == Some(&image) {
                    continue;
                }
                let key = (
                    container,
                    old.map(|o| ImageName::parse(o)),
                    ImageName::parse(&image),
                );
                let list = merged.entry(key).or_default();
                if !list.contains(&env.env) {
                    list.push(env.env.clone());
                }
            }
        }
    }
    merged
        .into_iter()
        .map(|((service, old, new), envs)| {
            let sources = sources(repo, &service, old.as_ref(), &new);
            ImageMove {
                service,
                envs,
                old,
                new,
                sources,
            }
        })
        .collect()
}

/// The commit an image tag names (a short id, `-dirty` when built from a
/// tree with changes).
fn revision(repo: &git2::Repository, tag: &str) -> Result<git2::Oid, String> {
    let id = tag.strip_suffix("-dirty").unwrap_or(tag);
    let not_here = || format!("image tag `{tag}` is not a commit of this repository");
    if id.len() < 7 || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(not_here());
    }
    repo.revparse_single(id)
        .and_then(|o| o.peel_to_commit())
        .map(|c| c.id())
        .map_err(|_| not_here())
}

/// The inputs of `service` as the cargo workspace of commit `at` defines
/// them: its tree is written to a temporary folder for `cargo metadata`, so
/// review still reads git objects only, never the work tree.
fn inputs_at(repo: &git2::Repository, at: git2::Oid, service: &str) -> anyhow::Result<InputPaths> {
    let revision = Revision {
        spec: at.to_string(),
        commit: repo.find_commit(at)?,
    };
    let dir = TempDir::new(service)?;
    let tree = revision.commit.tree()?;
    let names: Vec<String> = tree
        .iter()
        .filter_map(|e| e.name().ok().map(String::from))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    snapshot::extract(repo, &revision, &names, &dir.0)?;
    history::input_paths(&dir.0, service)?
        .ok_or_else(|| anyhow::anyhow!("{service} is not a service of this workspace"))
}

fn sources(
    repo: &git2::Repository,
    service: &str,
    old: Option<&ImageName>,
    new: &ImageName,
) -> Sources {
    if crate::workspace::service(service).is_err() {
        return Sources::Upstream;
    }
    let Some(old) = old else { return Sources::New };
    let (from, to) = match (revision(repo, &old.tag), revision(repo, &new.tag)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(reason), _) | (_, Err(reason)) => return Sources::Unknown { reason },
    };
    match inputs_at(repo, to, service)
        .and_then(|inputs| history::input_commits(repo, from, to, &inputs))
    {
        Ok(commits) => Sources::Commits {
            commits: commits.into_iter().map(SourceCommit::from).collect(),
        },
        Err(e) => Sources::Unknown {
            reason: crate::cli::one_line(&e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_with_ports_tags_and_digests() {
        let i = ImageName::parse(
            "127.0.0.1:5000/adderservice:29b3699e8226@sha256:1f4ed3238a2a8bda688e",
        );
        assert_eq!(i.repository, "127.0.0.1:5000/adderservice");
        assert_eq!(i.short(), "29b3699e8226 1f4ed3238a2a");
        let bare = ImageName::parse("127.0.0.1:5000/redis");
        assert_eq!((bare.tag.as_str(), bare.digest), ("latest", None));
    }
}
