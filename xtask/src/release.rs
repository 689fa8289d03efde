//! `cargo xtask release --env <env>`: build-all --push, render, commit, the
//! three steps of proposing a deploy (the pipeline runs the same steps as
//! separate stages).

use crate::environment::Environment;
use crate::image::{BuildAllArgs, CommonArgs};
use crate::manifest::{self, CommitArgs, RenderArgs};
use anyhow::{Result, bail};
use std::path::Path;
use std::process::ExitCode;

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

pub fn run(args: ReleaseArgs) -> Result<ExitCode> {
    let root = crate::workspace::root();
    let env = Environment::load(&args.env)?;
    let registry = args.registry.unwrap_or_else(|| env.registry.clone());
    push_images(&root, &env, &registry)?;
    render_environment(&root, &args.env)?;
    manifest::run_commit(CommitArgs {
        env: args.env,
        root: None,
    })
}

/// Release step 1: `build-all --push` of the workspace at `root` to `registry`.
pub fn push_images(root: &Path, env: &Environment, registry: &str) -> Result<()> {
    outln!(
        "release {}: build-all --push --registry {registry}",
        env.name
    )?;
    // `--registry` is the environment's registry reached at another address
    // (a port-forward): the push is recorded under the environment's name for
    // it too, and render for this environment reads only that name.
    let record_as = (registry != env.registry).then(|| env.registry.clone());
    let args = BuildAllArgs {
        common: CommonArgs {
            push: true,
            registry: Some(registry.to_string()),
            env: None,
            output: crate::cli::Format::Text,
            root: Some(root.to_path_buf()),
            image_prefix: String::new(),
            record_as: record_as.clone(),
        },
    };
    if crate::image::run_build_all(args)? != ExitCode::SUCCESS {
        bail!("build-all --push failed: nothing rendered or committed");
    }
    if let Some(known) = record_as {
        outln!("note: pushed to {registry}, recorded as {known}: the manifests reference {known}")?;
    }
    Ok(())
}

/// Release step 2: render the environment's manifests from the image record.
pub fn render_environment(root: &Path, env: &str) -> Result<()> {
    manifest::run_render(RenderArgs {
        env: env.to_string(),
        check: false,
        root: Some(root.to_path_buf()),
        images: None,
        output: crate::cli::Format::Text,
    })?;
    Ok(())
}
