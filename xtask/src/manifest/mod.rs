//! Manifests: definitions + env.yaml -> environments/<env>/manifests/, and commit.
//!
//! - `definition`: deployment/ and infrastructure/ files, read strictly
//! - `images`: which image (by digest) each service runs
//! - `objects`, `policy`: typed Kubernetes objects
//! - `render`: all of it into memory; `files`: write or `--check`
//! - `yaml11`: quoting so kubectl's YAML 1.1 reads strings as strings
//! - `commit`: git2 commit of one environment folder; `secrets`: the cluster Secrets

pub mod commit;
pub mod definition;
pub mod files;
pub mod images;
pub mod objects;
mod overrides;
pub mod policy;
pub mod render;
pub mod secrets;
pub mod yaml11;

use crate::image_record::ImageRecord;
use anyhow::Result;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    after_help = "Example: cargo xtask render --env minikube\n         cargo xtask render --env aws --check"
)]
pub struct RenderArgs {
    /// Environment: a folder of environments/ with an env.yaml (minikube, aws).
    #[arg(long)]
    pub env: String,
    /// Write nothing; exit 1 naming the files that differ from what render would write.
    #[arg(long)]
    pub check: bool,
    /// Workspace root to read and write (tests use a temporary copy).
    #[arg(long, hide = true)]
    pub root: Option<PathBuf>,
    /// Image record to pin images from (default target/xtask/images.json).
    #[arg(long, hide = true)]
    pub images: Option<PathBuf>,
    /// `text`, or `json`: {"env", "clean", "changed", "missing", "extra", "unchanged", "notes"}.
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(clap::Args)]
#[command(after_help = "Example: cargo xtask commit --env aws")]
pub struct CommitArgs {
    /// Environment whose folder environments/<env>/ is committed.
    #[arg(long)]
    pub env: String,
    /// Repository root (tests use a temporary repository).
    #[arg(long, hide = true)]
    pub root: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(after_help = "Example: cargo xtask release --env minikube --registry 127.0.0.1:5000")]
pub struct ReleaseArgs {
    /// Environment to propose a deploy for.
    #[arg(long)]
    pub env: String,
    /// env.yaml's registry at another address (e.g. a port-forward): pushed
    /// there, recorded and named in the manifests as env.yaml's registry.
    #[arg(long)]
    pub registry: Option<String>,
}

#[derive(clap::Args)]
#[command(
    after_help = "Creates missing Secrets; with --rotate, replaces their values.\nValues: $POSTGRES_PASSWORD / $REDIS_PASSWORD when set, else generated.\nExample: cargo xtask secrets --env minikube\n         POSTGRES_PASSWORD=... cargo xtask secrets --env aws --rotate"
)]
pub struct SecretsArgs {
    /// Environment: its kube context and namespace come from env.yaml.
    #[arg(long)]
    pub env: String,
    /// Replace the values of Secrets that exist already.
    #[arg(long)]
    pub rotate: bool,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, as kubectl).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Use this kube context instead of env.yaml's `context`.
    #[arg(long)]
    pub context: Option<String>,
}

pub fn run_render(args: RenderArgs) -> Result<ExitCode> {
    let root = args.root.unwrap_or_else(crate::project::root);
    let record = images::load_record(&args.images.unwrap_or_else(ImageRecord::path))?;
    let (rendered, notes) = render::render_with_notes(&root, &args.env, &record)?;
    let dir = render::manifests_dir(&args.env);
    let comparison = if args.check {
        files::compare(&root, &args.env, &rendered)?
    } else {
        files::write(&root, &args.env, &rendered)?
    };
    let code = if args.check && !comparison.is_clean() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    };
    if args.output == Output::Json {
        let report = serde_json::json!({
            "env": args.env,
            "check": args.check,
            "clean": comparison.is_clean(),
            "changed": comparison.changed,
            "missing": comparison.missing,
            "extra": comparison.extra,
            "unchanged": comparison.unchanged,
            "notes": notes,
        });
        outln!("{report}")?;
        return Ok(code);
    }
    for note in &notes {
        outln!("note: {note}")?;
    }
    if !args.check {
        outln!(
            "{}: {} written, {} removed, {} unchanged",
            dir.display(),
            comparison.changed.len() + comparison.missing.len(),
            comparison.extra.len(),
            comparison.unchanged
        )?;
    } else if comparison.is_clean() {
        outln!(
            "{}: {} files, all as rendered",
            dir.display(),
            comparison.unchanged
        )?;
    } else {
        for (what, names) in [
            ("differs", &comparison.changed),
            ("missing", &comparison.missing),
            ("not rendered", &comparison.extra),
        ] {
            for name in names {
                outln!("{what}: {}", dir.join(name).display())?;
            }
        }
        eprintln!(
            "error: {} is not what `cargo xtask render --env {}` writes: re-render and commit",
            dir.display(),
            args.env
        );
    }
    Ok(code)
}

pub fn run_commit(args: CommitArgs) -> Result<ExitCode> {
    let root = args.root.unwrap_or_else(crate::project::root);
    match commit::commit_environment(&root, &args.env)? {
        Some(outcome) => outln!(
            "{} {}",
            &outcome.id[..12.min(outcome.id.len())],
            outcome.summary
        )?,
        None => outln!("environments/{}/: nothing to commit", args.env)?,
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_release(args: ReleaseArgs) -> Result<ExitCode> {
    let root = crate::project::root();
    let env = crate::environment::Environment::load(&args.env)?;
    let registry = args
        .registry
        .clone()
        .unwrap_or_else(|| env.registry.clone());
    push_images(&root, &env, &registry)?;
    render_environment(&root, &args.env)?;
    run_commit(CommitArgs {
        env: args.env,
        root: None,
    })
}

/// Release step 1: `build-all --push` of the workspace at `root` to `registry`.
pub fn push_images(
    root: &std::path::Path,
    env: &crate::environment::Environment,
    registry: &str,
) -> Result<()> {
    outln!(
        "release {}: build-all --push --registry {registry}",
        env.name
    )?;
    // `--registry` is the environment's registry reached at another address
    // (a port-forward): the push is recorded under the environment's name for
    // it too, and render for this environment reads only that name.
    let record_as = (registry != env.registry).then_some(env.registry.as_str());
    let code = crate::image::run_build_all(build_all_args(root, registry, record_as)?)?;
    if code != ExitCode::SUCCESS {
        anyhow::bail!("build-all --push failed: nothing rendered or committed");
    }
    if let Some(known) = record_as {
        outln!("note: pushed to {registry}, recorded as {known}: the manifests reference {known}")?;
    }
    Ok(())
}

/// Release step 2: render the environment's manifests from the image record.
pub fn render_environment(root: &std::path::Path, env: &str) -> Result<()> {
    run_render(RenderArgs {
        env: env.to_string(),
        check: false,
        root: Some(root.to_path_buf()),
        images: None,
        output: Output::Text,
    })?;
    Ok(())
}

/// H4's `build-all` arguments, built through clap so that release follows
/// whatever flags build-all has (`--push --registry`).
fn build_all_args(
    root: &std::path::Path,
    registry: &str,
    record_as: Option<&str>,
) -> Result<crate::image::BuildAllArgs> {
    #[derive(clap::Parser)]
    struct BuildAll {
        #[command(flatten)]
        args: crate::image::BuildAllArgs,
    }
    let root = root.to_string_lossy();
    let mut argv = vec![
        "build-all",
        "--push",
        "--registry",
        registry,
        "--workspace",
        &root,
    ];
    if let Some(name) = record_as {
        argv.extend(["--record-as", name]);
    }
    let parsed = <BuildAll as clap::Parser>::try_parse_from(argv)
        .map_err(|e| anyhow::anyhow!("build-all arguments: {e}"))?;
    Ok(parsed.args)
}

pub fn run_secrets(args: SecretsArgs) -> Result<ExitCode> {
    secrets::run(args)
}
