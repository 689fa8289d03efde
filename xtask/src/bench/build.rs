//! `cargo xtask bench build`: how long build-all takes cold (no image in the
//! engine; with MICRO_BENCH_COLD=1 also an empty target dir), as a no-op, and after a
//! one-line change in one service, against the compile of that crate alone;
//! and each image's size.
//!
//! It works on a copy of the workspace under target/bench-build (never the
//! shared tree) with its own git repository and image names `bench<pid>/...`,
//! removed at the end.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The service whose source the bench changes.
const TOUCHED: &str = "adderservice";

pub struct BuildBenchOptions {
    /// Start from an empty target dir: the cold figure includes every dependency's compile.
    pub cold: bool,
}

pub fn run(options: BuildBenchOptions) -> Result<ExitCode> {
    let base = crate::workspace::root().join("target/bench-build");
    let ws = base.join("ws");
    let target = base.join("target");
    if options.cold {
        let _ = std::fs::remove_dir_all(&target);
    }
    copy_workspace(&crate::workspace::root(), &ws)?;
    let prefix = format!("bench{}/", std::process::id());
    let mut refs = Vec::new();
    let result = measure(&ws, &target, &prefix, &mut refs);
    remove_images(&refs);
    let figures = result?;
    outln!("{figures}")?;
    Ok(ExitCode::SUCCESS)
}

fn measure(ws: &Path, target: &Path, prefix: &str, refs: &mut Vec<String>) -> Result<String> {
    let build_all = |refs: &mut Vec<String>| -> Result<(f64, Vec<Value>)> {
        let start = Instant::now();
        let out = Command::new(std::env::current_exe()?)
            .args([
                "build-all",
                "--output",
                "json",
                "--image-prefix",
                prefix,
                "--root",
            ])
            .arg(ws)
            .env("CARGO_TARGET_DIR", target)
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running build-all")?;
        let secs = start.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!("build-all failed during the bench");
        }
        let rows: Vec<Value> =
            serde_json::from_slice(&out.stdout).context("parsing build-all --output json")?;
        for r in &rows {
            for tag in ["contentTag", "commitTag"] {
                refs.push(format!(
                    "{}:{}",
                    r["repo"].as_str().unwrap_or_default(),
                    r[tag].as_str().unwrap_or_default()
                ));
            }
        }
        Ok((secs, rows))
    };
    eprintln!("bench: cold build-all (no image in the engine)");
    let (cold, rows) = build_all(refs)?;
    eprintln!("bench: no-op build-all");
    let (noop, noop_rows) = build_all(refs)?;
    if noop_rows.iter().any(|r| r["outcome"] != "cached") {
        bail!("the no-op build-all built something: {noop_rows:?}");
    }
    let main_rs = ws.join(format!("services/{TOUCHED}/src/main.rs"));
    let original = std::fs::read_to_string(&main_rs)
        .with_context(|| format!("reading {}", main_rs.display()))?;
    // One more comment line in the service's main.rs: a source change, nothing else.
    let change_line = |label: &str| {
        std::fs::write(
            &main_rs,
            format!("{original}\n// bench {label} {}\n", std::process::id()),
        )
    };
    change_line("once")?;
    eprintln!("bench: build-all after a one-line change in {TOUCHED}");
    let changed = build_all(refs);
    // The first build of one service alone also compiles the dependencies with
    // that service's own feature set (cargo unifies features over the packages
    // it is asked for); later changes reuse them: measure both.
    change_line("again")?;
    eprintln!("bench: build-all after another one-line change in {TOUCHED}");
    let changed_again = build_all(refs);
    // The crate alone, after another one-line change: the floor for `changed`.
    change_line("crate-only")?;
    let start = Instant::now();
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", TOUCHED])
        .current_dir(ws)
        .env("CARGO_TARGET_DIR", target)
        .status()?;
    let crate_only = start.elapsed().as_secs_f64();
    std::fs::write(&main_rs, &original)?;
    let (changed, changed_rows) = changed?;
    let (changed_again, _) = changed_again?;
    if !status.success() {
        bail!("cargo build -p {TOUCHED} failed during the bench");
    }
    let rebuilt: Vec<&str> = changed_rows
        .iter()
        .filter(|r| r["outcome"] == "built")
        .filter_map(|r| r["service"].as_str())
        .collect();

    let mut text = String::from("build bench (seconds; `cargo xtask` start-up excluded)\n");
    text.push_str(&format!(
        "  cold build-all (no image in the engine): {cold:>7.2}\n"
    ));
    text.push_str(&format!(
        "  no-op build-all:                         {noop:>7.2}\n"
    ));
    text.push_str(&format!(
        "  build-all after a one-line change in {TOUCHED}: {changed:.2} (rebuilt: {}; \
         the first build of {TOUCHED} alone, its dependencies with its own features too)\n",
        rebuilt.join(", ")
    ));
    text.push_str(&format!(
        "  build-all after another one-line change in {TOUCHED}: {changed_again:.2}\n"
    ));
    text.push_str(&format!("  cargo build --release -p {TOUCHED} alone after the same kind of change: {crate_only:.2}\n"));
    text.push_str("image sizes (uncompressed, as the engine reports them)\n");
    for r in &rows {
        let size = r["size"].as_u64().unwrap_or(0);
        text.push_str(&format!(
            "  {:<14} {:>6.2} MB\n",
            r["service"].as_str().unwrap_or("?"),
            size as f64 / 1_000_000.0
        ));
    }
    Ok(text)
}

/// Copies tracked and untracked-but-not-ignored files (unchanged files keep
/// their mtime so cargo reuses its compiles) and commits them in a fresh repo.
fn copy_workspace(root: &Path, dest: &Path) -> Result<()> {
    let listed = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("running git ls-files")?;
    if !listed.status.success() {
        bail!(
            "git ls-files failed: {}",
            String::from_utf8_lossy(&listed.stderr).trim()
        );
    }
    for rel in listed.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let rel = PathBuf::from(String::from_utf8_lossy(rel).to_string());
        let Ok(data) = std::fs::read(root.join(&rel)) else {
            continue;
        };
        let dst = dest.join(&rel);
        if std::fs::read(&dst).ok().as_deref() != Some(data.as_slice()) {
            std::fs::create_dir_all(dst.parent().unwrap_or(dest))?;
            std::fs::write(&dst, &data).with_context(|| format!("writing {}", dst.display()))?;
        }
    }
    let _ = std::fs::remove_dir_all(dest.join(".git"));
    for args in [
        &["init", "-q"][..],
        &["add", "-A"][..],
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "-q",
            "-m",
            "bench copy",
        ][..],
    ] {
        let status = Command::new("git").current_dir(dest).args(args).status()?;
        if !status.success() {
            bail!("git {} failed in {}", args.join(" "), dest.display());
        }
    }
    Ok(())
}

/// Best effort: the bench's images must not pile up in the engine.
fn remove_images(refs: &[String]) {
    let Ok(runtime) = crate::cli::runtime() else {
        return;
    };
    runtime.block_on(async {
        let Ok(docker) = bollard::Docker::connect_with_defaults() else {
            return;
        };
        let Ok(docker) = docker.negotiate_version().await else {
            return;
        };
        for reference in refs {
            let options = bollard::query_parameters::RemoveImageOptions {
                force: true,
                ..Default::default()
            };
            let _ = docker.remove_image(reference, Some(options), None).await;
        }
    });
}
