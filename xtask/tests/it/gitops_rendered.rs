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
