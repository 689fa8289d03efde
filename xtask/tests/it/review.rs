//! `cargo xtask review` on temporary git repositories with real commits:
//! what it says about an image bump (and the exact source commits that moved
//! it), lowered replicas, added and deleted objects, a volumeClaimTemplates
//! change; exit codes; and markdown parts that fit and parse balanced.

use crate::manifest_support;
use manifest_support::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const MANIFESTS: &str = "environments/minikube/manifests";

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
    stdout(&output).trim().to_string()
}

/// Commit everything in the work tree; returns the full commit id.
fn commit_all(root: &Path, message: &str) -> String {
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "--allow-empty", "-m", message]);
    git(root, &["rev-parse", "HEAD"])
}

fn write(root: &Path, path: &str, text: &str) {
    let file = root.join(path);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(file, text).unwrap();
}

fn edit(root: &Path, path: &str, from: &str, to: &str) {
    let text = std::fs::read_to_string(root.join(path)).unwrap();
    assert!(text.contains(from), "{path} has no `{from}`");
    std::fs::write(root.join(path), text.replacen(from, to, 1)).unwrap();
}

/// A crate's manifest; services depend on the shared crate by path.
fn crate_manifest(name: &str, shared: bool) -> String {
    let dependency = if shared {
        "[dependencies]\nmicro-common = { path = \"../common\" }\n"
    } else {
        ""
    };
    format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n{dependency}")
}

/// A repository whose first commit holds the definitions and a small cargo
/// workspace (review reads a service's inputs from it, as the build does),
/// with minikube rendered (every image tagged with that commit) and committed.
fn repository() -> (Fixture, String) {
    let fixture = Fixture::new();
    let root = fixture.root();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Test Reviewer"]);
    git(root, &["config", "user.email", "reviewer@example.com"]);
    write(
        root,
        "Cargo.toml",
        "[workspace]\nmembers = [\"services/*\"]\nresolver = \"3\"\n",
    );
    for service in DEPLOYED {
        write(
            root,
            &format!("services/{service}/src/main.rs"),
            "fn main() {}\n",
        );
        write(
            root,
            &format!("services/{service}/Cargo.toml"),
            &crate_manifest(service, true),
        );
    }
    write(root, "services/common/src/lib.rs", "\n");
    write(
        root,
        "services/common/Cargo.toml",
        &crate_manifest("micro-common", false),
    );
    write(root, "Cargo.lock", "# lock\n");
    let first = commit_all(root, "definitions and sources");
    for service in DEPLOYED {
        fixture.set_image(service, &first[..12], &digest(&format!("{service}-v1")));
    }
    assert_ok(&fixture.render("minikube", &[]));
    let deployed = commit_all(root, "deploy(minikube): first");
    (fixture, deployed)
}

fn review(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("review")
        .args(args)
        .arg("--root")
        .arg(root)
        .output()
        .unwrap()
}

fn review_json(root: &Path, base: &str) -> Value {
    let output = review(root, &["--base", base, "--output", "json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    serde_json::from_str(&stdout(&output)).unwrap()
}

fn messages(doc: &Value) -> Vec<String> {
    doc["callouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {}: {}",
                c["object"]["kind"].as_str().unwrap(),
                c["object"]["name"].as_str().unwrap(),
                c["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn an_image_bump_names_exactly_the_commits_that_touched_the_services_inputs() {
    let (fixture, deployed) = repository();
    let root = fixture.root();
    write(
        root,
        "services/adderservice/src/main.rs",
        "fn main() { /* overflow */ }\n",
    );
    let fix = commit_all(root, "adderservice: 400 on overflow");
    write(root, "README.md", "docs\n");
    commit_all(root, "docs only");
    write(
        root,
        "services/webapp/src/main.rs",
        "fn main() { /* form */ }\n",
    );
    commit_all(root, "webapp: a nicer form");
    write(root, "services/common/src/lib.rs", "// shared\n");
    let shared = commit_all(root, "common: shared change");
    fixture.set_image("adderservice", &shared[..12], &digest("adderservice-v2"));
    assert_ok(&fixture.render("minikube", &[]));
    commit_all(root, "deploy(minikube): adderservice");

    let doc = review_json(root, &deployed);
    let env = &doc["environments"][0];
    assert_eq!(env["env"], "minikube");
    // Only adderservice's Deployment changes: the version label is on no other object.
    assert_eq!(
        (
            env["summary"]["added"].as_u64(),
            env["summary"]["deleted"].as_u64()
        ),
        (Some(0), Some(0)),
        "{env}"
    );
    let objects: Vec<(&str, &str)> = env["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["kind"].as_str().unwrap(), o["name"].as_str().unwrap()))
        .collect();
    assert_eq!(objects, [("Deployment", "adderservice")], "{env}");
    assert_eq!(env["integrity"]["status"], "asRendered", "{env}");
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "{images:?}");
    assert_eq!(images[0]["service"], "adderservice");
    let first = git(root, &["rev-parse", &format!("{deployed}~1")]);
    assert_eq!(images[0]["old"]["tag"], &first[..12]);
    assert_eq!(images[0]["new"]["tag"], &shared[..12]);
    let commits: Vec<&str> = images[0]["sources"]["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(commits, [shared.as_str(), fix.as_str()]);

    let text = stdout(&review(
        root,
        &["--base", &deployed, "--output", "markdown"],
    ));
    assert!(
        text.contains("common: shared change") && text.contains("adderservice: 400 on overflow"),
        "{text}"
    );
    assert!(
        !text.contains("docs only") && !text.contains("a nicer form"),
        "{text}"
    );
}

#[test]
fn lowered_replicas_added_and_deleted_objects_and_volume_claim_templates() {
    let (fixture, deployed) = repository();
    let root = fixture.root();
    edit(
        root,
        &format!("{MANIFESTS}/deployment-adderservice.yaml"),
        "replicas: 1",
        "replicas: 3",
    );
    let base = commit_all(root, "three adders");
    edit(
        root,
        &format!("{MANIFESTS}/deployment-adderservice.yaml"),
        "replicas: 3",
        "replicas: 2",
    );
    edit(
        root,
        &format!("{MANIFESTS}/statefulset-postgres.yaml"),
        "storage: 1Gi",
        "storage: 5Gi",
    );
    std::fs::remove_file(root.join(format!("{MANIFESTS}/service-adderservice.yaml"))).unwrap();
    write(
        root,
        &format!("{MANIFESTS}/configmap-extra.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: micro\ndata:\n  k: v\n",
    );
    commit_all(root, "by hand");

    let doc = review_json(root, &base);
    let env = &doc["environments"][0];
    assert_eq!(
        env["summary"],
        serde_json::json!({"changed": 2, "added": 1, "deleted": 1, "unchanged": 9}),
        "{env}"
    );
    assert_eq!(env["integrity"]["status"], "differs", "{env}");
    let said = messages(&doc);
    assert!(
        said.contains(&"Deployment adderservice: replicas lowered 3 → 2".to_string()),
        "{said:?}"
    );
    assert!(
        said.iter().any(|m| m.starts_with(
            "StatefulSet postgres: spec.volumeClaimTemplates changed: it is immutable"
        )),
        "{said:?}"
    );
    let changes: Vec<(String, String)> = env["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_string(),
                o["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(
        changes.contains(&("extra".into(), "added".into())),
        "{changes:?}"
    );
    assert!(
        changes.contains(&("adderservice".into(), "deleted".into())),
        "{changes:?}"
    );
    let _ = deployed;
}

#[test]
fn no_change_exits_0_and_a_bad_revision_exits_2_naming_it() {
    let (fixture, deployed) = repository();
    let root = fixture.root();
    write(root, "README.md", "docs\n");
    commit_all(root, "docs only");
    let output = review(root, &["--base", &deployed, "--output", "text"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("no environment's manifests differ"),
        "{}",
        stdout(&output)
    );
    let named = review(
        root,
        &["--base", &deployed, "--env", "minikube", "--output", "text"],
    );
    assert_eq!(named.status.code(), Some(0), "{}", stdout(&named));
    assert!(
        stdout(&named).contains("minikube: 0 changed, 0 added, 0 deleted (12 unchanged)"),
        "{}",
        stdout(&named)
    );

    let bad = review(root, &["--base", "no-such-branch"]);
    assert_eq!(bad.status.code(), Some(2));
    let err = stderr(&bad);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`no-such-branch`"), "{err}");
}

/// Counts `<details>` opened and closed in the HTML a CommonMark parser saw,
/// and checks every code block closes before the part ends.
fn check_balanced(part: &str) -> usize {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let (mut open, mut depth, mut code) = (0usize, 0i64, 0i64);
    for event in Parser::new(part) {
        match event {
            Event::Html(html) | Event::InlineHtml(html) => {
                let opened = html.matches("<details>").count() as i64;
                let closed = html.matches("</details>").count() as i64;
                depth += opened - closed;
                open += opened as usize;
                assert!(depth >= 0, "closed a <details> that was not open");
            }
            Event::Start(Tag::CodeBlock(_)) => {
                assert_eq!(depth, 1, "a code block outside its <details>");
                code += 1;
            }
            Event::End(TagEnd::CodeBlock) => code -= 1,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "a <details> left open");
    assert_eq!(code, 0);
    open
}

#[test]
fn two_thousand_changed_objects_split_into_balanced_parts_within_the_limit() {
    let (fixture, _) = repository();
    let root = fixture.root();
    let config_map = |i: usize, value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings-{i}\n  namespace: micro\ndata:\n  level: {value}\n  note: \"`code` here\"\n"
        )
    };
    for i in 0..2000 {
        write(
            root,
            &format!("{MANIFESTS}/configmap-settings-{i}.yaml"),
            &config_map(i, "low"),
        );
    }
    let base = commit_all(root, "2000 settings");
    for i in 0..2000 {
        write(
            root,
            &format!("{MANIFESTS}/configmap-settings-{i}.yaml"),
            &config_map(i, "high"),
        );
    }
    commit_all(root, "every setting changes");

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("parts");
    let output = review(root, &["--base", &base, "--out-dir", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let files = stdout(&output);
    let parts: Vec<String> = files
        .lines()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(parts.len() > 2, "{} parts", parts.len());
    let mut details = 0;
    for (i, part) in parts.iter().enumerate() {
        assert!(
            part.len() <= 65_536,
            "part {} is {} bytes",
            i + 1,
            part.len()
        );
        assert!(
            part.contains(&format!("part {} of {}", i + 1, parts.len())),
            "part {}",
            i + 1
        );
        details += check_balanced(part);
    }
    assert_eq!(details, 2000);
    assert!(
        parts[0].contains("2000 changed, 0 added, 0 deleted (12 unchanged)"),
        "{}",
        &parts[0][..500]
    );
}

/// Commit with a fixed author, committer and date: the same ids on every run.
fn commit_fixed(root: &Path, message: &str) {
    git(root, &["add", "-A"]);
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args([
            "-c",
            "user.name=Golden",
            "-c",
            "user.email=golden@example.com",
        ])
        .args(["commit", "-q", "-m", message])
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
}

const GOLDEN: &str = "tests/golden/review.md";

/// One scenario's markdown, byte for byte (`REVIEW_GOLDEN_UPDATE=1` rewrites
/// the file after a deliberate change of the format; review the diff).
#[test]
fn golden_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    let deployment = |replicas: u32, image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: micro\nspec:\n  replicas: {replicas}\n  \
             selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      \
             containers:\n      - name: web\n        image: {image}\n        resources:\n          requests: {{cpu: 100m}}\n"
        )
    };
    let secret = |value: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web\n  namespace: micro\nstringData:\n  token: {value}\n"
        )
    };
    let service = |kind: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: micro\nspec:\n  type: {kind}\n  ports:\n  - port: 80\n"
        )
    };
    let m = |name: &str| format!("{MANIFESTS}/{name}");
    write(
        root,
        &m("deployment-web.yaml"),
        &deployment(3, "r.example/web:1@sha256:aaaa"),
    );
    write(root, &m("secret-web.yaml"), &secret("first-value"));
    write(root, &m("service-web.yaml"), &service("ClusterIP"));
    commit_fixed(root, "base");
    write(
        root,
        &m("deployment-web.yaml"),
        &deployment(2, "r.example/web:2"),
    );
    write(root, &m("secret-web.yaml"), &secret("second-value"));
    write(root, &m("service-web.yaml"), &service("LoadBalancer"));
    commit_fixed(root, "head");

    let output = review(root, &["--base", "HEAD~1", "--env", "minikube"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let markdown = stdout(&output);
    assert!(!markdown.contains("first-value") && !markdown.contains("second-value"));
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    if std::env::var_os("REVIEW_GOLDEN_UPDATE").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &markdown).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("the golden file (REVIEW_GOLDEN_UPDATE=1 writes it)");
    assert_eq!(markdown, expected);
    check_balanced(&markdown);
}
