//! sync / diff / status on the system's real manifests: rendered by
//! `cargo xtask render` from the workspace's definitions (in a temporary
//! copy), committed, and synced to the in-memory API server.

use crate::manifest_support;

use manifest_support::{Fixture, assert_ok, stdout};
use std::process::{Command, Output};
use testcluster::{BlockingTestCluster, Options};

fn commit_all(root: &std::path::Path) {
    let repo = git2::Repository::init(root).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("test", "test@example.com").unwrap();
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        "render",
        &tree,
        &parents,
    )
    .unwrap();
}

fn xtask(fixture: &Fixture, cluster: &BlockingTestCluster, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .arg("--root")
        .arg(fixture.root())
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn the_rendered_minikube_environment_syncs_then_stays_in_sync() {
    let fixture = Fixture::new();
    assert_ok(&fixture.render("minikube", &[]));
    assert_ok(&fixture.render("aws", &[]));
    std::fs::remove_file(&fixture.images).unwrap();
    commit_all(fixture.root());
    let objects = fixture.manifests("minikube").len();
    let cluster = BlockingTestCluster::start(Options::default()).unwrap();

    let out = xtask(
        &fixture,
        &cluster,
        &["sync", "--env", "minikube", "--timeout", "60s"],
    );
    assert_ok(&out);
    assert!(
        stdout(&out).contains(&format!("{objects} created")),
        "{}",
        stdout(&out)
    );

    cluster.cluster().clear_audit_events();
    let out = xtask(&fixture, &cluster, &["sync", "--env", "minikube"]);
    assert_ok(&out);
    let writes: Vec<_> = cluster
        .audit_events()
        .into_iter()
        .filter(|e| e.is_write())
        .collect();
    assert!(writes.is_empty(), "the second sync wrote: {writes:?}");
    assert!(
        stdout(&out).contains(&format!("{objects} unchanged")),
        "{}",
        stdout(&out)
    );

    let diff = xtask(&fixture, &cluster, &["diff", "--env", "minikube"]);
    assert_eq!(diff.status.code(), Some(0), "{}", stdout(&diff));

    let scaled = Command::new("kubectl")
        .args([
            "scale",
            "deploy/adderservice",
            "-n",
            "micro",
            "--replicas=4",
        ])
        .env("KUBECONFIG", cluster.kubeconfig())
        .output()
        .unwrap();
    assert_ok(&scaled);
    let diff = xtask(&fixture, &cluster, &["diff", "--env", "minikube"]);
    assert_eq!(diff.status.code(), Some(1), "{}", stdout(&diff));
    assert!(stdout(&diff).contains("replicas: 4"), "{}", stdout(&diff));
    assert_ok(&xtask(&fixture, &cluster, &["sync", "--env", "minikube"]));
    assert_eq!(
        xtask(&fixture, &cluster, &["diff", "--env", "minikube"])
            .status
            .code(),
        Some(0)
    );

    // aws names another kube context: refused, nothing written.
    cluster.cluster().clear_audit_events();
    let refused = xtask(&fixture, &cluster, &["sync", "--env", "aws"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(cluster.audit_events().is_empty());
}

fn git(root: &std::path::Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert_ok(&out);
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// env.yaml committed without rendering: diff, status and sync warn (naming
/// the environment, the file and the fix) and behave as before; `--strict`
/// refuses with exit 2 and writes nothing; after render + commit, no warning.
#[test]
fn manifests_not_rendered_from_the_committed_definitions_are_caught() {
    let fixture = Fixture::new();
    assert_ok(&fixture.render("minikube", &[]));
    let root = fixture.root();
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Test Deployer"]);
    git(root, &["config", "user.email", "deployer@example.com"]);
    git(
        root,
        &["add", "deployment", "infrastructure", "environments"],
    );
    git(root, &["commit", "-q", "-m", "definitions and manifests"]);
    let cluster = BlockingTestCluster::start(Options::default()).unwrap();
    let synced = xtask(
        &fixture,
        &cluster,
        &["sync", "--env", "minikube", "--no-wait"],
    );
    assert_ok(&synced);
    assert!(
        !stderr_of(&synced).contains("warning"),
        "{}",
        stderr_of(&synced)
    );

    let env_yaml = root.join("environments/minikube/env.yaml");
    let text = std::fs::read_to_string(&env_yaml).unwrap();
    let edited = text.replacen("replicas: 1 ", "replicas: 2 ", 1);
    assert_ne!(text, edited, "env.yaml has no `replicas: 1`");
    std::fs::write(&env_yaml, edited).unwrap();
    git(root, &["commit", "-q", "-am", "two replicas, not rendered"]);

    let diff = xtask(&fixture, &cluster, &["diff", "--env", "minikube"]);
    assert_eq!(diff.status.code(), Some(0), "{}", stderr_of(&diff));
    let warning = stderr_of(&diff);
    let line = warning
        .lines()
        .find(|l| l.starts_with("warning:"))
        .unwrap_or_else(|| panic!("no warning: {warning}"));
    for part in [
        "`minikube`",
        "deployment-adderservice.yaml",
        "`cargo xtask render --env minikube` then `cargo xtask commit --env minikube`",
    ] {
        assert!(line.contains(part), "`{part}` missing from: {line}");
    }
    let status = xtask(&fixture, &cluster, &["status", "--env", "minikube"]);
    assert!(stderr_of(&status).contains(line), "{}", stderr_of(&status));

    cluster.cluster().clear_audit_events();
    for command in ["diff", "sync", "status"] {
        let strict = xtask(
            &fixture,
            &cluster,
            &[command, "--env", "minikube", "--strict"],
        );
        assert_eq!(
            strict.status.code(),
            Some(2),
            "{command}: {}",
            stderr_of(&strict)
        );
        assert!(
            stderr_of(&strict).contains("deployment-adderservice.yaml")
                && stderr_of(&strict).contains("--strict"),
            "{command}: {}",
            stderr_of(&strict)
        );
        assert!(stdout(&strict).is_empty(), "{command}: {}", stdout(&strict));
    }
    let writes: Vec<_> = cluster
        .audit_events()
        .into_iter()
        .filter(|e| e.is_write())
        .collect();
    assert!(writes.is_empty(), "--strict wrote: {writes:?}");

    assert_ok(&fixture.render("minikube", &[]));
    let committed = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["commit", "--env", "minikube", "--root"])
        .arg(root)
        .output()
        .unwrap();
    assert_ok(&committed);
    let diff = xtask(
        &fixture,
        &cluster,
        &["diff", "--env", "minikube", "--strict"],
    );
    assert_eq!(diff.status.code(), Some(1), "{}", stderr_of(&diff));
    assert!(
        !stderr_of(&diff).contains("warning"),
        "{}",
        stderr_of(&diff)
    );
    assert!(stdout(&diff).contains("replicas: 2"), "{}", stdout(&diff));
}
