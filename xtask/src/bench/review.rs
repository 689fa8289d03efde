//! `cargo xtask bench review`: `review` of a change to 2,000 objects (in a
//! temporary repository holding this workspace's definitions and minikube
//! manifests): wall time of reading, comparing, checking and writing the
//! markdown parts, and the peak memory of the process.

use crate::review::{self, Format, ReviewArgs};
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

const OBJECTS: usize = 2000;

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
        ])
        .args(args)
        .status()
        .with_context(|| format!("running git {args:?}"))?;
    if !status.success() {
        bail!("git {args:?} failed");
    }
    Ok(())
}

fn write_config_maps(dir: &Path, level: &str) -> Result<()> {
    for i in 0..OBJECTS {
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{i}\n  namespace: micro\ndata:\n  level: {level}\n  owner: team-{}\n",
            i % 7
        );
        std::fs::write(dir.join(format!("configmap-settings-{i}.yaml")), text)?;
    }
    Ok(())
}

/// A repository: the definitions, then 2,000 ConfigMaps, then all of them changed.
fn repository(root: &Path) -> Result<()> {
    let workspace = crate::workspace::root();
    let copy = |from: &str| -> Result<()> {
        let status = Command::new("cp")
            .arg("-r")
            .arg(workspace.join(from))
            .arg(root.join(from).parent().unwrap_or(root))
            .status()?;
        if !status.success() {
            bail!("copying {from}");
        }
        Ok(())
    };
    std::fs::create_dir_all(root.join("environments"))?;
    for folder in ["deployment", "infrastructure", "environments/minikube"] {
        copy(folder)?;
    }
    git(root, &["init", "-q", "-b", "main"])?;
    git(root, &["add", "-A"])?;
    git(root, &["commit", "-q", "-m", "definitions"])?;
    let manifests = root.join("environments/minikube/manifests");
    write_config_maps(&manifests, "low")?;
    git(root, &["add", "-A"])?;
    git(root, &["commit", "-q", "-m", "2000 settings"])?;
    write_config_maps(&manifests, "high")?;
    git(root, &["add", "-A"])?;
    git(root, &["commit", "-q", "-m", "every setting changes"])?;
    Ok(())
}

/// Peak resident memory of this process, in MiB (getrusage maxrss is KiB on Linux).
fn peak_rss_mib() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    usage.ru_maxrss as f64 / 1024.0
}

pub fn run() -> Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("xtask-bench-review-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = measure(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn measure(dir: &Path) -> Result<ExitCode> {
    let root = dir.join("repo");
    std::fs::create_dir_all(&root)?;
    repository(&root)?;
    let before = peak_rss_mib();
    let started = Instant::now();
    let args = ReviewArgs {
        base: "HEAD~1".into(),
        head: "HEAD".into(),
        envs: Vec::new(),
        output: Format::Markdown,
        max_bytes: review::GITHUB_COMMENT_LIMIT,
        out_dir: Some(dir.join("parts")),
        live: false,
        context: None,
        kubeconfig: None,
        root: Some(root),
    };
    let review = review::review(&args)?;
    let parts = review::write_parts(&review, &dir.join("parts"), args.max_bytes)?;
    let took = started.elapsed();
    outln!(
        "review of {OBJECTS} changed objects: {:.3}s wall, {} markdown parts, peak RSS {:.1} MiB (before the review: {before:.1} MiB)",
        took.as_secs_f64(),
        parts.len(),
        peak_rss_mib()
    )?;
    Ok(ExitCode::SUCCESS)
}
