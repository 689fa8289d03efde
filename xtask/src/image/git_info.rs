//! The commit an image is stamped with: per service, the last commit that
//! changed its inputs (`history::last_input_commit`), so an unchanged
//! service gets the same revision, times and tag on every later commit.

use super::history::{self, InputPaths};
use anyhow::{Context, Result};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct GitInfo {
    /// The revision label: the last commit that changed the inputs. None
    /// when the work tree's inputs differ from it (the image is not built
    /// from any commit) or no commit has them.
    pub commit: Option<String>,
    /// The human tag: that commit's short id, `-dirty` appended when the
    /// work tree's inputs differ; `uncommitted` when no commit has them.
    pub tag: String,
    /// That commit's time, seconds since the epoch: every timestamp in the
    /// image (`created` is left out without one).
    pub time: Option<i64>,
}

/// The repository of the workspace being built, at its HEAD.
pub struct Repo {
    repo: git2::Repository,
    head: git2::Oid,
}

pub fn open(root: &Path) -> Result<Repo> {
    let repo = git2::Repository::open(root)
        .with_context(|| format!("opening the git repository at {}", root.display()))?;
    let head = repo
        .head()
        .context("reading HEAD (is there a commit yet?)")?
        .peel_to_commit()
        .context("HEAD is not a commit")?
        .id();
    Ok(Repo { repo, head })
}

impl Repo {
    /// The stamp of an image whose inputs are `inputs`.
    pub fn stamp(&self, inputs: &InputPaths) -> Result<GitInfo> {
        let last = history::last_input_commit(&self.repo, self.head, inputs)
            .context("finding the last commit that changed the inputs")?;
        let dirty = history::inputs_dirty(&self.repo, self.head, inputs)
            .context("comparing the inputs with HEAD")?;
        Ok(match last {
            Some(commit) => GitInfo {
                tag: if dirty {
                    format!("{}-dirty", commit.short_id)
                } else {
                    commit.short_id.clone()
                },
                commit: (!dirty).then_some(commit.id),
                time: Some(commit.time),
            },
            None => GitInfo {
                commit: None,
                tag: "uncommitted".to_string(),
                time: None,
            },
        })
    }
}
/// A UTC time of day and date from Unix seconds, without a date crate.
pub struct Utc {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl Utc {
    /// Civil-from-days (Howard Hinnant's algorithm).
    pub fn from_unix(secs: i64) -> Utc {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Utc {
            year: yoe + era * 400 + i64::from(month <= 2),
            month,
            day,
            hour: rem / 3600,
            minute: rem % 3600 / 60,
            second: rem % 60,
        }
    }
}

/// RFC 3339 UTC time (`2024-05-01T12:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    let t = Utc::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_764_067_426), "2025-11-25T10:43:46Z");
    }
}
