//! `sync --watch`: a GitOps reconcile loop (what Jenkins' "Poll SCM" trigger did).
//! Every interval, look at HEAD (or, with `--fetch`, fetch the upstream of
//! the current branch with the git CLI); sync the commit when it moved, when
//! the last sync of it failed (again after a backoff that doubles up to the
//! resync period), and every resync period anyway, which repairs drift: a
//! resync that finds none costs one LIST per kind and writes nothing.
//!
//! SIGTERM or Ctrl-C stops the watch at once, whatever it is doing: a fetch
//! is killed; a sync stops where it is (between two requests: each apply,
//! delete and inventory write is one atomic API call, and the inventory is
//! widened before applying and narrowed only after pruning, so a cut sync is
//! like a crashed one and the next sync completes it).
//!
//! Output (text): one line per check, starting with the local time
//! (`12:00:05 up to date at 60d654c`, `12:01:05 synced 93692fc: 2 configured`,
//! `12:11:05 resync: 93692fc in sync, nothing written`), followed by the object
//! table only when the sync changed something. Errors go to stderr, also
//! timestamped. With `-o json|yaml` each sync's document goes to stdout as
//! before and the check lines go to stderr.

use super::clock;
use super::output::{self, short};
use super::plan::{Action, Plan};
use super::sync::Outcome;
use super::{Session, SyncOptions};
use crate::cli::Format;
use anyhow::{Context, Result, anyhow, bail};
use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

/// One `sync --watch`.
pub struct Watch<'a> {
    pub session: &'a Session,
    pub options: &'a SyncOptions,
    pub interval: Duration,
    pub resync: Duration,
    pub fetch: bool,
    /// `--listen`: pushes wake the loop at once (see webhook.rs).
    pub webhook: Option<Webhook>,
    pub output: Format,
}

/// Where to listen for push webhooks, and their secret.
pub struct Webhook {
    pub listen: std::net::SocketAddr,
    pub secret: super::webhook::Secret,
}

/// The last sync the watch made.
struct Attempt {
    commit: String,
    succeeded: bool,
    at: Instant,
    /// Failed syncs of this commit in a row.
    failures: u32,
}

/// Why a commit is synced now.
enum Due {
    First,
    NewCommit,
    Retry(u32),
    Resync,
}

impl Watch<'_> {
    pub async fn run(&self) -> Result<ExitCode> {
        let mut stop = StopSignal::register()?;
        let mut last: Option<Attempt> = None;
        eprintln!(
            "watching {} every {:.0?}, resync every {:.0?} (SIGTERM or Ctrl-C stops)",
            self.session.repo.display(),
            self.interval,
            self.resync
        );
        let fetch_timeout = fetch_timeout(self.interval);
        let mut pushes = self.listen().await?;
        // When the last webhook arrived, until the sync it wakes starts.
        let mut pushed_at: Option<Instant> = None;
        loop {
            // A stop during a fetch kills git and ends the watch at once.
            let target = tokio::select! {
                target = target_commit(&self.session.repo, self.fetch, fetch_timeout) => target,
                _ = stop.recv() => {
                    eprintln!("stopping the watch (fetch cancelled)");
                    return Ok(ExitCode::SUCCESS);
                }
            };
            match target {
                Ok(commit) => {
                    let due = self.due(&commit, last.as_ref());
                    if due.is_none() {
                        self.say(&format!("up to date at {}", short(&commit)))?;
                    }
                    if let Some(due) = due {
                        if let Some(at) = pushed_at.take() {
                            eprintln!(
                                "webhook: syncing {} {:.0?} after the push arrived",
                                short(&commit),
                                at.elapsed()
                            );
                        }
                        // A stop cancels the sync where it is, mostly in a rollout
                        // wait that could last --timeout. Safe anywhere: every write
                        // is one atomic request and the inventory is widened before
                        // applying, narrowed after pruning (see sync.rs), so a cut
                        // sync is like a crashed one and the next sync completes it.
                        let succeeded = tokio::select! {
                            ok = self.sync_once(&commit, &due) => ok?,
                            _ = stop.recv() => {
                                eprintln!(
                                    "stopping the watch (sync of {} cancelled; the next sync completes it)",
                                    short(&commit)
                                );
                                return Ok(ExitCode::SUCCESS);
                            }
                        };
                        let failures = match (&last, succeeded) {
                            (_, true) => 0,
                            (Some(l), false) if l.commit == commit => l.failures + 1,
                            (_, false) => 1,
                        };
                        last = Some(Attempt {
                            commit,
                            succeeded,
                            at: Instant::now(),
                            failures,
                        });
                    }
                }
                // A failed fetch (or an unreadable HEAD): tried again at the next interval.
                Err(e) => eprintln!("{} error: {}", clock::now(), crate::cli::one_line(&e)),
            }
            pushed_at = None;
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                Some(at) = next_push(&mut pushes) => pushed_at = Some(at),
                _ = stop.recv() => {
                    eprintln!("stopping the watch");
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
    }

    /// Starts the webhook server of `--listen`, for pushes to the upstream
    /// branch `--fetch` deploys.
    async fn listen(&self) -> Result<Option<tokio::sync::mpsc::Receiver<super::webhook::Wake>>> {
        let Some(hook) = &self.webhook else {
            return Ok(None);
        };
        let branch = Upstream::of(&self.session.repo)?.branch;
        super::webhook::start(hook.listen, hook.secret.clone(), branch)
            .await
            .map(Some)
    }

    /// Whether `commit` is to be synced now, given the last attempt.
    fn due(&self, commit: &str, last: Option<&Attempt>) -> Option<Due> {
        let Some(last) = last else {
            return Some(Due::First);
        };
        if last.commit != commit {
            return Some(Due::NewCommit);
        }
        let since = last.at.elapsed();
        if !last.succeeded {
            return (since + self.interval / 2 >= self.backoff(last.failures))
                .then_some(Due::Retry(last.failures));
        }
        (since + self.interval / 2 >= self.resync).then_some(Due::Resync)
    }

    /// The wait before retrying after `failures` failed syncs in a row: the
    /// interval, doubled per further failure, at most the resync period.
    fn backoff(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
        self.interval
            .saturating_mul(factor)
            .min(self.resync.max(self.interval))
    }

    /// One check's line: stdout for people, stderr beside machine documents.
    fn say(&self, line: &str) -> Result<()> {
        if self.output.is_text() {
            outln!("{} {line}", clock::now())?;
        } else {
            eprintln!("{} {line}", clock::now());
        }
        Ok(())
    }

    /// Sync `commit` once; true when it applied and rolled out. Err only
    /// when stdout is gone (the watch then ends).
    async fn sync_once(&self, commit: &str, due: &Due) -> Result<bool> {
        if let Due::Retry(failures) = due {
            eprintln!(
                "{} retrying the failed sync of {} (attempt {})",
                clock::now(),
                short(commit),
                failures + 1
            );
        }
        let started = Instant::now();
        let mut printing = Ok(());
        let result = async {
            let desired = self.session.desired(Some(commit))?;
            let outcome = self.session.sync(&desired, self.options).await?;
            printing = self.report(&desired, &outcome, due, started.elapsed());
            let failure = outcome
                .rollout_error
                .as_deref()
                .map(|message| output::rollout_failure(&desired, &outcome, message));
            anyhow::Ok(failure)
        };
        let succeeded = match result.await {
            Ok(None) => true,
            Ok(Some(message)) => {
                eprintln!("{} error: {message}", clock::now());
                false
            }
            Err(e) => {
                eprintln!("{} error: {}", clock::now(), crate::cli::one_line(&e));
                false
            }
        };
        printing.map(|()| succeeded)
    }

    /// What one sync did: a line, and the table when anything changed
    /// (text); the sync's document (json, yaml), except for a resync that
    /// found nothing to do.
    fn report(
        &self,
        desired: &super::source::Desired,
        outcome: &Outcome,
        due: &Due,
        took: Duration,
    ) -> Result<()> {
        let commit = short(&desired.commit);
        let changed = wrote_objects(&outcome.plan);
        let failed = outcome.rollout_error.is_some();
        let dry = if self.options.dry_run {
            "(dry run) "
        } else {
            ""
        };
        let line = match (due, changed, failed) {
            (Due::Resync, false, false) => format!("resync: {commit} in sync, nothing written"),
            (_, _, true) => format!(
                "{dry}did not finish syncing {commit}: {}",
                counts(&outcome.plan)
            ),
            (Due::Resync, true, false) => {
                format!("{dry}resync {commit}: {}", counts(&outcome.plan))
            }
            _ => format!("{dry}synced {commit}: {}", counts(&outcome.plan)),
        };
        if self.output.is_text() {
            self.say(&line)?;
            if changed || failed {
                output::print_table(outcome, self.options.dry_run)?;
            }
            return Ok(());
        }
        self.say(&line)?;
        if changed || failed || !matches!(due, Due::Resync) {
            output::print_sync(
                desired,
                self.session.context(),
                outcome,
                self.options.dry_run,
                took,
                self.output,
            )?;
        }
        Ok(())
    }
}

/// Did the sync create, configure or prune anything?
fn wrote_objects(plan: &Plan) -> bool {
    plan.changes
        .iter()
        .any(|c| c.done && matches!(c.action, Action::Create | Action::Configure | Action::Prune))
}

/// `2 configured, 1 pruned`: what changed (the counts that are not zero),
/// or `12 unchanged` when nothing did.
fn counts(plan: &Plan) -> String {
    let done = |action: Action| {
        plan.changes
            .iter()
            .filter(|c| c.action == action && c.done)
            .count()
    };
    let not_applied = plan.changes.iter().filter(|c| !c.done).count();
    let parts: Vec<String> = [
        (done(Action::Create), "created"),
        (done(Action::Configure), "configured"),
        (done(Action::Prune), "pruned"),
        (done(Action::Keep), "kept"),
        (not_applied, "not applied"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        format!("{} unchanged", done(Action::Unchanged))
    } else {
        parts.join(", ")
    }
}

/// The next webhook push; never, without `--listen`.
async fn next_push(
    pushes: &mut Option<tokio::sync::mpsc::Receiver<super::webhook::Wake>>,
) -> Option<super::webhook::Wake> {
    match pushes {
        Some(pushes) => pushes.recv().await,
        None => std::future::pending().await,
    }
}

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

/// Like [`parse_interval`], but zero is allowed (`--lock-timeout 0s`: do not wait).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match text
        .trim()
        .trim_end_matches(['s', 'm', 'h'])
        .trim_end_matches('m')
    {
        "0" | "0.0" => Ok(Duration::ZERO),
        _ => parse_interval(text),
    }
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
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    }
}
