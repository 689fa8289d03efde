//! `sync --watch`: a GitOps pull loop (the chapter's "Poll SCM" trigger).
//! Every interval, look at HEAD (or, with `--fetch`, fetch the upstream of
//! the current branch with the git CLI); when it moved, sync that commit, and
//! while the last sync of the current commit failed, sync it again. Stops
//! cleanly on SIGTERM or Ctrl-C, never in the middle of a sync.

use anyhow::{Context, Result, anyhow, bail};
use std::path::Path;
use std::time::Duration;

/// `60s`, `500ms`, `2m`, `1h`, or plain seconds.
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len()),
    );
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 60s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (use ms, s, m or h)"
            ));
        }
    };
    if seconds <= 0.0 {
        return Err("the interval must be positive".into());
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The commit to deploy now: HEAD, or the fetched upstream of the current branch.
pub fn target_commit(repo_root: &Path, fetch: bool) -> Result<String> {
    if !fetch {
        return super::source::resolve(repo_root, None);
    }
    let repo = git2::Repository::open(repo_root)?;
    let head = repo.head()?;
    if !head.is_branch() {
        bail!("--fetch needs a checked-out branch with an upstream (HEAD is detached)");
    }
    let branch_ref = head
        .name()
        .map_err(|_| anyhow!("branch name is not UTF-8"))?
        .to_string();
    let upstream = repo
        .branch_upstream_name(&branch_ref)
        .with_context(|| format!("{branch_ref} has no upstream branch to fetch"))?;
    let upstream = upstream
        .as_str()
        .map_err(|_| anyhow!("upstream name is not UTF-8"))?
        .to_string();
    let remote_name = repo.branch_upstream_remote(&branch_ref)?;
    let remote_name = remote_name
        .as_str()
        .map_err(|_| anyhow!("remote name is not UTF-8"))?
        .to_string();
    let merge = repo.branch_upstream_merge(&branch_ref)?;
    let merge = merge
        .as_str()
        .map_err(|_| anyhow!("upstream branch name is not UTF-8"))?
        .to_string();
    git_fetch(repo_root, &remote_name, &merge)?;
    let commit = repo.revparse_single(&upstream)?.peel_to_commit()?;
    Ok(commit.id().to_string())
}

/// `git fetch <remote> <branch>` with the git CLI, in the repository: unlike
/// git2 as built here (no HTTPS or SSH), it has the user's transports, SSH
/// agent and credential helpers. It updates the remote-tracking branch.
fn git_fetch(repo_root: &Path, remote: &str, branch: &str) -> Result<()> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(repo_root);
    // Unattended: a credential prompt would stall the watch; fail instead.
    let out = xshell::cmd!(sh, "git fetch --quiet {remote} {branch}")
        .env("GIT_TERMINAL_PROMPT", "0")
        .quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("fetching from remote `{remote}`: running git"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let reason = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        bail!(
            "fetching from remote `{remote}` failed (`git fetch {remote} {branch}`, {}): {}",
            out.status,
            if reason.is_empty() {
                "no message"
            } else {
                &reason
            }
        );
    }
    Ok(())
}

/// SIGTERM and Ctrl-C, registered once up front so that a signal arriving
/// during a sync is not lost (nor kills the process mid-write).
pub struct StopSignal {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignal {
    pub fn register() -> Result<StopSignal> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(StopSignal {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_interval("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_interval("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_interval("3").unwrap(), Duration::from_secs(3));
        assert!(parse_interval("soon").is_err());
        assert!(parse_interval("5d").is_err());
        assert!(parse_interval("0s").is_err());
    }
}
