//! `cargo xtask pipeline` end to end, on a copy of the workspace with a bare
//! `origin`, the suite's real registry and the in-memory API server: the
//! images land in the registry under the digests the pushed deploy commit
//! names, origin holds the deploy branch, the cluster runs those digests, and
//! a second run with nothing changed commits nothing. A failing stage stops
//! the run: exit 2 naming it, no commit, no push.

use crate::image_support;

use image_support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use testcluster::{BlockingTestCluster, Options};

fn registry() -> String {
    std::env::var("MICRO_TEST_REGISTRY")
        .expect("MICRO_TEST_REGISTRY is not set: run through `cargo xtask test`")
}

fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The commit `branch` points at in the bare repository `origin`.
fn origin_tip(origin: &Path, branch: &str) -> String {
    git_out(origin, &["rev-parse", &format!("refs/heads/{branch}")])
}

/// A workspace copy whose `origin` is a fresh bare repository holding its branch.
fn clone_with_origin(name: &str) -> (WorkspaceCopy, tempfile::TempDir) {
    let ws = WorkspaceCopy::new(name);
    let origin = tempfile::tempdir().unwrap();
    git(origin.path(), &["init", "-q", "--bare"]);
    let _ = Command::new("git")
        .arg("-C")
        .arg(&ws.dir)
        .args(["remote", "remove", "origin"])
        .output();
    git(
        &ws.dir,
        &["remote", "add", "origin", origin.path().to_str().unwrap()],
    );
    git(&ws.dir, &["push", "-q", "-u", "origin", "HEAD"]);
    git(&ws.dir, &["config", "user.name", "Pipeline Test"]);
    git(&ws.dir, &["config", "user.email", "pipeline@example.com"]);
    (ws, origin)
}

fn pipeline(ws: &WorkspaceCopy, cluster: Option<&BlockingTestCluster>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args([
        "pipeline", "--env", "minikube", "--output", "json", "--root",
    ])
    .arg(&ws.dir)
    .args(args)
    .env("CARGO_TARGET_DIR", &ws.target_dir)
    .env("NO_COLOR", "1")
    .current_dir(&ws.dir);
    if let Some(cluster) = cluster {
        cmd.env("KUBECONFIG", cluster.kubeconfig());
    }
    cmd.output().unwrap()
}

/// The JSON summary: the last line of stdout.
fn summary(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let doc = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("summary {last:?}: {e}\n{}", stderr(out)));
    crate::contract::assert_valid("pipeline", &doc);
    doc
}

fn stage_results(summary: &Value) -> Vec<(String, String)> {
    summary["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().to_string(),
                s["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Workload -> digest, from the Deployments of `rev` in `git_dir`.
fn committed_digests(git_dir: &Path, rev: &str) -> Vec<(String, String)> {
    let dir = "environments/minikube/manifests";
    let files = git_out(
        git_dir,
        &["ls-tree", "--name-only", &format!("{rev}:{dir}")],
    );
    let mut digests = Vec::new();
    for file in files.lines().filter(|f| f.starts_with("deployment-")) {
        let text = git_out(git_dir, &["show", &format!("{rev}:{dir}/{file}")]);
        let value: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let image = value["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string();
        let (_, digest) = image
            .split_once('@')
            .unwrap_or_else(|| panic!("{file}: {image} has no digest"));
        let workload = file
            .trim_start_matches("deployment-")
            .trim_end_matches(".yaml");
        digests.push((workload.to_string(), digest.to_string()));
    }
    assert!(digests.len() >= 3, "deployments with digests: {digests:?}");
    digests
}

#[test]
fn build_release_publish_deploy_pushes_commits_and_runs_the_same_digests() {
    let (ws, origin) = clone_with_origin("pipeline-e2e");
    let registry = registry();
    let cluster = BlockingTestCluster::start(Options {
        rollout_delay: std::time::Duration::from_millis(200),
        ..Options::default()
    })
    .expect("start the test API server");
    let base = ws.head();
    let source = git_out(&ws.dir, &["branch", "--show-current"]);
    let junit = ws.dir.join("target/pipeline-junit.xml");

    let out = pipeline(
        &ws,
        Some(&cluster),
        &[
            "--stages",
            "build,release,publish,deploy",
            "--deploy",
            "--registry",
            &registry,
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "pipeline failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let first = summary(&out);
    eprintln!("first run: {first}");
    let stages = ["build", "release", "publish", "deploy"];
    assert_eq!(
        stage_results(&first),
        stages.map(|s| (s.to_string(), "passed".to_string()))
    );

    // The deploy commit is on its own branch, one commit past the base, pushed.
    let branch = git_out(&ws.dir, &["branch", "--show-current"]);
    assert!(
        branch.starts_with(&format!("deploy/minikube/{}", &base[..12])),
        "{branch}"
    );
    let deployed = ws.head();
    assert_eq!(git_out(&ws.dir, &["rev-parse", "HEAD~1"]), base);
    assert_eq!(origin_tip(origin.path(), &branch), deployed);

    // The registry holds every image under the digest the pushed commit names.
    let digests = committed_digests(origin.path(), &deployed);
    for (workload, digest) in &digests {
        let answer = http_retry(
            &registry,
            "GET",
            &format!("/v2/{workload}/manifests/{digest}"),
            &[(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
            )],
            "",
        );
        assert_eq!(answer.status, 200, "{workload}@{digest}: {}", answer.body);
    }

    // The cluster runs exactly those digests.
    for (workload, digest) in &digests {
        let out = Command::new("kubectl")
            .args([
                "get",
                "deployment",
                workload,
                "-n",
                "micro",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ])
            .env("KUBECONFIG", cluster.kubeconfig())
            .output()
            .unwrap();
        assert!(out.status.success(), "kubectl: {}", stderr(&out));
        let image = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            image.ends_with(&format!("@{digest}")),
            "{workload} runs {image}, the commit names {digest}"
        );
    }

    // The review of the deploy commit and the JUnit report are written.
    let review =
        std::fs::read_to_string(ws.dir.join("target/xtask/pipeline/review/review-1.md")).unwrap();
    assert!(review.contains("adderservice"), "{review}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("tests=\"4\" failures=\"0\" skipped=\"0\""),
        "{xml}"
    );

    // Nothing changed: the same stages again make no commit and push nothing new.
    let out = pipeline(
        &ws,
        None,
        &["--stages", "build,release,publish", "--registry", &registry],
    );
    assert!(out.status.success(), "second run failed: {}", stderr(&out));
    let second = summary(&out);
    eprintln!("second run: {second}");
    assert_eq!(ws.head(), deployed, "a run with nothing changed committed");
    assert_eq!(git_out(&ws.dir, &["branch", "--show-current"]), branch);
    assert_eq!(origin_tip(origin.path(), &branch), deployed);
    let release = &second["stages"][1]["detail"];
    assert!(
        release.as_str().unwrap().starts_with("nothing to commit"),
        "{release}"
    );

    // A re-run from the source branch (CI's "re-run job"): the deploy branch of this
    // commit exists, holds this release, and is taken as it is.
    git(&ws.dir, &["checkout", "-q", &source]);
    assert_eq!(ws.head(), base);
    let out = pipeline(
        &ws,
        None,
        &["--stages", "release,publish", "--registry", &registry],
    );
    assert!(out.status.success(), "re-run failed: {}", stderr(&out));
    let rerun = summary(&out);
    eprintln!("re-run from the source branch: {rerun}");
    let release = rerun["stages"][0]["detail"].as_str().unwrap();
    assert!(release.starts_with("already released"), "{release}");
    assert_eq!(ws.head(), deployed, "the re-run made another commit");
    assert_eq!(git_out(&ws.dir, &["branch", "--show-current"]), branch);
    assert_eq!(origin_tip(origin.path(), &branch), deployed);
}

#[test]
fn a_failing_stage_exits_2_naming_it_and_nothing_after_it_runs() {
    let (ws, origin) = clone_with_origin("pipeline-fail");
    // A hand edit of a rendered manifest, committed: render --check must catch it.
    let tampered = ws
        .dir
        .join("environments/minikube/manifests/deployment-adderservice.yaml");
    let text = std::fs::read_to_string(&tampered).unwrap();
    std::fs::write(&tampered, text.replacen("replicas: 1", "replicas: 7", 1)).unwrap();
    git(&ws.dir, &["commit", "-q", "-am", "tamper"]);
    let head = ws.head();
    let branches = git_out(origin.path(), &["for-each-ref", "--format=%(refname)"]);

    let out = pipeline(
        &ws,
        None,
        &[
            "--stages",
            "check,build,release,publish",
            "--registry",
            &registry(),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        error_line(&out).contains("pipeline stage `check` failed"),
        "{}",
        stderr(&out)
    );
    assert!(
        error_line(&out).contains("render --env minikube --check"),
        "{}",
        stderr(&out)
    );
    let summary = summary(&out);
    assert_eq!(summary["failed"], "check");
    assert_eq!(
        stage_results(&summary),
        [
            ("check", "failed"),
            ("build", "skipped"),
            ("release", "skipped"),
            ("publish", "skipped")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("build-all --push"), "build ran: {stdout}");
    // No commit, no branch, no push.
    assert_eq!(ws.head(), head);
    assert_eq!(git_out(&ws.dir, &["branch", "--list", "deploy/*"]), "");
    assert_eq!(
        git_out(origin.path(), &["for-each-ref", "--format=%(refname)"]),
        branches
    );
}
