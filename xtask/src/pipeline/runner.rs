//! Picks the stages, runs them in order with a header and timing each, and
//! stops at the first failure: exit 2 naming it, nothing after it runs.

use super::PipelineArgs;
use super::stages::{self, Context, Stage};
use super::summary::{self, Outcome, StageResult};
use crate::environment::Environment;
use anyhow::{Context as _, Result, bail};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

pub fn run(args: PipelineArgs) -> Result<ExitCode> {
    let root = match &args.root {
        Some(dir) => dir
            .canonicalize()
            .with_context(|| format!("workspace {}", dir.display()))?,
        None => crate::workspace::root(),
    };
    let env = Environment::load_in(&root, &args.env)?;
    let selected = selection(&args)?;
    let cx = Context {
        root,
        env,
        args: &args,
    };
    let results = run_stages(&selected, &cx)?;
    summary::report(&cx.env.name, &results, args.output, args.junit.as_deref())?;
    Ok(
        match results.iter().find(|r| r.outcome == Outcome::Failed) {
            Some(failed) => {
                eprintln!(
                    "error: pipeline stage `{}` failed: {}",
                    failed.stage.name(),
                    failed.detail
                );
                ExitCode::from(2)
            }
            None => ExitCode::SUCCESS,
        },
    )
}

/// `--stages` as given (in pipeline order), `--from` and what follows, or all;
/// `deploy` only with `--deploy`.
fn selection(args: &PipelineArgs) -> Result<Vec<Stage>> {
    let mut stages: Vec<Stage> = if !args.stages.is_empty() {
        let mut picked = args.stages.clone();
        picked.sort();
        picked.dedup();
        picked
    } else {
        let from = args.from.unwrap_or(Stage::Check);
        Stage::ALL.into_iter().filter(|s| *s >= from).collect()
    };
    if !args.deploy {
        if args.stages.contains(&Stage::Deploy) {
            bail!(
                "--stages names deploy: add --deploy (GitOps deploys after the deploy branch is merged)"
            );
        }
        stages.retain(|s| *s != Stage::Deploy);
    }
    if stages.is_empty() {
        bail!("no stage to run: --from deploy needs --deploy");
    }
    Ok(stages)
}

fn run_stages(selected: &[Stage], cx: &Context) -> std::io::Result<Vec<StageResult>> {
    let mut results = Vec::new();
    for (n, stage) in selected.iter().enumerate() {
        outln!(
            "==> [{}/{}] {}: {}",
            n + 1,
            selected.len(),
            stage.name(),
            stage.describe()
        )?;
        let started = Instant::now();
        let outcome = stages::run(*stage, cx);
        let seconds = started.elapsed().as_secs_f64();
        let (outcome, detail) = match outcome {
            Ok(detail) => (Outcome::Passed, detail),
            Err(e) => (Outcome::Failed, crate::cli::one_line(&e)),
        };
        outln!(
            "<== {} {} in {seconds:.1}s: {detail}",
            stage.name(),
            outcome.word()
        )?;
        let failed = outcome == Outcome::Failed;
        results.push(StageResult {
            stage: *stage,
            outcome,
            seconds,
            detail,
        });
        if failed {
            // Nothing after a failed stage runs; the summary lists them as skipped.
            for rest in &selected[n + 1..] {
                results.push(StageResult {
                    stage: *rest,
                    outcome: Outcome::Skipped,
                    seconds: 0.0,
                    detail: format!("not run: {} failed", stage.name()),
                });
            }
            break;
        }
    }
    Ok(results)
}

/// How `release` came to be on its deploy branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switched {
    Created,
    /// The branch of an earlier run of the same release.
    Existing,
}

/// The few git facts and moves the stages need (git2, no shell).
pub struct Git {
    repo: git2::Repository,
}

impl Git {
    pub fn open(root: &Path) -> Result<Git> {
        let repo = git2::Repository::open(root)
            .with_context(|| format!("opening the git repository at {}", root.display()))?;
        Ok(Git { repo })
    }

    /// The current branch's short name; a detached HEAD is refused.
    pub fn branch(&self) -> Result<String> {
        let head = self.repo.head().context("reading HEAD")?;
        if !head.is_branch() {
            bail!("HEAD is detached: check out a branch (CI: `git checkout -B <branch>`)");
        }
        Ok(head.shorthand().unwrap_or_default().to_string())
    }

    pub fn head_id(&self) -> Result<String> {
        Ok(self.repo.head()?.peel_to_commit()?.id().to_string())
    }

    pub fn short_head(&self) -> Result<String> {
        let commit = self.repo.head()?.peel_to_commit()?;
        Ok(crate::cli::abbrev(&commit.id().to_string(), crate::cli::REVIEW_COMMIT).to_string())
    }

    /// Makes `name` the current branch without a checkout: created at HEAD, or, when
    /// it exists (a re-run of the same release), taken as it is if it holds only a
    /// release of HEAD (HEAD is its ancestor and it differs from HEAD only under
    /// `env_dir`), since the rendered work tree then matches it.
    pub fn switch_to_release_branch(&self, name: &str, env_dir: &str) -> Result<Switched> {
        let original = self.branch()?;
        let head = self.repo.head()?.peel_to_commit()?;
        let switched = match self.repo.find_branch(name, git2::BranchType::Local) {
            Ok(existing) => {
                let tip = existing.get().peel_to_commit()?;
                self.ensure_release_of(&head, &tip, name, env_dir)?;
                Switched::Existing
            }
            Err(_) => {
                self.repo
                    .branch(name, &head, false)
                    .with_context(|| format!("creating branch {name}"))?;
                Switched::Created
            }
        };
        self.repo
            .config()?
            .set_str("xtask.pipeline.base", &original)?;
        self.repo.set_head(&format!("refs/heads/{name}"))?;
        Ok(switched)
    }

    fn ensure_release_of(
        &self,
        head: &git2::Commit,
        tip: &git2::Commit,
        name: &str,
        env_dir: &str,
    ) -> Result<()> {
        let refuse = |why: &str| {
            anyhow::anyhow!(
                "branch {name} exists and {why}: delete it (`git branch -D {name}`) or pass --in-place"
            )
        };
        if tip.id() != head.id() && !self.repo.graph_descendant_of(tip.id(), head.id())? {
            return Err(refuse("does not start at HEAD"));
        }
        let diff = self
            .repo
            .diff_tree_to_tree(Some(&head.tree()?), Some(&tip.tree()?), None)?;
        let outside = diff.deltas().find_map(|d| {
            let path = d.new_file().path().or(d.old_file().path())?;
            (!path.starts_with(env_dir)).then(|| path.display().to_string())
        });
        match outside {
            Some(path) => Err(refuse(&format!("changes {path}, not only {env_dir}"))),
            None => Ok(()),
        }
    }

    /// Undoes [`Git::switch_to_release_branch`] when there was nothing to commit:
    /// back to the original branch, and a branch created for it deleted.
    pub fn switch_back(&self, name: &str, switched: Switched) -> Result<()> {
        let base = self.repo.config()?.get_string("xtask.pipeline.base")?;
        self.repo.set_head(&format!("refs/heads/{base}"))?;
        if switched == Switched::Created {
            self.repo
                .find_branch(name, git2::BranchType::Local)?
                .delete()?;
        }
        Ok(())
    }

    /// The remote of the current branch's upstream, if it has one.
    pub fn upstream_remote(&self) -> Result<Option<String>> {
        let branch = self.branch()?;
        let key = format!("branch.{branch}.remote");
        Ok(self.repo.config()?.get_string(&key).ok())
    }

    pub fn remote_url(&self, remote: &str) -> Result<String> {
        let found = self
            .repo
            .find_remote(remote)
            .with_context(|| format!("no git remote `{remote}` (--remote names one)"))?;
        Ok(found.url().unwrap_or(remote).to_string())
    }

    /// Changed, staged and untracked (not ignored) paths.
    pub fn dirty_paths(&self) -> Result<Vec<String>> {
        let mut options = git2::StatusOptions::new();
        options.include_untracked(true).include_ignored(false);
        let statuses = self.repo.statuses(Some(&mut options))?;
        Ok(statuses
            .iter()
            .filter_map(|s| s.path().ok().map(String::from))
            .collect())
    }
}
