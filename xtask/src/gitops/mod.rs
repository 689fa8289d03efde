//! GitOps: diff, sync and status of committed manifests against a live cluster.
//!
//! Data flow: `source` reads env.yaml and the desired objects from one git
//! commit (`yaml` parses strictly, `validate` checks names and types);
//! `cluster` connects to the context env.yaml names; `live` lists what is
//! there (one LIST per kind, selected by the environment's ApplySet label);
//! `plan` decides create / configure / unchanged / prune / keep / not ours
//! (`normalize` does the request-free comparison, a dry-run confirms only what
//! looks different); `sync` takes the `lease`, applies, prunes and keeps the
//! `inventory`; `rollout` waits; `output` prints; `watch` loops, woken also by `webhook`. `diff` and
//! `status` share live + plan; `preview` is diff's plan for `review --live`; `stale` warns when
//! the commit's manifests are not what render writes for its definitions. This file holds only the arguments and the
//! entry points.

mod apply;
mod clock;
pub mod cluster;
mod diff;
mod endpoints;
pub(crate) mod inventory;
pub(crate) mod kinds;
mod lease;
pub(crate) mod live;
pub(crate) mod normalize;
pub(crate) mod output;
pub(crate) mod plan;
mod preview;
mod prune;
pub(crate) mod rollout;
mod scope;
pub mod secrets;
pub(crate) mod source;
mod stale;
pub(crate) mod status;
mod sync;
mod synced;
mod validate;
mod watch;
mod webhook;
pub(crate) mod yaml;

use crate::cli::Format;
use anyhow::{Result, bail};
use plan::Rules;
pub use preview::{LiveChange, LivePlan, preview};
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
    /// The commit to compare or deploy instead of HEAD (`sync --rev HEAD~1` rolls back).
    #[arg(long)]
    pub rev: Option<String>,
    /// Only the objects in this namespace (and the Namespace itself); a sync
    /// neither writes nor prunes anything outside it.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Only the objects whose labels match (`key=value`, `key!=value`, `key`,
    /// `!key`, comma-separated); a sync neither writes nor prunes anything else.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Use this kube context, even if it is not the one env.yaml names.
    #[arg(long)]
    pub context: Option<String>,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Read manifests and env.yaml from this git repository (tests, benches).
    #[arg(long, hide = true)]
    pub root: Option<PathBuf>,
    /// Output format: `text` for people, `json` or `yaml` for machines.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    pub output: Format,
    /// Fail (exit 2, nothing written) when the committed manifests are not what
    /// `render` writes for the commit's definitions; without it, a warning.
    #[arg(long)]
    pub strict: bool,
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
                        # roll back\n  cargo xtask sync --env minikube --watch --interval 30s\n\n\
                  Prune deletes only objects this environment applied (its inventory and its ApplySet label,\n\
                  in the namespaces the commit declares), and never a Namespace, PersistentVolumeClaim or\n\
                  StatefulSet with volumes unless --prune-data."
)]
pub struct SyncArgs {
    #[command(flatten)]
    pub target: Target,
    /// Send every write with dryRun=All: validate and report, store nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep objects that are gone from git (they stay in the inventory).
    #[arg(long)]
    pub no_prune: bool,
    /// Also prune Namespaces, PersistentVolumeClaims and StatefulSets with volumes
    /// gone from git (their data is lost).
    #[arg(long, conflicts_with = "no_prune")]
    pub prune_data: bool,
    /// Take over objects that exist in the cluster without this environment's label.
    #[arg(long)]
    pub adopt: bool,
    /// Allow pruning everything when the commit has no objects for the environment.
    #[arg(long)]
    pub allow_empty: bool,
    /// Deploy into the namespace the commit names although the environment is
    /// deployed in another one (whose objects are then left alone, untracked).
    #[arg(long)]
    pub allow_namespace_change: bool,
    /// Do not wait for Deployments and StatefulSets to roll out.
    #[arg(long)]
    pub no_wait: bool,
    /// Prune without asking. On a terminal, a sync that prunes shows what it
    /// would delete and asks first; without a terminal it never asks.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// How long to wait for rollouts (e.g. 90s, 5m).
    #[arg(long, default_value = "5m", value_parser = watch::parse_interval)]
    pub timeout: Duration,
    /// How long to wait while another sync of the environment holds its lease (0s: do not wait).
    #[arg(long, default_value = "1m", value_parser = watch::parse_duration)]
    pub lock_timeout: Duration,
    /// Keep running: sync whenever HEAD (or the fetched upstream) moves, repair
    /// drift every --resync, and retry a failed sync with backoff. SIGTERM or
    /// Ctrl-C stops it at once, also during a fetch or a sync (the next sync
    /// completes a cut one).
    #[arg(long, conflicts_with = "rev")]
    pub watch: bool,
    /// With --watch: how often to look for a new commit.
    #[arg(long, default_value = "60s", value_parser = watch::parse_interval, requires = "watch")]
    pub interval: Duration,
    /// With --watch: how often to compare the cluster with the synced commit and
    /// repair drift, without a new commit (one LIST per kind; no write when in sync).
    #[arg(long, default_value = "10m", value_parser = watch::parse_interval, requires = "watch")]
    pub resync: Duration,
    /// With --watch: fetch the current branch's upstream and deploy that. A fetch
    /// may take the interval, at least 30s and at most 5m; then it is killed and
    /// tried again at the next interval. It never prompts: ssh runs in batch mode
    /// with a 10s connect timeout unless GIT_SSH_COMMAND, GIT_SSH or
    /// core.sshCommand is set.
    #[arg(long, requires = "watch")]
    pub fetch: bool,
    /// With --watch --fetch: also accept GitHub push webhooks on this address
    /// (POST /webhook, GET /healthz) and fetch and sync at once on a push to the
    /// watched branch; the interval poll stays as the fallback.
    #[arg(
        long,
        value_name = "ADDR:PORT",
        requires = "watch",
        requires = "fetch",
        requires = "webhook_secret_file"
    )]
    pub listen: Option<std::net::SocketAddr>,
    /// With --listen: the file holding the webhook's secret; requests must carry
    /// its HMAC-SHA256 signature (X-Hub-Signature-256).
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub webhook_secret_file: Option<PathBuf>,
}

impl SyncArgs {
    pub fn options(&self) -> SyncOptions {
        SyncOptions {
            dry_run: self.dry_run,
            rules: Rules {
                prune: !self.no_prune,
                prune_data: self.prune_data,
                adopt: self.adopt,
            },
            allow_empty: self.allow_empty,
            allow_namespace_change: self.allow_namespace_change,
            wait: !self.no_wait,
            timeout: self.timeout,
            lock_timeout: self.lock_timeout,
            // A watch loop has nobody to ask; a dry run deletes nothing.
            confirm_prune: !self.yes
                && !self.watch
                && !self.dry_run
                && crate::cli::prompt::interactive(),
        }
    }
}

#[derive(clap::Args)]
#[command(
    after_help = "States: in sync; outdated (git is ahead, the cluster is as last synced: sync updates it); \
drifted (the cluster was changed since the sync); missing; extra; not ours.\n\n\
Example:\n  cargo xtask status --env minikube\n\n\
Exit status:\n  \
0  every object in sync and rolled out\n  \
1  anything outdated, drifted, missing, extra, not ours or not ready\n  \
2  error (bad arguments, unreadable commit, unreachable cluster); nothing is shown"
)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
}

/// A repository and a connected cluster: what every command needs.
pub struct Session {
    pub repo: PathBuf,
    env: String,
    /// `--context` was given: the commit's env.yaml context is not enforced.
    context_override: bool,
    /// `-n`/`-l`: the part of the environment this run covers.
    scope: scope::Scope,
    /// `--strict`: stale manifests are an error, not a warning.
    strict: bool,
    cluster: cluster::Cluster,
}

impl Session {
    /// Connect to the context env.yaml names at `rev` (HEAD when None).
    pub async fn open(target: &Target, rev: Option<&str>) -> Result<Session> {
        // A malformed selector is an error before anything is read or connected.
        let scope = scope::Scope::new(target.namespace.as_deref(), target.selector.as_deref())?;
        let repo = source::repo_root(target.root.as_ref());
        let env = source::environment_at(&repo, &target.env, rev)?;
        let cluster = cluster::connect(
            target.kubeconfig.as_deref(),
            target.context.as_deref(),
            &env,
        )
        .await?;
        crate::cli::verbosity::note(&format!(
            "context `{}` at {}",
            cluster.context, cluster.server
        ));
        Ok(Session {
            repo,
            env: target.env.clone(),
            context_override: target.context.is_some(),
            scope,
            strict: target.strict,
            cluster,
        })
    }

    /// The environment at `rev` (HEAD when None): env.yaml and manifests from
    /// that one commit, warning about edits that are not committed and about
    /// manifests that are not what render writes (an error with `--strict`).
    pub fn desired(&self, rev: Option<&str>) -> Result<source::Desired> {
        let desired = self.committed(rev)?;
        stale::check(&self.repo, &desired, self.strict)?;
        Ok(desired)
    }

    /// [`Session::desired`] without the stale-render check (`review --live`
    /// makes that check itself).
    pub(crate) fn committed(&self, rev: Option<&str>) -> Result<source::Desired> {
        let mut desired = source::read(&self.repo, &self.env, rev)?;
        desired.restrict(self.scope.clone());
        if !self.context_override && desired.env.context != self.cluster.context {
            bail!(
                "commit {} deploys `{}` to context `{}`, but this run is connected to `{}`; nothing was changed",
                output::short(&desired.commit),
                self.env,
                desired.env.context,
                self.cluster.context
            );
        }
        if !desired.uncommitted.is_empty() {
            crate::cli::verbosity::warn(&format!(
                "uncommitted changes under environments/{}/ are ignored (using commit {}): {}",
                self.env,
                output::short(&desired.commit),
                desired.uncommitted.join(", ")
            ));
        }
        crate::cli::verbosity::note(&format!(
            "read commit {}: {} object(s) of `{}`{}",
            output::short(&desired.commit),
            desired.objects.len(),
            self.env,
            match desired.scope.is_everything() {
                true => String::new(),
                false => format!(" in scope ({} outside)", desired.outside.len()),
            }
        ));
        Ok(desired)
    }

    pub async fn sync(
        &self,
        desired: &source::Desired,
        options: &SyncOptions,
    ) -> Result<sync::Outcome> {
        sync::sync(&self.cluster, desired, options).await
    }

    pub fn context(&self) -> &str {
        &self.cluster.context
    }
}

pub fn run_diff(args: DiffArgs) -> Result<ExitCode> {
    let rev = args.target.rev.as_deref();
    crate::cli::runtime()?.block_on(async {
        let session = Session::open(&args.target, rev).await?;
        let desired = session.desired(rev)?;
        diff::diff(&session.cluster, &desired, args.target.output).await
    })
}

pub fn run_status(args: StatusArgs) -> Result<ExitCode> {
    let rev = args.target.rev.as_deref();
    crate::cli::runtime()?.block_on(async {
        let session = Session::open(&args.target, rev).await?;
        let desired = session.desired(rev)?;
        status::status(
            &session.cluster,
            &session.repo,
            &desired,
            &rev.map_or_else(|| "HEAD".to_string(), |r| format!("--rev {r}")),
            args.target.output,
        )
        .await
    })
}

pub fn run_sync(args: SyncArgs) -> Result<ExitCode> {
    let options = args.options();
    let rev = args.target.rev.as_deref();
    // Read before anything starts: a bad secret file is one error, not a watch
    // that never accepts a webhook.
    let webhook = match (args.listen, &args.webhook_secret_file) {
        (Some(listen), Some(file)) => Some(watch::Webhook {
            listen,
            secret: webhook::Secret::read(file)?,
        }),
        _ => None,
    };
    crate::cli::runtime()?.block_on(async {
        let session = Session::open(&args.target, rev).await?;
        if args.watch {
            let watch = watch::Watch {
                session: &session,
                options: &options,
                interval: args.interval,
                resync: args.resync,
                fetch: args.fetch,
                webhook,
                output: args.target.output,
            };
            return watch.run().await;
        }
        let desired = session.desired(rev)?;
        let started = Instant::now();
        let outcome = session.sync(&desired, &options).await?;
        output::print_sync(
            &desired,
            session.context(),
            &outcome,
            options.dry_run,
            started.elapsed(),
            args.target.output,
        )?;
        match &outcome.rollout_error {
            Some(message) => bail!("{}", output::rollout_failure(&desired, &outcome, message)),
            None => Ok(ExitCode::SUCCESS),
        }
    })
}
