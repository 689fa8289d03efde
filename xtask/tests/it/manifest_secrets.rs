//! `cargo xtask secrets --env <env>` against the in-memory Kubernetes API
//! server (testcluster), checked with the real kubectl: creates the Secrets
//! the manifests reference, leaves them alone on a re-run, rotates on demand.

use std::path::Path;
use std::process::{Command, Output};

fn secrets(kubeconfig: &Path, args: &[&str], postgres_password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .args(["secrets", "--env", "minikube", "--kubeconfig"])
        .arg(kubeconfig)
        .args(args);
    command
        .env_remove("REDIS_PASSWORD")
        .env_remove("POSTGRES_PASSWORD")
        .env_remove("KUBECONFIG");
    if let Some(password) = postgres_password {
        command.env("POSTGRES_PASSWORD", password);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The decoded value of `key` of Secret `name` in namespace micro, via kubectl.
fn secret_value(kubeconfig: &Path, name: &str, template: &str) -> String {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "-n",
            "micro",
            "get",
            "secret",
            name,
            "-o",
            &format!("go-template={template}"),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "kubectl: {}", text(&output.stderr));
    text(&output.stdout)
}

fn password(kubeconfig: &Path, name: &str) -> String {
    secret_value(kubeconfig, name, "{{.data.password | base64decode}}")
}

#[test]
fn creates_keeps_and_rotates_the_referenced_secrets() {
    let cluster = testcluster::BlockingTestCluster::start(testcluster::Options::default()).unwrap();
    let kubeconfig = cluster.kubeconfig().to_path_buf();

    let output = secrets(&kubeconfig, &[], Some("first-password"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    assert!(out.contains("namespace/micro created"), "{out}");
    assert!(
        out.contains("secret/postgres-credentials created (password from $POSTGRES_PASSWORD)"),
        "{out}"
    );
    assert!(
        out.contains("secret/redis-credentials created (password generated)"),
        "{out}"
    );
    assert!(
        !out.contains("first-password"),
        "the value is printed: {out}"
    );
    assert_eq!(
        password(&kubeconfig, "postgres-credentials"),
        "first-password"
    );
    let redis = password(&kubeconfig, "redis-credentials");
    assert!(
        redis.len() == 64 && redis.chars().all(|c| c.is_ascii_hexdigit()),
        "generated: {redis:?}"
    );
    let managed = secret_value(
        &kubeconfig,
        "redis-credentials",
        "{{index .metadata.labels \"app.kubernetes.io/managed-by\"}}",
    );
    assert_eq!(
        managed, "xtask-secrets",
        "sync's prune must not own the Secrets"
    );

    // Again: nothing replaced, whatever the environment says.
    let output = secrets(&kubeconfig, &[], Some("other"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("secret/postgres-credentials unchanged"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        password(&kubeconfig, "postgres-credentials"),
        "first-password"
    );
    assert_eq!(password(&kubeconfig, "redis-credentials"), redis);

    // --rotate: new values, from the environment or generated.
    let output = secrets(&kubeconfig, &["--rotate"], Some("second-password"));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("secret/postgres-credentials rotated"),
        "{}",
        text(&output.stdout)
    );
    assert_eq!(
        password(&kubeconfig, "postgres-credentials"),
        "second-password"
    );
    let rotated = password(&kubeconfig, "redis-credentials");
    assert!(
        rotated.len() == 64 && rotated != redis,
        "redis password not rotated"
    );
}

#[test]
fn a_context_missing_from_the_kubeconfig_is_named() {
    let cluster = testcluster::BlockingTestCluster::start(testcluster::Options::default()).unwrap();
    let output = secrets(
        cluster.kubeconfig(),
        &["--context", "micro.k8s.local"],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    let err = text(&output.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("micro.k8s.local"),
        "{err}"
    );
    // The hint names what the kubeconfig does have.
    assert!(err.contains("contexts: `minikube`"), "{err}");
    // Nothing was asked of the cluster.
    assert!(
        cluster.audit_events().is_empty(),
        "{:?}",
        cluster.audit_events()
    );
}

/// The README's order on a new cluster: `secrets` first (it creates the namespace),
/// then `sync`, which must apply that namespace as the environment's own, not refuse
/// it as "exists, not ours".
#[test]
fn sync_after_secrets_takes_the_namespace_secrets_created_as_its_own() {
    let cluster = testcluster::BlockingTestCluster::start(testcluster::Options::default()).unwrap();
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    let output = secrets(&kubeconfig, &[], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("namespace/micro created"));

    let sync = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["sync", "--env", "minikube", "--no-wait", "--kubeconfig"])
        .arg(&kubeconfig)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(
        sync.status.success(),
        "sync after secrets: {}{}",
        text(&sync.stdout),
        text(&sync.stderr)
    );
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "deployment", "-n", "micro", "-o", "name"])
        .output()
        .unwrap();
    assert!(
        text(&output.stdout).contains("deployment.apps/webapp"),
        "{}",
        text(&output.stdout)
    );
}
