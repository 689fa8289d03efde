//! An image changes only when its inputs change, on a private copy of the
//! workspace with its own git history, a real Docker engine and a real
//! registry: a commit that touches no service input (an xtask-only commit)
//! rebuilds, from an empty engine as a CI runner starts, every image with the
//! same image ID and digest, so the release after it changes no manifest and
//! `commit` has nothing to commit; a one-line change in adderservice changes
//! adderservice's digest alone and, in the manifests, only its Deployment's
//! image and version lines. A push to one registry leaves the manifests of an
//! environment with another registry as they are.
//!
//! It prints the two release figures as `figure: ...` lines
//! (`cargo xtask test -- -p xtask --test it image_reproducible -- --nocapture`).

use crate::image_support;

use image_support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

fn ok(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", stderr(out));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn commit(dir: &Path, message: &str) {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
}

/// One service's row of a `build-all --push`.
struct Image {
    id: String,
    /// Its digest in the registry pushed to.
    digest: String,
    /// `built` or `cached`.
    outcome: String,
}

/// service -> its image, from the JSON rows of one `build-all --push`.
fn images(rows: &str, registry: &str) -> BTreeMap<String, Image> {
    let rows: Value = serde_json::from_str(rows).expect("--output json prints JSON");
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["registry"], registry, "{r}");
            (
                r["service"].as_str().unwrap().to_string(),
                Image {
                    id: r["imageId"].as_str().unwrap().to_string(),
                    digest: r["digest"].as_str().unwrap().to_string(),
                    outcome: r["outcome"].as_str().unwrap().to_string(),
                },
            )
        })
        .collect()
}

/// A release of minikube on the copy, as `release --env minikube --registry
/// <test registry>` does it: build-all --push (recorded under minikube's
/// registry name), render. Returns the images and the files render changed.
struct Release<'a> {
    copy: &'a WorkspaceCopy,
    prefix: &'a str,
    registry: &'a str,
}

impl Release<'_> {
    fn run(&self) -> (BTreeMap<String, Image>, Vec<String>) {
        let rows = ok(
            &self.copy.xtask(
                self.prefix,
                &[
                    "build-all",
                    "--push",
                    "--registry",
                    self.registry,
                    "--record-as",
                    "localhost:5000",
                    "--output",
                    "json",
                ],
            ),
            "build-all --push",
        );
        let before = self.manifests("minikube");
        ok(
            &self.render(&["--env", "minikube"]),
            "render --env minikube",
        );
        let after = self.manifests("minikube");
        let changed = after
            .iter()
            .filter(|(name, text)| before.get(*name) != Some(text))
            .map(|(name, _)| name.clone())
            .collect();
        (images(&rows, self.registry), changed)
    }

    fn render(&self, args: &[&str]) -> Output {
        let record = self.copy.target_dir.join("xtask/images.json");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("render")
            .args(args)
            .arg("--root")
            .arg(&self.copy.dir)
            .arg("--images")
            .arg(record);
        cmd.output().unwrap()
    }

    fn manifests(&self, env: &str) -> BTreeMap<String, String> {
        let dir = self
            .copy
            .dir
            .join("environments")
            .join(env)
            .join("manifests");
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                (name, std::fs::read_to_string(e.path()).unwrap())
            })
            .collect()
    }

    /// `commit --env minikube` on the copy: its one line.
    fn commit(&self) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["commit", "--env", "minikube", "--root"])
            .arg(&self.copy.dir)
            .output()
            .unwrap();
        ok(&out, "commit --env minikube").trim().to_string()
    }
}

/// Every repository and tag the registry holds, sorted.
fn registry_tags(registry: &str) -> Vec<String> {
    let catalog = http(registry, "GET", "/v2/_catalog?n=1000", &[], "").unwrap();
    let catalog: Value = serde_json::from_str(&catalog.body).unwrap();
    let mut out = Vec::new();
    for repo in catalog["repositories"].as_array().unwrap() {
        let repo = repo.as_str().unwrap();
        let tags = http(registry, "GET", &format!("/v2/{repo}/tags/list"), &[], "").unwrap();
        let tags: Value = serde_json::from_str(&tags.body).unwrap();
        for tag in tags["tags"].as_array().unwrap() {
            out.push(format!("{repo}:{}", tag.as_str().unwrap()));
        }
    }
    out.sort();
    out
}

/// Removes every image of this test from the engine: the next build starts
/// from nothing, as on a fresh CI runner.
fn empty_engine(prefix: &str) {
    let listed = docker_ok(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    let refs: Vec<&str> = listed.lines().filter(|l| l.contains(prefix)).collect();
    assert!(!refs.is_empty(), "no image of {prefix} in the engine");
    let mut args = vec!["rmi", "-f"];
    args.extend(refs);
    docker_ok(&args);
}

/// Removes one service's images of this test from the engine.
fn remove_image(prefix: &str, service: &str) {
    let listed = docker_ok(&["image", "ls", "--format", "{{.Repository}}:{{.Tag}}"]);
    let mut args = vec!["rmi", "-f"];
    args.extend(
        listed
            .lines()
            .filter(|l| l.contains(prefix) && l.contains(&format!("/{service}:"))),
    );
    assert!(
        args.len() > 2,
        "no {service} image of {prefix} in the engine"
    );
    docker_ok(&args);
}

/// The lines of `after` that are not in `before` and the other way round.
fn changed_lines(before: &str, after: &str) -> Vec<String> {
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    let mut out: Vec<String> = new
        .iter()
        .filter(|l| !old.contains(l))
        .map(|l| format!("+{l}"))
        .collect();
    out.extend(
        old.iter()
            .filter(|l| !new.contains(l))
            .map(|l| format!("-{l}")),
    );
    out
}

#[test]
fn an_image_changes_only_when_its_inputs_change() {
    let copy = WorkspaceCopy::new("reproducible");
    git(&copy.dir, &["config", "user.name", "test"]);
    git(&copy.dir, &["config", "user.email", "test@localhost"]);
    let prefix = unique("repro");
    let mut cleanup = Cleanup::default();
    cleanup.image_marker = prefix.clone();
    let data = tempfile::tempdir().unwrap();
    let registry = free_addr();
    let _registry = start_registry(&registry, data.path(), false);
    wait_for_listener(&registry);
    let release = Release {
        copy: &copy,
        prefix: &prefix,
        registry: &registry,
    };

    // A first release: the copy's images, deployed (committed).
    let (first, _) = release.run();
    commit(&copy.dir, "deploy(minikube): first");
    let copied = copy.head();

    // An xtask-only commit, and an empty engine.
    let main_rs = copy.dir.join("xtask/src/main.rs");
    let text = std::fs::read_to_string(&main_rs).unwrap();
    std::fs::write(&main_rs, format!("{text}// an xtask-only change\n")).unwrap();
    commit(&copy.dir, "xtask: a comment");
    empty_engine(&prefix);
    let pushed_before = registry_tags(&registry);
    let (second, changed) = release.run();
    // The same tags (content tag, last input commit) to the same digests.
    assert_eq!(
        registry_tags(&registry),
        pushed_before,
        "the release pushed new tags"
    );
    for (service, image) in &first {
        let again = &second[service];
        assert_eq!(again.outcome, "built", "{service}: the engine was empty");
        assert_eq!(
            image.id, again.id,
            "{service}: image ID after an xtask-only commit"
        );
        assert_eq!(
            image.digest, again.digest,
            "{service}: digest after an xtask-only commit"
        );
    }
    eprintln!(
        "figure: manifests a release changes after an xtask-only commit: {}",
        changed.len()
    );
    assert_eq!(changed, Vec::<String>::new());
    assert_eq!(
        release.commit(),
        "environments/minikube/: nothing to commit"
    );

    // One image gone (a pruned engine): it alone is built again, to the same
    // bytes as when every service was built at once.
    remove_image(&prefix, "adderservice");
    let (alone, changed) = release.run();
    assert_eq!(alone["adderservice"].outcome, "built");
    assert_eq!(alone["auditservice"].outcome, "cached");
    assert_eq!(
        alone["adderservice"].id, second["adderservice"].id,
        "adderservice rebuilt alone: image ID"
    );
    assert_eq!(changed, Vec::<String>::new());

    // The image's revision and creation time are those of the last commit
    // that changed its inputs, not of HEAD.
    let adder_id = &second["adderservice"].id;
    let labels: Value = serde_json::from_str(&docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Labels}}",
        adder_id,
    ]))
    .unwrap();
    let first_commit = String::from_utf8(
        std::process::Command::new("git")
            .current_dir(&copy.dir)
            .args(["rev-list", "--max-parents=0", "HEAD"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        labels["org.opencontainers.image.revision"],
        first_commit.trim(),
        "{labels}"
    );
    assert_ne!(copied, copy.head());

    // A one-line change in adderservice: its digest alone moves, and in the
    // manifests only its Deployment's image and version lines.
    let before = release.manifests("minikube");
    let adder_rs = copy.dir.join("services/adderservice/src/main.rs");
    let text = std::fs::read_to_string(&adder_rs).unwrap();
    std::fs::write(&adder_rs, format!("{text}// a one-line change\n")).unwrap();
    commit(&copy.dir, "adderservice: a one-line change");
    let (third, changed) = release.run();
    for (service, image) in &second {
        let moved = third[service].digest != image.digest;
        assert_eq!(
            moved,
            service == "adderservice",
            "{service} digest moved: {moved}"
        );
    }
    eprintln!(
        "figure: manifests a release changes after a one-line change in adderservice: {} ({})",
        changed.len(),
        changed.join(", ")
    );
    assert_eq!(changed, ["deployment-adderservice.yaml"]);
    let file = "deployment-adderservice.yaml";
    let after = release.manifests("minikube");
    let lines = changed_lines(&before[file], &after[file]);
    assert_eq!(lines.len(), 6, "{lines:#?}");
    for line in &lines {
        assert!(
            line.contains("image: localhost:5000/adderservice:")
                || line.contains("app.kubernetes.io/version: "),
            "{file}: {line} changed"
        );
    }
    let tag = &copy.head()[..12];
    assert!(
        lines.iter().any(|l| l.starts_with('+')
            && l.contains(&format!(":{tag}@{}", third["adderservice"].digest))),
        "{lines:#?}"
    );

    // The push went to minikube's registry only: aws's manifests, whose
    // registry nobody pushed to, are still what render writes.
    let out = release.render(&["--env", "aws", "--check"]);
    assert!(
        out.status.success(),
        "render --env aws --check after a minikube release: {}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}
