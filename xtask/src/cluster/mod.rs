//! `cargo xtask cluster`: the environment's Kubernetes cluster as code, for kops.
//!
//! - `spec`: environments/<env>/cluster.yaml, read strictly, kops's derivations
//! - `cidr`: IPv4 blocks for the network rules
//! - `validate`: the rules every command checks before anything else
//! - `render`: the kops objects, written to environments/<env>/cluster/
//! - `commands`: the `aws`/`kops` lines of create, update, validate, delete
//! - `exec`: runs those lines (xshell) or prints them (`--dry-run`)

mod cidr;
mod commands;
mod exec;
pub mod render;
pub mod spec;
pub mod validate;

use crate::environment::Environment;
use crate::manifest::files::{self, Comparison};
use anyhow::{Result, bail};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cargo xtask cluster render --env aws
  cargo xtask cluster render --env aws --check
  cargo xtask cluster create --env aws --dry-run
  cargo xtask cluster create --env aws
  cargo xtask cluster delete --env aws --yes")]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub command: ClusterCommand,
}

#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Write environments/<env>/cluster/ (the kops objects) from cluster.yaml.
    Render(RenderArgs),
    /// Create the state bucket, the ECR repositories and the cluster if missing; wait until it is ready.
    Create(RunArgs),
    /// Store the rendered spec in kops, apply it, roll the instances, wait.
    Update(RunArgs),
    /// Wait until the cluster is ready (`kops validate cluster`) and check the kube context.
    Validate(RunArgs),
    /// Delete the cluster and everything kops made for it (asks first, or --yes).
    Delete(DeleteArgs),
    /// List the rules cluster.yaml is checked against.
    Rules,
}

#[derive(clap::Args)]
pub struct Target {
    /// Environment: a folder of environments/ with an env.yaml and a cluster.yaml (aws).
    #[arg(long)]
    pub env: String,
    /// Workspace root to read and write (tests use a temporary copy).
    #[arg(long, hide = true)]
    pub root: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub target: Target,
    /// Write nothing; exit 1 naming the files that differ from what render would write.
    #[arg(long)]
    pub check: bool,
    /// `text`, or `json`/`yaml`: {"env", "check", "clean", "changed", "missing", "extra", "unchanged"}.
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: crate::cli::Format,
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub target: Target,
    /// Print every command it would run, in order, and run none.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Do not ask: delete (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

impl ClusterArgs {
    /// The `-o` of `cluster render`, for the error document of a failure.
    pub fn output_format(&self) -> crate::cli::Format {
        match &self.command {
            ClusterCommand::Render(args) => args.output,
            _ => crate::cli::Format::Text,
        }
    }
}

pub fn run(args: ClusterArgs) -> Result<ExitCode> {
    match args.command {
        ClusterCommand::Render(args) => run_render(args),
        ClusterCommand::Create(args) => run_plan(&args, |t| t.create(), false),
        ClusterCommand::Update(args) => run_plan(&args, |t| t.update(), false),
        ClusterCommand::Validate(args) => run_plan(&args, |t| t.validate(), false),
        ClusterCommand::Delete(args) => run_plan(&args.run, |t| t.delete(), !args.yes),
        ClusterCommand::Rules => {
            let rows: Vec<Vec<String>> = validate::RULES
                .iter()
                .map(|rule| vec![rule.name.to_string(), rule.about.to_string()])
                .collect();
            out!("{}", crate::cli::table::table(&rows))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The environment and its cluster spec, checked against every rule.
struct Loaded {
    root: PathBuf,
    env: Environment,
    spec: spec::ClusterFile,
    rendered: render::Files,
}

fn load(target: &Target) -> Result<Loaded> {
    let root = target.root.clone().unwrap_or_else(crate::workspace::root);
    let env = Environment::load_in(&root, &target.env)?;
    let spec = spec::ClusterFile::load(&root, &target.env)?;
    let violations = validate::check(&validate::Inputs {
        spec: &spec,
        spec_file: spec::file_of(&target.env),
        env: &env,
    });
    if let Some((last, others)) = violations.split_last() {
        // One `error:` line per violation; main prints the last.
        for violation in others {
            eprintln!("error: {violation}");
        }
        bail!("{last}");
    }
    let rendered = render::render(&spec, &env)?;
    Ok(Loaded {
        root,
        env,
        spec,
        rendered,
    })
}

/// For the pipeline's check stage: whether `root`'s environment `env` has
/// a cluster spec (None when it has none), and if so whether it passes the
/// rules and its rendered files are committed as render writes them.
pub fn check_committed(root: &Path, env: &str) -> Result<Option<bool>> {
    if !root.join(spec::file_of(env)).exists() {
        return Ok(None);
    }
    let loaded = load(&Target {
        env: env.to_string(),
        root: Some(root.to_path_buf()),
    })?;
    let comparison = files::compare_dir(&root.join(render::cluster_dir(env)), &loaded.rendered)?;
    Ok(Some(comparison.is_clean()))
}

fn run_render(args: RenderArgs) -> Result<ExitCode> {
    let loaded = load(&args.target)?;
    let dir = render::cluster_dir(&args.target.env);
    let path = loaded.root.join(&dir);
    let comparison = files::check_or_write(&path, &loaded.rendered, args.check)?;
    let code = comparison.exit_code(args.check);
    if !args.output.is_text() {
        let report = comparison.document(&args.target.env, args.check);
        crate::cli::output::emit(args.output, &report)?;
        return Ok(code);
    }
    report_render(&dir, &args, &comparison)?;
    Ok(code)
}

fn report_render(dir: &Path, args: &RenderArgs, comparison: &Comparison) -> Result<()> {
    let command = format!("cargo xtask cluster render --env {}", args.target.env);
    crate::manifest::files::report(dir, args.check, comparison, &command)
}

/// Loads, insists the committed files are what render writes (kops gets
/// exactly what was reviewed), and runs or prints the plan. A dry run
/// changes nothing, so it is never asked to confirm.
fn run_plan(
    args: &RunArgs,
    plan: impl Fn(&commands::Target) -> Vec<commands::Step>,
    confirm: bool,
) -> Result<ExitCode> {
    let loaded = load(&args.target)?;
    let steps = plan(&plan_target(&loaded, &args.target.env)?);
    if args.dry_run {
        exec::print(&steps)?;
        return Ok(ExitCode::SUCCESS);
    }
    if confirm {
        confirm_delete(&loaded.spec.name)?;
    }
    exec::run(&loaded.root, &loaded.env, &steps)?;
    Ok(ExitCode::SUCCESS)
}

fn plan_target<'a>(loaded: &'a Loaded, env: &str) -> Result<commands::Target<'a>> {
    let dir = render::cluster_dir(env);
    let comparison = files::compare_dir(&loaded.root.join(&dir), &loaded.rendered)?;
    if !comparison.is_clean() {
        let stale: Vec<&String> = comparison
            .changed
            .iter()
            .chain(&comparison.missing)
            .chain(&comparison.extra)
            .collect();
        bail!(
            "{} is not what `cargo xtask cluster render --env {env}` writes ({}): render and commit it first; nothing was run",
            dir.display(),
            stale
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(commands::Target {
        spec: &loaded.spec,
        env: &loaded.env,
        files: loaded.rendered.keys().map(|name| dir.join(name)).collect(),
    })
}

/// Asks on a terminal for the cluster's name; never waits on a pipe.
fn confirm_delete(name: &str) -> Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "`cluster delete` deletes cluster `{name}` and everything in it: pass --yes to confirm (stdin is not a terminal, so it cannot ask); nothing was deleted"
        );
    }
    eprint!(
        "Delete cluster `{name}`, its instances, volumes and load balancers? Type its name to confirm: "
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != name {
        bail!("not confirmed; nothing was deleted");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root with this workspace's aws env.yaml and cluster.yaml, and a
    /// minikube env.yaml without a cluster spec.
    fn root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let workspace = crate::workspace::root();
        for (env, files) in [
            ("aws", &["env.yaml", "cluster.yaml"][..]),
            ("minikube", &["env.yaml"][..]),
        ] {
            let to = dir.path().join("environments").join(env);
            std::fs::create_dir_all(&to).unwrap();
            for file in files {
                let from = workspace.join("environments").join(env).join(file);
                std::fs::copy(from, to.join(file)).unwrap();
            }
        }
        dir
    }

    #[test]
    fn the_pipeline_check_sees_missing_stale_and_current_files() {
        let dir = root();
        assert_eq!(check_committed(dir.path(), "minikube").unwrap(), None);
        assert_eq!(check_committed(dir.path(), "aws").unwrap(), Some(false));
        let loaded = load(&Target {
            env: "aws".to_string(),
            root: Some(dir.path().to_path_buf()),
        })
        .unwrap();
        let cluster = dir.path().join(render::cluster_dir("aws"));
        files::write_dir(&cluster, &loaded.rendered).unwrap();
        assert_eq!(check_committed(dir.path(), "aws").unwrap(), Some(true));
        let spec = dir.path().join(spec::file_of("aws"));
        let text = std::fs::read_to_string(&spec).unwrap();
        std::fs::write(&spec, text.replace("t3.medium", "t3.large")).unwrap();
        assert_eq!(check_committed(dir.path(), "aws").unwrap(), Some(false));
    }
}
