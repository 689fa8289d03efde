//! Images: one compile, one FROM-scratch image per service, tag, push.
//!
//! Data flow: content tag and commit stamp per service (inputs.rs,
//! git_info.rs, history.rs) -> skip services whose tag
//! the engine already has -> one `cargo build --release` for the rest
//! (compile.rs) -> layers + config assembled here (rootfs.rs, archive.rs) ->
//! `POST /images/load` (engine.rs) -> optional push (engine.rs, credentials.rs)
//! -> `target/xtask/images.json` (crate::image::record) and a table (output.rs).

mod archive;
mod compile;
mod credentials;
mod engine;
pub(crate) mod git_info;
pub mod history;
mod inputs;
mod output;
pub mod record;
mod registry_cmd;
mod rootfs;

pub use registry_cmd::{RegistryArgs, run_registry};

use crate::workspace::{self, Kind, Service};
use anyhow::{Context, Result, bail};
use bollard::auth::DockerCredentials;
use bollard::models::ImageInspect;
use engine::Engine;
use output::{Outcome, Row};
use record::{ImageEntry, ImageRecord};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    after_help = "Example: cargo xtask build adderservice webapp --push --registry 127.0.0.1:5000"
)]
pub struct BuildArgs {
    /// The services to build (adderservice, auditservice, eventservice, webapp, report).
    #[arg(required = true)]
    pub services: Vec<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args)]
#[command(after_help = "Example: cargo xtask build-all --push --env minikube")]
pub struct BuildAllArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(clap::Args, Clone)]
pub struct CommonArgs {
    /// Push the images after building them.
    #[arg(long)]
    pub push: bool,
    /// Registry to push to, `host:port` (e.g. 127.0.0.1:5000), or Docker Hub as
    /// `docker.io/<namespace>` (credentials from `docker login`).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "env")]
    pub registry: Option<String>,
    /// Push to the registry of environments/<ENV>/env.yaml.
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// `text` (a table) or `json` (the rows, for machines).
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: crate::cli::Format,
    /// Workspace to build (default: this one). For tests on a copy.
    #[arg(long, hide = true)]
    pub root: Option<PathBuf>,
    /// Prefix for image names, e.g. `test123/`. For tests sharing an engine.
    #[arg(long, hide = true, default_value = "")]
    pub image_prefix: String,
    /// Also record the push under this registry: the name the environment
    /// knows the registry by when `release --registry` reached it at another
    /// address.
    #[arg(long, hide = true, value_name = "REGISTRY", requires = "push")]
    pub record_as: Option<String>,
}

pub fn run_build(args: BuildArgs) -> Result<ExitCode> {
    let mut services = Vec::new();
    for name in &args.services {
        let service = workspace::service(name)?;
        if !services.iter().any(|s: &&Service| s.name == service.name) {
            services.push(service);
        }
    }
    build(&services, &args.common)
}

pub fn run_build_all(args: BuildAllArgs) -> Result<ExitCode> {
    let services: Vec<&Service> = workspace::SERVICES.iter().collect();
    build(&services, &args.common)
}

/// Where `--push` goes: `--registry`, else the environment's registry.
fn push_target(args: &CommonArgs) -> Result<Option<String>> {
    if !args.push {
        if args.registry.is_some() || args.env.is_some() {
            bail!("--registry/--env only say where to push: add --push");
        }
        return Ok(None);
    }
    let registry = match (&args.registry, &args.env) {
        (Some(registry), _) => registry.clone(),
        (None, Some(env)) => crate::environment::Environment::load(env)?.registry,
        (None, None) => bail!("--push needs a registry: --registry HOST:PORT or --env <env>"),
    };
    let registry = registry.trim_end_matches('/').to_string();
    if registry.is_empty() || registry.contains("://") {
        bail!("registry `{registry}` must be `host[:port]`, without a scheme");
    }
    Ok(Some(registry))
}

fn build(services: &[&Service], args: &CommonArgs) -> Result<ExitCode> {
    let registry = push_target(args)?;
    let root = match &args.root {
        Some(dir) => dir
            .canonicalize()
            .with_context(|| format!("workspace {}", dir.display()))?,
        None => workspace::root(),
    };
    let rows =
        crate::cli::runtime()?.block_on(build_async(services, args, &root, registry.as_deref()))?;
    output::print(&rows, args.output)?;
    Ok(ExitCode::SUCCESS)
}

async fn build_async(
    services: &[&Service],
    args: &CommonArgs,
    root: &std::path::Path,
    registry: Option<&str>,
) -> Result<Vec<Row>> {
    let mut build = Build::start(root).await?;
    build.plan(services, &args.image_prefix).await?;
    build.compile()?;
    build.package_and_load().await?;
    if let Some(registry) = registry {
        build.push(registry).await?;
    }
    record(
        &build.ws,
        &build.rows,
        &build.stamps,
        args.record_as.as_deref(),
    )?;
    Ok(build.rows)
}

/// One build's engine, workspace, and a row (and commit stamp) per service.
struct Build {
    engine: Engine,
    ws: inputs::Workspace,
    rows: Vec<Row>,
    stamps: BTreeMap<&'static str, git_info::GitInfo>,
}

impl Build {
    async fn start(root: &std::path::Path) -> Result<Build> {
        Ok(Build {
            engine: Engine::connect().await?,
            ws: inputs::Workspace::load(root)?,
            rows: Vec::new(),
            stamps: BTreeMap::new(),
        })
    }

    /// Which services need a new image at all: a row each, cached or to build.
    async fn plan(&mut self, services: &[&Service], image_prefix: &str) -> Result<()> {
        let git = git_info::open(&self.ws.root)?;
        let shared = inputs::SharedInputs::collect(&self.ws)?;
        for service in services {
            let repo = format!("{image_prefix}{}", service.name);
            let content_tag = inputs::content_tag(&self.ws, &shared, service)?;
            let stamp = git
                .stamp(&self.ws.input_paths(service.name)?)
                .with_context(|| format!("the revision of {}", service.name))?;
            let existing = self
                .engine
                .inspect(&format!("{repo}:{content_tag}"))
                .await?;
            let outcome = if existing.is_some() {
                Outcome::Cached
            } else {
                Outcome::Built
            };
            let mut row = Row::new(service.name, repo, content_tag, stamp.tag.clone(), outcome);
            self.stamps.insert(service.name, stamp);
            if let Some(image) = existing {
                reuse(&self.engine, &mut row, &image).await?;
            }
            self.rows.push(row);
        }
        Ok(())
    }

    /// One compile, of every service (see `compile::release_build`), when any is built.
    fn compile(&self) -> Result<()> {
        let to_build: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| r.outcome == Outcome::Built)
            .map(|r| r.service.as_str())
            .collect();
        if !to_build.is_empty() {
            for name in &to_build {
                output::progress(name, "compiling");
            }
            compile::release_build(&self.ws.root)?;
        }
        Ok(())
    }

    /// Package and load each new image.
    async fn package_and_load(&mut self) -> Result<()> {
        for row in self.rows.iter_mut().filter(|r| r.outcome == Outcome::Built) {
            output::progress(&row.service, "packaging");
            let service = workspace::service(&row.service)?;
            let tarball = package(&self.ws, &self.stamps[service.name], service, row)?;
            self.engine.load(tarball).await?;
            let reference = format!("{}:{}", row.repo, row.content_tag);
            let image = self
                .engine
                .inspect(&reference)
                .await?
                .with_context(|| format!("{reference} missing right after loading it"))?;
            row.fill_from(&image);
        }
        Ok(())
    }

    /// Push every image (built or cached) to `registry`, both tags.
    async fn push(&mut self, registry: &str) -> Result<()> {
        let credentials = credentials::for_registry(registry)?;
        for row in self.rows.iter_mut() {
            push_one(&self.engine, row, registry, &credentials).await?;
        }
        Ok(())
    }
}

/// A cached image: tag it with this commit and take its id and size.
async fn reuse(engine: &Engine, row: &mut Row, image: &ImageInspect) -> Result<()> {
    output::progress(&row.service, &format!("cached {}", row.content_tag));
    // The human tag names the inputs' commit even when the image is reused.
    engine
        .tag(
            &format!("{}:{}", row.repo, row.content_tag),
            &row.repo,
            &row.commit_tag,
        )
        .await?;
    row.fill_from(image);
    Ok(())
}

/// Tag and push one image under both tags; record the registry's digest.
async fn push_one(
    engine: &Engine,
    row: &mut Row,
    registry: &str,
    credentials: &Option<DockerCredentials>,
) -> Result<()> {
    output::progress(&row.service, &format!("pushing to {registry}"));
    let target = format!("{registry}/{}", row.repo);
    let source = format!("{}:{}", row.repo, row.content_tag);
    engine.tag(&source, &target, &row.content_tag).await?;
    engine.tag(&source, &target, &row.commit_tag).await?;
    let reported = engine
        .push(&target, &row.content_tag, credentials.clone())
        .await?;
    engine
        .push(&target, &row.commit_tag, credentials.clone())
        .await?;
    // The engine's RepoDigests is the record of what the registry holds.
    let image = engine
        .inspect(&source)
        .await?
        .with_context(|| format!("{source} vanished during the push"))?;
    row.digest = Some(pushed_digest(&image, &target, reported)?);
    row.registry = Some(registry.to_string());
    Ok(())
}

/// The digest the registry holds for `target`: the one the push reported
/// when the engine agrees, else the engine's first for that repository.
fn pushed_digest(image: &ImageInspect, target: &str, reported: Option<String>) -> Result<String> {
    // The engine files Docker Hub images without `docker.io/`.
    let prefix = format!("{}@", credentials::engine_name(target));
    let repo_digests: Vec<String> = image
        .repo_digests
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|d| d.strip_prefix(&prefix).map(String::from))
        .collect();
    match reported {
        Some(d) if repo_digests.is_empty() || repo_digests.contains(&d) => Ok(d),
        _ => repo_digests
            .first()
            .cloned()
            .with_context(|| format!("the engine reports no digest for {target}")),
    }
}

/// Assembles the docker-save tarball of one service image. Every byte
/// follows from the content tag's inputs and their commit (`git`): layers
/// sorted with fixed owners and mtimes, times and revision from the commit.
fn package(
    ws: &inputs::Workspace,
    git: &git_info::GitInfo,
    service: &Service,
    row: &Row,
) -> Result<Vec<u8>> {
    let package = ws.package(service.name)?;
    let bin = package
        .bins
        .iter()
        .find(|b| *b == service.name)
        .or(package.bins.first())
        .with_context(|| format!("package {} has no binary", service.name))?;
    let binary = ws.target_dir.join("release").join(bin);
    let libraries = rootfs::shared_libraries(&binary)?;
    let mtime = git.time.and_then(|t| u64::try_from(t).ok()).unwrap_or(0);
    let layers = [
        rootfs::base_layer(&libraries)?.to_tar(mtime)?,
        rootfs::binary_layer(&binary, bin)?.to_tar(mtime)?,
    ];
    let created = git.time.map(git_info::rfc3339);
    let mut exposed = serde_json::Map::new();
    if service.kind != Kind::Cli && service.port != 0 {
        exposed.insert(format!("{}/tcp", service.port), serde_json::json!({}));
    }
    let source = package.repository.clone().unwrap_or_default();
    let mut labels = serde_json::json!({
        "org.opencontainers.image.title": service.name,
        "org.opencontainers.image.source": source,
        "org.opencontainers.image.version": package.version,
    });
    if let Some(commit) = &git.commit {
        labels["org.opencontainers.image.revision"] = commit.as_str().into();
    }
    let mut history = vec![
        serde_json::json!({"created_by": "xtask: /etc, dynamic loader, shared libraries"}),
        serde_json::json!({"created_by": format!("xtask: {}", rootfs::binary_path(bin))}),
    ];
    let mut config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": format!("{0}:{0}", rootfs::NONROOT),
            "ExposedPorts": exposed,
            "Env": ["PATH=/usr/local/bin"],
            "Entrypoint": [rootfs::binary_path(bin)],
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| format!("sha256:{}", archive::sha256_hex(l))).collect::<Vec<_>>(),
        },
    });
    if let Some(created) = &created {
        config["created"] = created.as_str().into();
        config["config"]["Labels"]["org.opencontainers.image.created"] = created.as_str().into();
        for step in &mut history {
            step["created"] = created.as_str().into();
        }
    }
    config["history"] = history.into();
    let config = serde_json::to_vec(&config)?;
    let tags = [
        format!("{}:{}", row.repo, row.content_tag),
        format!("{}:{}", row.repo, row.commit_tag),
    ];
    archive::docker_save_tarball(&config, &layers, &tags, mtime)
}

/// Updates target/xtask/images.json (of the workspace built), keeping the
/// entries of services not built this time. The digests recorded per
/// registry stay as long as the image is the one pushed; a push adds the
/// registry it went to (and `record_as`, the environment's name for it).
fn record(
    ws: &inputs::Workspace,
    rows: &[Row],
    stamps: &std::collections::BTreeMap<&str, git_info::GitInfo>,
    record_as: Option<&str>,
) -> Result<()> {
    let path = ImageRecord::path_in(&ws.target_dir);
    let mut record = ImageRecord::load_from(&path).unwrap_or_default();
    for row in rows {
        let mut pushed = match record.images.get(&row.service) {
            Some(prev) if prev.image_id == row.image_id => prev.pushed.clone(),
            _ => Default::default(),
        };
        if let (Some(digest), Some(registry)) = (&row.digest, &row.registry) {
            for name in std::iter::once(registry.as_str()).chain(record_as) {
                pushed.insert(name.to_string(), digest.clone());
            }
        }
        let commit = row
            .revision
            .clone()
            .or_else(|| {
                stamps
                    .get(row.service.as_str())
                    .and_then(|s| s.commit.clone())
            })
            .unwrap_or_default();
        record.images.insert(
            row.service.clone(),
            ImageEntry {
                name: row.repo.clone(),
                content_tag: row.content_tag.clone(),
                commit_tag: row.commit_tag.clone(),
                commit,
                image_id: row.image_id.clone(),
                size: row.size,
                pushed,
            },
        );
    }
    record.save_to(&path)
}
