//! `cargo xtask bench sync`: wall time and request count of `sync` beside
//! `kubectl apply --server-side -f <folder>`, on the same in-memory API server.
//!
//! Both tools run as processes (the xtask binary itself, and kubectl), each on
//! a fresh server, for three steps: first sync, no-op sync, one image changed.
//! Scenarios: the system's committed minikube manifests, and a synthetic
//! environment of 500 Deployments with their Services. sync runs with
//! `--no-wait` (kubectl apply does not wait for rollouts either).
//!
//! The server runs inside the bench process and sync is the bench's own
//! binary, so a debug `cargo xtask bench sync` builds xtask in release mode
//! and hands over to that binary; the table says which build it measured.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};
use testcluster::{BlockingTestCluster, Options};

pub(super) const ENV: &str = "bench";

struct Measure {
    wall: Duration,
    requests: usize,
    writes: usize,
}

pub(super) struct Scenario {
    pub(super) name: String,
    /// (file name, contents) of one object per file.
    pub(super) files: Vec<(String, String)>,
}

fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

pub fn run() -> Result<ExitCode> {
    let mut scenarios = Vec::new();
    match system_scenario() {
        Ok(system) => scenarios.push(system),
        Err(e) => eprintln!(
            "bench sync: skipping the system scenario: {}",
            crate::cli::one_line(&e)
        ),
    }
    scenarios.push(synthetic_scenario(500));
    let mut rows = vec![vec![
        "scenario".to_string(),
        "step".into(),
        "xtask sync".into(),
        "requests".into(),
        "writes".into(),
        "kubectl apply".into(),
        "requests".into(),
        "writes".into(),
        "ratio".into(),
    ]];
    for scenario in &scenarios {
        eprintln!(
            "bench sync: {} ({} objects)…",
            scenario.name,
            scenario.files.len()
        );
        let ours = run_steps(scenario, Tool::Xtask)?;
        let theirs = run_steps(scenario, Tool::Kubectl)?;
        for ((step, a), (_, b)) in ours.iter().zip(&theirs) {
            rows.push(vec![
                format!("{} ({} objects)", scenario.name, scenario.files.len()),
                step.to_string(),
                format!("{:.3}s", a.wall.as_secs_f64()),
                a.requests.to_string(),
                a.writes.to_string(),
                format!("{:.3}s", b.wall.as_secs_f64()),
                b.requests.to_string(),
                b.writes.to_string(),
                format!("{:.2}", a.wall.as_secs_f64() / b.wall.as_secs_f64()),
            ]);
        }
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        outln!("{}", cells.join("  ").trim_end())?;
    }
    outln!(
        "(ratio = xtask wall time / kubectl wall time; sync with --no-wait; fresh server per tool; \
         xtask and the server built {})",
        profile()
    )?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, PartialEq)]
enum Tool {
    Xtask,
    Kubectl,
}

/// First sync, no-op sync, one image changed: on one fresh server.
fn run_steps(scenario: &Scenario, tool: Tool) -> Result<Vec<(&'static str, Measure)>> {
    let options = Options {
        rollout_delay: Duration::from_millis(100),
        ..Options::default()
    };
    let server = BlockingTestCluster::start(options)?;
    let repo = ScratchDir::new(if tool == Tool::Xtask {
        "xtask"
    } else {
        "kubectl"
    })?;
    let (git, manifests) = committed_scenario(repo.path(), scenario)?;
    if tool == Tool::Kubectl {
        // kubectl applies files in name order: the namespace must exist first.
        let namespace = scenario
            .files
            .iter()
            .find(|(n, _)| n.starts_with("namespace-"))
            .map(|(n, _)| manifests.join(n));
        if let Some(file) = namespace {
            kubectl_apply(server.kubeconfig(), &file)?;
        }
    }

    let mut results = Vec::new();
    for step in ["first sync", "no-op sync", "one image changed"] {
        if step == "one image changed" {
            change_one_image(&manifests)?;
            commit(&git, "one image changed")?;
        }
        server.cluster().clear_audit_events();
        let started = Instant::now();
        match tool {
            Tool::Xtask => xtask_sync(server.kubeconfig(), repo.path())?,
            Tool::Kubectl => kubectl_apply(server.kubeconfig(), &manifests)?,
        }
        let wall = started.elapsed();
        let events = server.audit_events();
        let writes = events.iter().filter(|e| e.is_write() && !e.dry_run).count();
        results.push((
            step,
            Measure {
                wall,
                requests: events.len(),
                writes,
            },
        ));
    }
    Ok(results)
}

/// A scratch repository under target/xtask/ (removed when dropped).
pub(super) struct ScratchDir(PathBuf);

impl ScratchDir {
    pub(super) fn new(which: &str) -> Result<ScratchDir> {
        let path = crate::workspace::state_dir()
            .join(format!("bench-sync-{}-{which}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(ScratchDir(path))
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn xtask_sync(kubeconfig: &Path, repo: &Path) -> Result<()> {
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let out = Command::new(exe)
        .args([
            "sync",
            "--env",
            ENV,
            "--no-wait",
            "--output",
            "json",
            "--root",
        ])
        .arg(repo)
        .env("KUBECONFIG", kubeconfig)
        .output()?;
    if !out.status.success() {
        bail!(
            "xtask sync failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A new repository in `root` holding the scenario as environment `ENV`,
/// committed: what each bench syncs. Returns it and its manifests folder.
pub(super) fn committed_scenario(
    root: &Path,
    scenario: &Scenario,
) -> Result<(git2::Repository, PathBuf)> {
    let environment = root.join("environments").join(ENV);
    let manifests = environment.join("manifests");
    std::fs::create_dir_all(&manifests)?;
    std::fs::write(
        environment.join("env.yaml"),
        "context: minikube\nregistry: localhost:5000\nnamespace: micro\n",
    )?;
    for (name, text) in &scenario.files {
        std::fs::write(manifests.join(name), text)?;
    }
    let git = git2::Repository::init(root)?;
    commit(&git, "bench manifests")?;
    Ok((git, manifests))
}

fn kubectl_apply(kubeconfig: &Path, path: &Path) -> Result<()> {
    let out = Command::new("kubectl")
        .args(["apply", "--server-side", "-f"])
        .arg(path)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .context("running kubectl")?;
    if !out.status.success() {
        bail!(
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

pub(super) fn commit(repo: &git2::Repository, message: &str) -> Result<()> {
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let signature = git2::Signature::now("bench", "bench@localhost")?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )?;
    Ok(())
}

/// Change the image of the first Deployment (alphabetically): another
/// digest when pinned by digest, else another tag.
fn change_one_image(manifests: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifests)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("deployment-"))
        })
        .collect();
    files.sort();
    let Some(file) = files.first() else {
        bail!("no Deployment to change")
    };
    let text = std::fs::read_to_string(file)?;
    let mut changed = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if changed || !line.trim_start().starts_with("image:") {
                return line.to_string();
            }
            changed = true;
            let image = line.trim_end();
            if image.contains("@sha256:") {
                let (head, last) = image.split_at(image.len() - 1);
                format!("{head}{}", if last == "0" { "1" } else { "0" })
            } else {
                format!("{image}-next")
            }
        })
        .collect();
    std::fs::write(file, lines.join("\n") + "\n")?;
    Ok(())
}

/// The system's minikube manifests as committed at the workspace's HEAD, or,
/// before any are committed, rendered from the definitions with stand-in
/// image digests (the figures do not depend on the digests' values).
fn system_scenario() -> Result<Scenario> {
    let root = crate::workspace::root();
    match committed_manifests(&root) {
        Ok(files) => Ok(Scenario {
            name: "system".into(),
            files,
        }),
        Err(why) => {
            eprintln!(
                "bench sync: {}; rendering them with stand-in digests",
                crate::cli::one_line(&why)
            );
            Ok(Scenario {
                name: "system (rendered)".into(),
                files: rendered_manifests(&root)?,
            })
        }
    }
}

fn committed_manifests(root: &Path) -> Result<Vec<(String, String)>> {
    let repo =
        git2::Repository::open(root).with_context(|| format!("opening {}", root.display()))?;
    let tree = repo.head()?.peel_to_tree()?;
    let entry = tree
        .get_path(Path::new("environments/minikube/manifests"))
        .map_err(|_| anyhow::anyhow!("environments/minikube/manifests is not committed"))?;
    let folder = entry.to_object(&repo)?.peel_to_tree()?;
    let mut files = Vec::new();
    for item in folder.iter() {
        let Ok(name) = item.name() else { continue };
        if name.ends_with(".yaml") {
            let blob = item.to_object(&repo)?.peel_to_blob()?;
            files.push((
                name.to_string(),
                String::from_utf8_lossy(blob.content()).into_owned(),
            ));
        }
    }
    Ok(files)
}

/// `xtask render --env minikube` on a scratch copy of the definitions.
fn rendered_manifests(root: &Path) -> Result<Vec<(String, String)>> {
    use sha2::Digest;
    let scratch = ScratchDir::new("render")?;
    for folder in ["deployment", "infrastructure"] {
        copy_dir(&root.join(folder), &scratch.path().join(folder))?;
    }
    let env_dir = scratch.path().join("environments").join("minikube");
    std::fs::create_dir_all(&env_dir)?;
    std::fs::copy(
        root.join("environments/minikube/env.yaml"),
        env_dir.join("env.yaml"),
    )?;
    let mut record = crate::image::record::ImageRecord::default();
    for service in crate::workspace::SERVICES {
        let digest = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(service.name.as_bytes()))
        );
        record.images.insert(
            service.name.to_string(),
            crate::image::record::ImageEntry {
                name: service.name.to_string(),
                content_tag: format!("c-{}", &digest[7..19]),
                commit_tag: "0000000".into(),
                commit: "0".repeat(40),
                image_id: digest.clone(),
                size: 0,
                pushed: [("localhost:5000".to_string(), digest)].into(),
            },
        );
    }
    let images = scratch.path().join("images.json");
    record.save_to(&images)?;
    let exe = std::env::current_exe().context("locating the xtask binary")?;
    let out = Command::new(exe)
        .args(["render", "--env", "minikube", "--root"])
        .arg(scratch.path())
        .arg("--images")
        .arg(&images)
        .output()?;
    if !out.status.success() {
        bail!(
            "render failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(env_dir.join("manifests"))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        files.push((name, std::fs::read_to_string(entry.path())?));
    }
    files.sort();
    Ok(files)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)
        .with_context(|| format!("reading {}", from.display()))?
        .flatten()
    {
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// `n` Deployments, each with its Service, in one namespace.
pub(super) fn synthetic_scenario(n: usize) -> Scenario {
    let mut files = vec![(
        "namespace-micro.yaml".to_string(),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: micro\n  labels:\n    app.kubernetes.io/managed-by: xtask\n".to_string(),
    )];
    for i in 0..n {
        let name = format!("svc-{i:03}");
        let labels = format!(
            "    app.kubernetes.io/name: {name}\n    app.kubernetes.io/part-of: micro\n    app.kubernetes.io/managed-by: xtask\n"
        );
        files.push((
            format!("deployment-{name}.yaml"),
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: micro\n  labels:\n{labels}spec:\n  \
                 replicas: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n  template:\n    metadata:\n      \
                 labels:\n        app.kubernetes.io/name: {name}\n    spec:\n      containers:\n      - name: app\n        \
                 image: localhost:5000/{name}:v1\n        ports:\n        - name: main\n          containerPort: 8080\n"
            ),
        ));
        files.push((
            format!("service-{name}.yaml"),
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: micro\n  labels:\n{labels}spec:\n  \
                 selector:\n    app.kubernetes.io/name: {name}\n  ports:\n  - name: main\n    port: 80\n    targetPort: 8080\n"
            ),
        ));
    }
    Scenario {
        name: format!("synthetic {n} deployments + services"),
        files,
    }
}
