//! `cargo xtask commit --env <env>` in a temporary git repository (real git):
//! only that environment's folder is committed, the message names what
//! changed, a repeat commits nothing, staged changes and a detached HEAD are refused.

use crate::manifest_support;
use manifest_support::*;
use std::path::Path;
use std::process::{Command, Output};

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
    stdout(&output)
}

/// A fixture whose root is a git repository with one commit of the definitions.
fn repository() -> Fixture {
    let fixture = Fixture::new();
    let root = fixture.root();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Test Deployer"]);
    git(root, &["config", "user.email", "deployer@example.com"]);
    git(
        root,
        &["add", "deployment", "infrastructure", "environments"],
    );
    git(root, &["commit", "-q", "-m", "definitions"]);
    fixture
}

fn commit(fixture: &Fixture, env: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["commit", "--env", env, "--root"])
        .arg(fixture.root())
        .output()
        .unwrap()
}

fn head(root: &Path) -> String {
    git(root, &["rev-parse", "HEAD"]).trim().to_string()
}

#[test]
fn commits_only_the_environment_folder_and_names_the_changed_services() {
    let fixture = repository();
    let root = fixture.root();
    // Someone's unrelated work in progress: must stay exactly as it is.
    let webapp = root.join("deployment/webapp.yaml");
    let edited = format!(
        "{}# work in progress\n",
        std::fs::read_to_string(&webapp).unwrap()
    );
    std::fs::write(&webapp, &edited).unwrap();
    std::fs::write(root.join("notes.txt"), "untracked\n").unwrap();
    assert_ok(&fixture.render("minikube", &[]));
    assert_ok(&fixture.render("aws", &[]));

    let output = commit(&fixture, "minikube");
    assert_ok(&output);
    let files = git(root, &["show", "--name-only", "--format=", "HEAD"]);
    assert!(files.lines().count() >= 10, "{files}");
    for file in files.lines() {
        assert!(
            file.starts_with("environments/minikube/manifests/"),
            "committed {file}"
        );
    }
    let subject = git(root, &["log", "-1", "--format=%s"]);
    assert!(
        subject.starts_with(
            "deploy(minikube): adderservice new at 1a2b3c4, auditservice new at 1a2b3c4"
        ),
        "{subject}"
    );
    assert!(
        subject.contains("webapp new at 1a2b3c4") && subject.contains("redis new at 7"),
        "{subject}"
    );
    let status = git(root, &["status", "--porcelain"]);
    assert!(status.contains(" M deployment/webapp.yaml"), "{status}");
    assert!(
        status.contains("?? notes.txt") && status.contains("?? environments/aws/"),
        "{status}"
    );
    assert!(!status.contains("environments/minikube"), "{status}");
    assert_eq!(std::fs::read_to_string(&webapp).unwrap(), edited);

    // Nothing changed: nothing committed.
    let before = head(root);
    let output = commit(&fixture, "minikube");
    assert_ok(&output);
    assert!(
        stdout(&output).contains("nothing to commit"),
        "{}",
        stdout(&output)
    );
    assert_eq!(head(root), before);

    // A new adderservice image: the message says which, the body the digests.
    fixture.set_image("adderservice", "5d6e7f8", &digest("adderservice-v2"));
    assert_ok(&fixture.render("minikube", &[]));
    assert_ok(&commit(&fixture, "minikube"));
    let subject = git(root, &["log", "-1", "--format=%s"]);
    assert_eq!(
        subject.trim(),
        "deploy(minikube): adderservice 1a2b3c4 -> 5d6e7f8"
    );
    let body = git(root, &["log", "-1", "--format=%b"]);
    let line = format!(
        "adderservice: {} -> {}",
        digest("adderservice-v1"),
        digest("adderservice-v2")
    );
    assert!(body.contains(&line), "{body}");
    let files = git(root, &["show", "--name-only", "--format=", "HEAD"]);
    let mut files: Vec<&str> = files.lines().collect();
    files.sort();
    // Only the Deployment: the version label is on no other object.
    assert_eq!(
        files,
        ["environments/minikube/manifests/deployment-adderservice.yaml"]
    );
}

#[test]
fn deletions_and_configuration_changes_are_committed_too() {
    let fixture = repository();
    let root = fixture.root();
    assert_ok(&fixture.render("minikube", &[]));
    assert_ok(&commit(&fixture, "minikube"));

    // adderservice retired: its files are deleted in the commit.
    std::fs::remove_file(root.join("deployment/adderservice.yaml")).unwrap();
    let webapp = root.join("deployment/webapp.yaml");
    let text = std::fs::read_to_string(&webapp)
        .unwrap()
        .replace("[adderservice, ", "[");
    std::fs::write(&webapp, text).unwrap();
    assert_ok(&fixture.render("minikube", &[]));
    assert_ok(&commit(&fixture, "minikube"));
    let changes = git(root, &["show", "--name-status", "--format=", "HEAD"]);
    assert!(
        changes.contains("D\tenvironments/minikube/manifests/deployment-adderservice.yaml"),
        "{changes}"
    );
    assert!(
        changes.contains("D\tenvironments/minikube/manifests/service-adderservice.yaml"),
        "{changes}"
    );
    assert!(!changes.contains("deployment/"), "{changes}");
    assert_eq!(
        git(root, &["log", "-1", "--format=%s"]).trim(),
        "deploy(minikube): adderservice removed"
    );

    // A size change in env.yaml: env.yaml and the manifests, no image named.
    let env_yaml = root.join("environments/minikube/env.yaml");
    let text = std::fs::read_to_string(&env_yaml)
        .unwrap()
        .replace("cpu: 25m", "cpu: 30m");
    std::fs::write(&env_yaml, text).unwrap();
    assert_ok(&fixture.render("minikube", &[]));
    assert_ok(&commit(&fixture, "minikube"));
    let subject = git(root, &["log", "-1", "--format=%s"]);
    assert!(
        subject.starts_with("deploy(minikube): configuration only"),
        "{subject}"
    );
    let files = git(root, &["show", "--name-only", "--format=", "HEAD"]);
    assert!(files.contains("environments/minikube/env.yaml"), "{files}");
}

#[test]
fn refuses_when_other_changes_are_staged() {
    let fixture = repository();
    let root = fixture.root();
    assert_ok(&fixture.render("minikube", &[]));
    let webapp = root.join("deployment/webapp.yaml");
    std::fs::write(
        &webapp,
        format!("{}# staged\n", std::fs::read_to_string(&webapp).unwrap()),
    )
    .unwrap();
    git(root, &["add", "deployment/webapp.yaml"]);
    let before = head(root);
    let output = commit(&fixture, "minikube");
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("already staged") && err.contains("deployment/webapp.yaml"),
        "{err}"
    );
    assert_eq!(head(root), before);
    // The index is as the user left it.
    assert_eq!(
        git(root, &["diff", "--cached", "--name-only"]).trim(),
        "deployment/webapp.yaml"
    );
}

#[test]
fn refuses_on_a_detached_head_and_an_unknown_environment() {
    let fixture = repository();
    let root = fixture.root();
    assert_ok(&fixture.render("minikube", &[]));
    git(root, &["checkout", "-q", "--detach"]);
    let output = commit(&fixture, "minikube");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("HEAD is detached"),
        "{}",
        stderr(&output)
    );

    git(root, &["checkout", "-q", "main"]);
    let output = commit(&fixture, "staging");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no environment `staging`"),
        "{}",
        stderr(&output)
    );
}
