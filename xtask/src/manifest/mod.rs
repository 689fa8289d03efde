//! Manifests: definitions + env.yaml -> environments/<env>/manifests/, and commit.
//!
//! - `definition`: deployment/ and infrastructure/ files, read strictly
//! - `images`: which image (by digest) each service runs
//! - `objects`, `policy`: typed Kubernetes objects
//! - `render`: all of it into memory; `files`: write or `--check`
//! - `yaml11`: quoting so kubectl's YAML 1.1 reads strings as strings
//! - `commit`: git2 commit of one environment folder

pub mod commit;
pub mod definition;
pub mod files;
pub mod images;
pub mod objects;
mod overrides;
pub mod policy;
pub mod render;
pub mod yaml11;

use crate::image::record::ImageRecord;
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
    pub output: crate::cli::Format,
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

pub fn run_render(args: RenderArgs) -> Result<ExitCode> {
    let root = args.root.unwrap_or_else(crate::workspace::root);
    let record = images::load_record(&args.images.unwrap_or_else(ImageRecord::path))?;
    let (rendered, notes) = render::render_with_notes(&root, &args.env, &record)?;
    let dir = render::manifests_dir(&args.env);
    let comparison = files::check_or_write(&root.join(&dir), &rendered, args.check)?;
    let code = comparison.exit_code(args.check);
    if !args.output.is_text() {
        let mut report = comparison.document(&args.env, args.check);
        report["notes"] = serde_json::json!(notes);
        crate::cli::output::emit(args.output, &report)?;
        return Ok(code);
    }
    for note in &notes {
        outln!("note: {note}")?;
    }
    files::report(
        &dir,
        args.check,
        &comparison,
        &format!("cargo xtask render --env {}", args.env),
    )?;
    Ok(code)
}

pub fn run_commit(args: CommitArgs) -> Result<ExitCode> {
    let root = args.root.unwrap_or_else(crate::workspace::root);
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
