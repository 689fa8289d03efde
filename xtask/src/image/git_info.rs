//! The commit an image is built from: full id, the human tag and its time.

use anyhow::{Context, Result};
use std::path::Path;

#[derive(Debug, Clone)]
pub struct GitInfo {
    pub commit: String,
    /// Short commit, `-dirty` appended when the tree has uncommitted changes.
    pub tag: String,
    /// Commit time, seconds since the epoch: every timestamp in the image.
    pub time: i64,
}

pub fn read(root: &Path) -> Result<GitInfo> {
    let repo = git2::Repository::open(root)
        .with_context(|| format!("opening the git repository at {}", root.display()))?;
    let head = repo
        .head()
        .context("reading HEAD (is there a commit yet?)")?;
    let commit = head.peel_to_commit().context("HEAD is not a commit")?;
    let id = commit.id().to_string();
    let mut options = git2::StatusOptions::new();
    options
        .include_untracked(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let dirty = !repo
        .statuses(Some(&mut options))
        .context("reading git status")?
        .is_empty();
    let short = &id[..12];
    let tag = if dirty {
        format!("{short}-dirty")
    } else {
        short.to_string()
    };
    Ok(GitInfo {
        commit: id,
        tag,
        time: commit.time().seconds(),
    })
}

/// RFC 3339 UTC time (`2024-05-01T12:00:00Z`) without a date crate.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
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
