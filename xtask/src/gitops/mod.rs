//! GitOps: diff, sync and status of committed manifests against a live cluster.
//!
//! Data flow: `source` reads the desired objects from a git commit; `cluster`
//! connects to the context env.yaml names; `live` lists what is there (one
//! LIST per kind); `plan` decides create / configure / unchanged / prune
//! (`normalize` does the request-free comparison, a dry-run confirms only what
//! looks different); `sync` applies, prunes and keeps the `inventory`;
//! `rollout` waits; `report` prints. `diff` and `status` share live + plan.

mod apply;
mod cluster;
mod diff;
mod inventory;
mod kinds;
mod live;
mod normalize;
mod plan;
mod prune;
mod report;
mod rollout;
mod source;
mod status;
mod sync;
mod watch;

use crate::environment::Environment;
use anyhow::{Context, Result, bail};
pub use report::Output;
use serde_json::json;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
pub use sync::SyncOptions;

/// Which environment, which commit, which cluster.
#[derive(clap::Args, Clone, Debug)]
pub struct Target {
    /// The environment: a folder under environments/ with an env.yaml.
    #[arg(long)]
    pub env: String,
    /// Deploy this commit instead of HEAD (a rollback: `--rev HEAD~1`).
    #[arg(long)]
    pub rev: Option<String>,
    /// Use this kube context, even if it is not the one env.yaml names.
    #[arg(long)]
    pub context: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Read manifests and env.yaml from this git repository (tests, benches).
    #[arg(long, hide = true)]
    pub repo: Option<PathBuf>,
    /// Output format: `text` for people, `json` for machines.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  cargo xtask diff --env minikube\n\nExit status: 0 in sync, 1 differences, 2 error."
)]
pub struct DiffArgs {
    #[command(flatten)]
    pub target: Target,
}

#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask sync --env minikube\n  cargo xtask sync --env minikube --rev HEAD~1   \
                        # roll back\n  cargo xtask sync --env minikube --watch --interval 30s"
)]
pub struct SyncArgs {
    #[command(flatten)]
    pub target: Target,
    /// Send every write with dryRun=All: validate and report, store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep objects that are gone from git.
    #[arg(long)]
    pub no_prune: bool,
    /// Allow pruning everything when the commit has no objects for the environment.
    #[arg(long)]
    pub allow_empty: bool,
    /// Do not wait for Deployments and StatefulSets to roll out.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for rollouts (e.g. 90s, 5m).
    #[arg(long, default_value = "5m", value_parser = watch::parse_interval)]
    pub timeout: Duration,
    /// Keep running; sync whenever HEAD (or the fetched upstream) moves, and retry
    /// a failed sync at every interval. SIGTERM or Ctrl-C stops it at once, also
    /// during a fetch or a sync (the next sync completes a cut one).
    #[arg(long, conflicts_with = "rev")]
    pub watch: bool,
    /// With --watch: how often to look for a new commit.
    #[arg(long, default_value = "60s", value_parser = watch::parse_interval, requires = "watch")]
    pub interval: Duration,
    /// With --watch: fetch the current branch's upstream and deploy that. A fetch
    /// may take the interval, at least 30s and at most 5m; then it is killed and
    /// tried again at the next interval. It never prompts: ssh runs in batch mode
    /// with a 10s connect timeout unless GIT_SSH_COMMAND, GIT_SSH or
    /// core.sshCommand is set.
    #[arg(long, requires = "watch")]
    pub fetch: bool,
}

#[derive(clap::Args)]
#[command(
    after_help = "Example:\n  cargo xtask status --env minikube\n\nExit status: 0 all in sync and rolled out, 1 otherwise."
)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Everything a command needs: environment, repository, a connected cluster.
pub struct Session {
    pub env: Environment,
    pub repo: PathBuf,
    cluster: cluster::Cluster,
}

impl Session {
    pub async fn open(target: &Target) -> Result<Session> {
        let repo = source::repo_root(target.repo.as_ref());
        let env = Environment::load_in(&repo, &target.env)?;
        let cluster = cluster::connect(
            target.kubeconfig.as_deref(),
            target.context.as_deref(),
            &env,
        )
        .await?;
        Ok(Session { env, repo, cluster })
    }

    /// The desired objects at `rev` (HEAD when None), warning about edits
    /// that are not committed.
    pub fn desired(&self, rev: Option<&str>) -> Result<source::Desired> {
        let desired = source::read(&self.repo, &self.env.name, &self.env.namespace, rev)?;
        if !desired.uncommitted.is_empty() {
            eprintln!(
                "warning: uncommitted changes under {}/ are ignored (using commit {}): {}",
                source::manifests_dir(&self.env.name),
                report::short(&desired.commit),
                desired.uncommitted.join(", ")
            );
        }
        Ok(desired)
    }

    pub async fn sync(
        &self,
        desired: &source::Desired,
        options: &SyncOptions,
    ) -> Result<sync::Outcome> {
        sync::sync(&self.cluster, &self.env, desired, options).await
    }
}

pub fn run_diff(args: DiffArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let session = Session::open(&args.target).await?;
        let desired = session.desired(args.target.rev.as_deref())?;
        diff::diff(&session.cluster, &session.env, &desired, args.target.output).await
    })
}

pub fn run_status(args: StatusArgs) -> Result<ExitCode> {
    runtime()?.block_on(async {
        let session = Session::open(&args.target).await?;
        let desired = session.desired(args.target.rev.as_deref())?;
        status::status(
            &session.cluster,
            &session.env,
            &session.repo,
            &desired,
            args.target.output,
        )
        .await
    })
}

pub fn run_sync(args: SyncArgs) -> Result<ExitCode> {
    let options = SyncOptions {
        dry_run: args.dry_run,
        prune: !args.no_prune,
        allow_empty: args.allow_empty,
        wait: !args.no_wait,
        timeout: args.timeout,
    };
    runtime()?.block_on(async {
        let session = Session::open(&args.target).await?;
        if args.watch {
            return watch_loop(
                &session,
                &options,
                args.interval,
                args.fetch,
                args.target.output,
            )
            .await;
        }
        let desired = session.desired(args.target.rev.as_deref())?;
        let started = Instant::now();
        let outcome = session.sync(&desired, &options).await?;
        print_sync(
            &session,
            &desired,
            &outcome,
            &options,
            started.elapsed(),
            args.target.output,
        )?;
        match outcome.rollout_error {
            Some(message) => bail!("{message}"),
            None => Ok(ExitCode::SUCCESS),
        }
    })
}

fn print_sync(
    session: &Session,
    desired: &source::Desired,
    outcome: &sync::Outcome,
    options: &SyncOptions,
    took: Duration,
    output: Output,
) -> Result<()> {
    let plan = &outcome.plan;
    match output {
        Output::Json => {
            let doc = json!({
                "env": session.env.name, "context": session.cluster.context, "commit": desired.commit,
                "dryRun": options.dry_run, "objects": report::lines(plan, options.dry_run),
                "summary": {
                    "created": plan.count(plan::Action::Create), "configured": plan.count(plan::Action::Configure),
                    "unchanged": plan.count(plan::Action::Unchanged), "pruned": plan.count(plan::Action::Prune),
                },
                "durationMs": took.as_millis() as u64, "error": outcome.rollout_error,
            });
            println!("{}", serde_json::to_string(&doc)?);
        }
        Output::Text => {
            let mut rows = vec![vec![
                "KIND".to_string(),
                "NAME".to_string(),
                "RESULT".to_string(),
            ]];
            for line in report::lines(plan, options.dry_run) {
                rows.push(vec![line.kind, line.name, line.action.to_string()]);
            }
            print!("{}", report::table(&rows));
            println!(
                "{}synced {} to context `{}`: {} ({:.2}s)",
                if options.dry_run { "(dry run) " } else { "" },
                report::short(&desired.commit),
                session.cluster.context,
                report::sync_summary(plan),
                took.as_secs_f64()
            );
        }
    }
    Ok(())
}

async fn watch_loop(
    session: &Session,
    options: &SyncOptions,
    interval: Duration,
    fetch: bool,
    output: Output,
) -> Result<ExitCode> {
    let mut stop = watch::StopSignal::register()?;
    // The commit synced last, and whether that sync (apply and rollout) succeeded.
    let mut last: Option<(String, bool)> = None;
    eprintln!(
        "watching {} every {:.0?} (SIGTERM or Ctrl-C stops)",
        session.repo.display(),
        interval
    );
    let fetch_timeout = watch::fetch_timeout(interval);
    loop {
        // A stop during a fetch kills git and ends the watch at once.
        let target = tokio::select! {
            target = watch::target_commit(&session.repo, fetch, fetch_timeout) => target,
            _ = stop.recv() => {
                eprintln!("stopping the watch (fetch cancelled)");
                return Ok(ExitCode::SUCCESS);
            }
        };
        match target {
            Ok(commit) => {
                let due = match &last {
                    Some((synced, true)) if *synced == commit => false,
                    Some((synced, false)) if *synced == commit => {
                        // Like a reconcile interval: a failed sync is tried again
                        // every interval until it succeeds or a new commit arrives.
                        eprintln!("retrying the failed sync of {}", report::short(&commit));
                        true
                    }
                    _ => true,
                };
                if due {
                    let started = Instant::now();
                    let sync = async {
                        let desired = session.desired(Some(&commit))?;
                        let outcome = session.sync(&desired, options).await?;
                        print_sync(
                            session,
                            &desired,
                            &outcome,
                            options,
                            started.elapsed(),
                            output,
                        )?;
                        anyhow::Ok(outcome.rollout_error)
                    };
                    // A stop cancels the sync where it is, mostly in a rollout
                    // wait that could last --timeout. Safe anywhere: every write
                    // is one atomic request and the inventory is widened before
                    // applying, narrowed after pruning (see sync.rs), so a cut
                    // sync is like a crashed one and the next sync completes it.
                    let result = tokio::select! {
                        result = sync => result,
                        _ = stop.recv() => {
                            eprintln!(
                                "stopping the watch (sync of {} cancelled; the next sync completes it)",
                                report::short(&commit)
                            );
                            return Ok(ExitCode::SUCCESS);
                        }
                    };
                    let succeeded = match result {
                        Ok(None) => true,
                        Ok(Some(message)) => {
                            eprintln!("error: {message}");
                            false
                        }
                        Err(e) => {
                            eprintln!("error: {}", crate::project::one_line(&e));
                            false
                        }
                    };
                    last = Some((commit, succeeded));
                }
            }
            // A failed fetch (or an unreadable HEAD): tried again at the next interval.
            Err(e) => eprintln!("error: {}", crate::project::one_line(&e)),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.recv() => {
                eprintln!("stopping the watch");
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}
