//! `cargo xtask review`: the pull-request view of a deploy.
//!
//! Data flow: `snapshot` reads each environment's manifests of two commits
//! from git objects (no checkout); `compare` pairs their objects and makes a
//! unified diff per object (Secret values masked); `callouts` names the
//! risky changes; `images` says which images moved and which source commits
//! moved them; `integrity` renders the head's definitions from its tree and
//! compares; `live` (optional) asks the cluster what syncing head would do.
//! `markdown`, `text` and `json` present one [`Review`]; markdown is split
//! into parts that fit a GitHub comment. This file holds the arguments and
//! the entry point.

mod callouts;
mod compare;
mod images;
pub(crate) mod integrity;
mod json;
mod markdown;
pub(crate) mod snapshot;
mod text;

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The largest GitHub comment body, in bytes.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// GitHub pull-request comments (split into parts of at most --max-bytes).
    Markdown,
    /// For a terminal: coloured as --color decides.
    Text,
    /// For machines.
    Json,
    /// For machines: the JSON document as YAML.
    Yaml,
}

#[derive(clap::Args, Clone, Debug)]
#[command(after_help = "Examples:\n  cargo xtask review --base origin/main\n  \
    cargo xtask review --base HEAD~1 --env aws --output text\n  \
    cargo xtask review --base origin/main --output markdown --out-dir target/review   \
    # review-1.md, review-2.md ...\n\n\
    Exit status: 0 nothing differs, 1 something differs (or the head's manifests are not\n\
    what render writes for its definitions), 2 error.")]
pub struct ReviewArgs {
    /// The revision the change starts from (a branch, tag, commit, `HEAD~1`).
    #[arg(long)]
    pub base: String,
    /// The revision under review.
    #[arg(long, default_value = "HEAD")]
    pub head: String,
    /// Review only these environments (repeatable); default: every environment
    /// whose manifests differ between base and head.
    #[arg(long = "env")]
    pub envs: Vec<String>,
    /// `markdown`, `text` or `json`.
    #[arg(short, long, value_enum, default_value_t = Format::Markdown)]
    pub output: Format,
    /// Markdown: the largest part, in bytes (GitHub's comment limit by default).
    #[arg(long, default_value_t = GITHUB_COMMENT_LIMIT)]
    pub max_bytes: usize,
    /// Markdown: write the parts as DIR/review-1.md, review-2.md ... instead of
    /// printing them (for `gh pr comment --body-file`).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Also show what syncing head would do to the live cluster now (the plan of `diff`).
    #[arg(long)]
    pub live: bool,
    /// With --live: use this kube context instead of the one env.yaml names.
    #[arg(long, requires = "live")]
    pub context: Option<String>,
    /// With --live: kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long, requires = "live")]
    pub kubeconfig: Option<PathBuf>,
    /// Read from this git repository (tests, benches; default: the workspace).
    #[arg(long, hide = true)]
    pub root: Option<PathBuf>,
}

/// Review and print (or write) it: exit 0 when nothing differs, 1 when
/// something does (kubectl diff's convention; errors are 2 in main).
pub fn run(args: ReviewArgs) -> Result<ExitCode> {
    let review = review(&args)?;
    match (args.output, &args.out_dir) {
        (Format::Markdown, Some(dir)) => {
            for file in write_parts(&review, dir, args.max_bytes)? {
                outln!("{}", file.display())?;
            }
        }
        (Format::Markdown, None) => {
            let parts = markdown::parts(&review, args.max_bytes)?;
            out!("{}", parts.join("\n---\n\n"))?;
        }
        (Format::Text, _) => text::print(&review)?,
        (Format::Json, _) => {
            crate::cli::output::emit(crate::cli::Format::Json, &json::render(&review))?
        }
        (Format::Yaml, _) => {
            crate::cli::output::emit(crate::cli::Format::Yaml, &json::render(&review))?
        }
    }
    Ok(if review.differs() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A revision as asked for and as resolved.
#[derive(Debug, Clone, Serialize)]
pub struct RevisionInfo {
    /// As written on the command line (`origin/main`).
    pub spec: String,
    /// The full commit id.
    pub commit: String,
}

/// One environment: its object changes and whether head is as rendered.
#[derive(Debug)]
pub struct EnvReview {
    pub changes: compare::EnvChanges,
    pub integrity: integrity::Integrity,
}

/// Everything a review found.
#[derive(Debug)]
pub struct Review {
    pub base: RevisionInfo,
    pub head: RevisionInfo,
    pub environments: Vec<EnvReview>,
    pub callouts: Vec<callouts::Callout>,
    pub images: Vec<images::ImageMove>,
    /// With --live: what syncing head would do, per environment.
    pub live: Vec<crate::gitops::LivePlan>,
}

impl Review {
    /// Any object differs, or head is not what render writes.
    pub fn differs(&self) -> bool {
        self.environments
            .iter()
            .any(|e| !e.changes.changes.is_empty() || !e.integrity.is_clean())
    }
}

/// Build the review `args` ask for, without printing it.
pub fn review(args: &ReviewArgs) -> Result<Review> {
    let root = args.root.clone().unwrap_or_else(crate::workspace::root);
    let repo = snapshot::open(&root)?;
    let base = snapshot::resolve(&repo, &args.base)?;
    let head = snapshot::resolve(&repo, &args.head)?;
    let envs = snapshot::environments(&repo, &base, &head, &args.envs)?;
    let mut environments = Vec::new();
    for env in &envs {
        environments.push(review_environment(&repo, &base, &head, env)?);
    }
    let changes: Vec<&compare::EnvChanges> = environments.iter().map(|e| &e.changes).collect();
    let callouts = changes.iter().flat_map(|c| callouts::callouts(c)).collect();
    let images = images::moves(&repo, &changes);
    let live = if args.live {
        live_plans(args, &root, &head, &environments)?
    } else {
        Vec::new()
    };
    Ok(Review {
        base: RevisionInfo {
            spec: base.spec.clone(),
            commit: base.id(),
        },
        head: RevisionInfo {
            spec: head.spec.clone(),
            commit: head.id(),
        },
        environments,
        callouts,
        images,
        live,
    })
}

fn review_environment(
    repo: &git2::Repository,
    base: &snapshot::Revision,
    head: &snapshot::Revision,
    env: &str,
) -> Result<EnvReview> {
    let before = snapshot::manifests(repo, base, env)?;
    let after = snapshot::manifests(repo, head, env)?;
    let changes = compare::compare(
        env,
        compare::Side {
            spec: &base.spec,
            manifests: &before,
        },
        compare::Side {
            spec: &head.spec,
            manifests: &after,
        },
    )?;
    let integrity =
        integrity::check(repo, head, env, !after.files.is_empty()).with_context(|| {
            format!(
                "checking environment {env} at `{}` against render",
                head.spec
            )
        })?;
    Ok(EnvReview { changes, integrity })
}

/// The live plan of every environment that still has manifests at head.
fn live_plans(
    args: &ReviewArgs,
    root: &Path,
    head: &snapshot::Revision,
    environments: &[EnvReview],
) -> Result<Vec<crate::gitops::LivePlan>> {
    environments
        .iter()
        .filter(|e| !matches!(e.integrity, integrity::Integrity::NoManifests))
        .map(|e| {
            crate::gitops::preview(
                root,
                &e.changes.env,
                &head.id(),
                args.context.as_deref(),
                args.kubeconfig.as_deref(),
            )
        })
        .collect()
}

/// Write `review` as markdown parts of at most `max_bytes` into `dir`
/// (`review-1.md` ...); returns the files, in order. Parts of an earlier,
/// longer review are removed so that CI posts only these.
pub fn write_parts(review: &Review, dir: &Path, max_bytes: usize) -> Result<Vec<PathBuf>> {
    let parts = markdown::parts(review, max_bytes)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    remove_old_parts(dir)?;
    let mut files = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let file = dir.join(format!("review-{}.md", i + 1));
        std::fs::write(&file, part).with_context(|| format!("writing {}", file.display()))?;
        files.push(file);
    }
    Ok(files)
}

fn remove_old_parts(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let numbered = name
            .strip_prefix("review-")
            .and_then(|n| n.strip_suffix(".md"))
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if numbered {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}
