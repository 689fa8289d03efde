//! Every command that talks to the cluster (secrets, diff, sync, status) says
//! a connection failure the same way, in one line naming the server and the
//! context (gitops::cluster::Cluster::explain), and a wrong context with the
//! contexts the kubeconfig really has. No cluster runs: the kubeconfig points
//! at a closed local port.

use std::path::{Path, PathBuf};
use std::process::Output;

/// A kubeconfig with contexts `minikube` and `staging` (current), both
/// pointing at a closed local port: a stopped cluster.
fn stopped_cluster_kubeconfig(dir: &Path) -> (PathBuf, String) {
    // Bind, then drop: the port was free and nothing listens on it now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("https://127.0.0.1:{port}");
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\n\
         clusters:\n- name: stopped\n  cluster:\n    server: {server}\n\
         users:\n- name: nobody\n  user:\n    token: not-used\n\
         contexts:\n- name: minikube\n  context:\n    cluster: stopped\n    user: nobody\n\
         - name: staging\n  context:\n    cluster: stopped\n    user: nobody\n\
         current-context: staging\n"
    );
    std::fs::write(&path, text).unwrap();
    (path, server)
}

fn xtask(kubeconfig: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .args(["--env", "minikube", "--kubeconfig"])
        .arg(kubeconfig)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

/// The command failed with exit 2 and exactly one line on stderr.
fn one_error_line(args: &[&str], out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    err
}

#[test]
fn a_stopped_cluster_is_one_line_naming_the_server_and_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, server) = stopped_cluster_kubeconfig(dir.path());
    let expected = format!("cannot reach the cluster at {server} (context `minikube`)");
    for args in [
        &["secrets"][..],
        &["status", "--context", "minikube"],
        &["diff", "--context", "minikube"],
        &["sync", "--context", "minikube"],
    ] {
        let err = one_error_line(args, &xtask(&kubeconfig, args));
        assert!(err.contains(&expected), "{args:?}: {err}");
        assert!(!err.contains("ServiceError"), "{args:?}: {err}");
    }
}

#[test]
fn a_wrong_context_lists_the_kubeconfigs_contexts() {
    let dir = tempfile::tempdir().unwrap();
    let (kubeconfig, _) = stopped_cluster_kubeconfig(dir.path());
    let contexts = "the kubeconfig's contexts: `minikube`, `staging`";

    // Named explicitly but absent.
    for args in [
        &["secrets", "--context", "prod"][..],
        &["status", "--context", "prod"],
    ] {
        let err = one_error_line(args, &xtask(&kubeconfig, args));
        assert!(err.contains("no context `prod`"), "{args:?}: {err}");
        assert!(err.contains(contexts), "{args:?}: {err}");
    }

    // The guard: the current context (staging) is not env.yaml's (minikube).
    let args = &["status"];
    let err = one_error_line(args, &xtask(&kubeconfig, args));
    assert!(err.contains("pass `--context minikube`"), "{err}");
    assert!(err.contains(contexts), "{err}");
}
