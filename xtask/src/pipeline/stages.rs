//! The stages. Each reads what it needs from the repository (HEAD is the
//! deployed commit once `release` ran), so `--from publish` works alone.

use super::PipelineArgs;
use super::runner::Switched;
use crate::environment::Environment;
use crate::manifest;
use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    Check,
    Test,
    Build,
    Release,
    Publish,
    Deploy,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Check,
        Stage::Test,
        Stage::Build,
        Stage::Release,
        Stage::Publish,
        Stage::Deploy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Check => "check",
            Stage::Test => "test",
            Stage::Build => "build",
            Stage::Release => "release",
            Stage::Publish => "publish",
            Stage::Deploy => "deploy",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Stage::Check => "clean tree, cargo fmt --check, clippy -D warnings, render --check",
            Stage::Test => "cargo xtask test",
            Stage::Build => "build-all --push",
            Stage::Release => "render + commit on the deploy branch",
            Stage::Publish => "git push of the deploy branch",
            Stage::Deploy => "sync of the deployed commit",
        }
    }
}

/// What every stage knows: the workspace, the environment, the options.
pub struct Context<'a> {
    pub root: PathBuf,
    pub env: Environment,
    pub args: &'a PipelineArgs,
}

impl Context<'_> {
    pub fn registry(&self) -> String {
        self.args
            .registry
            .clone()
            .unwrap_or_else(|| self.env.registry.clone())
    }
}

/// Runs one stage; `Ok(detail)` is its one-line result.
pub fn run(stage: Stage, cx: &Context) -> Result<String> {
    match stage {
        Stage::Check => check(cx),
        Stage::Test => test(cx),
        Stage::Build => build(cx),
        Stage::Release => release(cx),
        Stage::Publish => publish(cx),
        Stage::Deploy => deploy(cx),
    }
}

fn check(cx: &Context) -> Result<String> {
    clean_tree(&cx.root)?;
    // The cheap checks first: a stale manifest fails before clippy compiles.
    // The environment being deployed first: its failure is the one to report.
    let mut envs = environments(&cx.root)?;
    envs.sort_by_key(|env| env != &cx.env.name);
    for env in &envs {
        progress(&format!("render --env {env} --check"))?;
        let code = manifest::run_render(manifest::RenderArgs {
            env: env.clone(),
            check: true,
            root: Some(cx.root.clone()),
            images: None,
            output: crate::cli::Format::Text,
        })?;
        if code != ExitCode::SUCCESS {
            bail!("render --env {env} --check: the committed manifests are not what render writes");
        }
        if crate::cluster::check_committed(&cx.root, env)? == Some(false) {
            bail!(
                "cluster render --env {env} --check: environments/{env}/cluster/ is not what cluster render writes"
            );
        }
    }
    progress("cargo fmt --check")?;
    external(&cx.root, &["fmt", "--all", "--check"])?;
    progress("cargo clippy --workspace --all-targets -- -D warnings")?;
    external(
        &cx.root,
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    Ok(format!(
        "tree clean, {} environment(s) as rendered, fmt, clippy",
        envs.len()
    ))
}

fn test(cx: &Context) -> Result<String> {
    progress(&format!(
        "cargo xtask test -- {}",
        cx.args.test_args.join(" ")
    ))?;
    let code = crate::cmd::test::run(crate::cmd::test::TestArgs {
        cargo_args: cx.args.test_args.clone(),
    })?;
    if code != ExitCode::SUCCESS {
        bail!("cargo xtask test failed (its output is above)");
    }
    Ok("all tests passed".to_string())
}

fn build(cx: &Context) -> Result<String> {
    let registry = cx.registry();
    crate::release::push_images(&cx.root, &cx.env, &registry)?;
    Ok(format!("images pushed to {registry}"))
}

fn release(cx: &Context) -> Result<String> {
    let git = super::runner::Git::open(&cx.root)?;
    let branch = if cx.args.in_place || git.branch()?.starts_with(&deploy_prefix(&cx.env.name)) {
        None
    } else {
        Some(format!(
            "{}{}",
            deploy_prefix(&cx.env.name),
            git.short_head()?
        ))
    };
    let env_dir = format!("environments/{}/", cx.env.name);
    let switched = match &branch {
        Some(branch) => {
            progress(&format!("switch to {branch}"))?;
            Some((
                branch.as_str(),
                git.switch_to_release_branch(branch, &env_dir)?,
            ))
        }
        None => None,
    };
    let base = git.head_id()?;
    // Rendered only once on the branch: a refused switch leaves the work tree alone.
    let outcome = render_and_commit(cx, &env_dir);
    let switch_back = || match switched {
        Some((branch, how)) => git.switch_back(branch, how),
        None => Ok(()),
    };
    match outcome {
        Ok(Some(outcome)) => {
            let parts = review(cx, &base, &outcome.id)?;
            Ok(format!(
                "{} {} on {}; review: {parts}",
                crate::cli::abbrev(&outcome.id, crate::cli::REVIEW_COMMIT),
                outcome.summary,
                git.branch()?
            ))
        }
        // A re-run: the branch already holds this release; publish pushes it again.
        Ok(None) if matches!(switched, Some((_, Switched::Existing))) => Ok(format!(
            "already released: {} on {}",
            crate::cli::abbrev(&base, crate::cli::REVIEW_COMMIT),
            git.branch()?
        )),
        Ok(None) => {
            // Nothing to deploy: no branch of its own, no commit.
            switch_back()?;
            Ok(format!(
                "nothing to commit: {} is what HEAD deploys",
                manifest::render::manifests_dir(&cx.env.name).display()
            ))
        }
        Err(e) => {
            switch_back()?;
            Err(e)
        }
    }
}

fn render_and_commit(cx: &Context, env_dir: &str) -> Result<Option<manifest::commit::Outcome>> {
    progress(&format!("render --env {}", cx.env.name))?;
    crate::release::render_environment(&cx.root, &cx.env.name)?;
    progress(&format!("commit {env_dir}"))?;
    manifest::commit::commit_environment(&cx.root, &cx.env.name)
}

/// `review` of the deploy commit against the commit it was made on, as the
/// markdown a reviewer reads, into target/xtask/pipeline/review/.
fn review(cx: &Context, base: &str, head: &str) -> Result<String> {
    let dir = review_dir(&cx.root);
    if dir.exists() {
        // Parts of an earlier, longer review would read as part of this one.
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    progress(&format!(
        "review --base {} --head {}",
        crate::cli::abbrev(base, crate::cli::REVIEW_COMMIT),
        crate::cli::abbrev(head, crate::cli::REVIEW_COMMIT)
    ))?;
    let root = cx.root.to_string_lossy();
    let out_dir = dir.to_string_lossy();
    let argv = [
        "review",
        "--base",
        base,
        "--head",
        head,
        "--env",
        cx.env.name.as_str(),
        "--output",
        "markdown",
        "--out-dir",
        &out_dir,
        "--root",
        &root,
    ];
    let code = crate::review::run(parse_args::<crate::review::ReviewArgs>(&argv)?)?;
    // 1 only says the deploy changes something, which a deploy commit does.
    if code != ExitCode::SUCCESS && code != ExitCode::from(1) {
        bail!(
            "review of {} failed (its output is above)",
            crate::cli::abbrev(head, crate::cli::REVIEW_COMMIT)
        );
    }
    Ok(dir.display().to_string())
}

/// Where the release stage writes the review (review-1.md, review-2.md ...).
pub fn review_dir(root: &Path) -> PathBuf {
    root.join("target/xtask/pipeline/review")
}

fn publish(cx: &Context) -> Result<String> {
    let git = super::runner::Git::open(&cx.root)?;
    let branch = git.branch()?;
    let remote = match &cx.args.remote {
        Some(remote) => remote.clone(),
        None => git
            .upstream_remote()?
            .unwrap_or_else(|| "origin".to_string()),
    };
    progress(&format!("git push {remote} {branch}"))?;
    let status = Command::new("git")
        .arg("-C")
        .arg(&cx.root)
        .args(["push", "--quiet", &remote])
        .arg(format!("HEAD:refs/heads/{branch}"))
        .status()
        .context("running git push")?;
    if !status.success() {
        bail!("git push {remote} {branch} failed (git's message is above)");
    }
    let url = git.remote_url(&remote)?;
    let opens = review_link(&url, &branch);
    outln!("reviewer opens: {opens}")?;
    let review = review_dir(&cx.root).join("review-1.md");
    if review.is_file() {
        outln!("  with the review of the deploy: {}", review.display())?;
    }
    Ok(format!("{branch} pushed to {remote}; review at {opens}"))
}

fn deploy(cx: &Context) -> Result<String> {
    let root = cx.root.to_string_lossy();
    let argv = ["sync", "--env", cx.env.name.as_str(), "--root", &root];
    let code = crate::gitops::run_sync(parse_args::<crate::gitops::SyncArgs>(&argv)?)?;
    if code != ExitCode::SUCCESS {
        bail!("sync --env {} failed (its report is above)", cx.env.name);
    }
    let git = super::runner::Git::open(&cx.root)?;
    Ok(format!("cluster runs {}", git.short_head()?))
}

/// `deploy/<env>/`: the branches the pipeline proposes deploys on.
pub fn deploy_prefix(env: &str) -> String {
    format!("deploy/{env}/")
}

/// A GitHub remote: the page that opens a pull request; else the remote and branch.
fn review_link(url: &str, branch: &str) -> String {
    let github = url
        .strip_prefix("git@github.com:")
        .or_else(|| url.strip_prefix("https://github.com/"))
        .map(|path| path.trim_end_matches(".git"));
    match github {
        Some(path) => format!("https://github.com/{path}/pull/new/{branch}"),
        None => format!("{url} branch {branch}"),
    }
}

/// The folders of environments/ that hold an env.yaml.
fn environments(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("environments");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.path().join("env.yaml").is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn clean_tree(root: &Path) -> Result<()> {
    progress("clean tree")?;
    let dirty = super::runner::Git::open(root)?.dirty_paths()?;
    if !dirty.is_empty() {
        bail!(
            "the work tree is not clean ({}): commit or stash first, CI builds what is committed",
            dirty.join(", ")
        );
    }
    Ok(())
}

/// `cargo <args>` in the workspace: fmt, clippy are cargo's own.
fn external(root: &Path, args: &[&str]) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(root)
        .args(args)
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed (its output is above)", args.join(" "));
    }
    Ok(())
}

/// Another command's arguments, built through its clap definition so the
/// pipeline follows whatever flags that command has.
pub fn parse_args<T: clap::Args>(argv: &[&str]) -> Result<T> {
    #[derive(clap::Parser)]
    struct Wrapper<T: clap::Args> {
        #[command(flatten)]
        args: T,
    }
    let parsed = <Wrapper<T> as clap::Parser>::try_parse_from(argv)
        .map_err(|e| anyhow::anyhow!("{} arguments: {e}", argv[0]))?;
    Ok(parsed.args)
}

fn progress(what: &str) -> std::io::Result<()> {
    outln!("  -> {what}")
}
