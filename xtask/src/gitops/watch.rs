//! `sync --watch`: a GitOps pull loop (the chapter's "Poll SCM" trigger).
//! Every interval, look at HEAD (or, with `--fetch`, fetch the upstream of
//! the current branch with the git CLI); when it moved, sync that commit, and
//! while the last sync of the current commit failed, sync it again.
//!
//! SIGTERM or Ctrl-C stops the watch at once, whatever it is doing: a fetch
//! is killed; a sync stops where it is (between two requests: each apply,
//! delete and inventory write is one atomic API call, and the inventory is
//! widened before applying and narrowed only after pruning, so a cut sync is
//! like a crashed one and the next sync completes it).

use anyhow::{Context, Result, anyhow, bail};
use std::path::Path;
use std::process::Stdio;
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

/// How long one `git fetch` may take before it is killed and tried again at the
/// next interval: the interval, but at least 30 s and at most 5 min.
pub fn fetch_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(30), Duration::from_secs(300))
}

/// The commit to deploy now: HEAD, or (`fetch`) the upstream of the current
/// branch after a `git fetch` that may take at most `timeout`. Dropping the
/// future kills the fetch.
pub async fn target_commit(repo_root: &Path, fetch: bool, timeout: Duration) -> Result<String> {
    if !fetch {
        return super::source::resolve(repo_root, None);
    }
    let upstream = Upstream::of(repo_root)?;
    git_fetch(repo_root, &upstream, timeout).await?;
    let repo = git2::Repository::open(repo_root)?;
    let commit = repo.revparse_single(&upstream.tracking)?.peel_to_commit()?;
    Ok(commit.id().to_string())
}

/// The current branch's upstream, and how the user has configured ssh.
struct Upstream {
    remote: String,
    /// The branch on the remote (`refs/heads/main`).
    branch: String,
    /// The remote-tracking branch the fetch updates (`refs/remotes/origin/main`).
    tracking: String,
    /// GIT_SSH_COMMAND, GIT_SSH or core.sshCommand is set: leave ssh alone.
    own_ssh: bool,
}

impl Upstream {
    fn of(repo_root: &Path) -> Result<Upstream> {
        let repo = git2::Repository::open(repo_root)?;
        let head = repo.head()?;
        if !head.is_branch() {
            bail!("--fetch needs a checked-out branch with an upstream (HEAD is detached)");
        }
        let branch_ref = head
            .name()
            .map_err(|_| anyhow!("branch name is not UTF-8"))?
            .to_string();
        let text = |buf: git2::Buf, what: &str| {
            buf.as_str()
                .map(str::to_string)
                .map_err(|_| anyhow!("{what} is not UTF-8"))
        };
        let tracking = repo
            .branch_upstream_name(&branch_ref)
            .with_context(|| format!("{branch_ref} has no upstream branch to fetch"))?;
        let tracking = text(tracking, "upstream name")?;
        let remote = text(repo.branch_upstream_remote(&branch_ref)?, "remote name")?;
        let branch = text(
            repo.branch_upstream_merge(&branch_ref)?,
            "upstream branch name",
        )?;
        let own_ssh = ["GIT_SSH_COMMAND", "GIT_SSH"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
            || repo
                .config()
                .is_ok_and(|c| c.get_string("core.sshCommand").is_ok());
        Ok(Upstream {
            remote,
            branch,
            tracking,
            own_ssh,
        })
    }
}

/// ssh that fails instead of asking for a password, a passphrase or a host key.
const UNATTENDED_SSH: &str = "ssh -o BatchMode=yes -o ConnectTimeout=10";

/// `git fetch <remote> <branch>` with the git CLI, in the repository: unlike
/// git2 as built here (no HTTPS or SSH), it has the user's transports, SSH
/// agent and credential helpers. It updates the remote-tracking branch.
///
/// Unattended: no terminal prompt, ssh in batch mode (unless the user set their
/// own ssh command), no stdin. git runs in its own process group, killed as a
/// whole (with ssh or the remote helper) at the timeout or when the future is
/// dropped, e.g. by a stop signal.
async fn git_fetch(repo_root: &Path, upstream: &Upstream, timeout: Duration) -> Result<()> {
    let Upstream { remote, branch, .. } = upstream;
    let mut command = tokio::process::Command::new("git");
    command
        .args(["fetch", "--quiet", remote, branch])
        .current_dir(repo_root)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if !upstream.own_ssh {
        command.env("GIT_SSH_COMMAND", UNATTENDED_SSH);
    }
    let child = command
        .spawn()
        .with_context(|| format!("fetching from remote `{remote}`: running git"))?;
    let group = KillGroup(child.id());
    let out = tokio::time::timeout(timeout, child.wait_with_output()).await;
    let Ok(out) = out else {
        // `group` is dropped here: git and its helpers are killed.
        bail!(
            "fetching from remote `{remote}` timed out after {timeout:.0?} (`git fetch {remote} {branch}`); trying again at the next interval"
        );
    };
    group.disarm();
    let out = out.with_context(|| format!("fetching from remote `{remote}`: running git"))?;
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

/// SIGKILL to a process group on drop, unless disarmed once its leader exited
/// by itself. `kill_on_drop` alone would reach git but not ssh or
/// git-remote-https, which could hold the network connection.
struct KillGroup(Option<u32>);

impl KillGroup {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|id| libc::pid_t::try_from(id).ok()) {
            // SAFETY: kill(2) with a negative pid signals that process group.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
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
