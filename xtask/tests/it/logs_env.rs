//! `cargo xtask logs --env minikube <service> [-f]` against the test cluster:
//! two replicas of webapp bound to log files (`log.testcluster.micro/<container>`),
//! their lines prefixed with the Pod's name.
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use testcluster::{BlockingTestCluster, Options};

fn kubectl(cluster: &BlockingTestCluster, args: &[&str]) -> Output {
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", cluster.kubeconfig())
        .output()
        .expect("kubectl is installed");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn replica(dir: &Path, name: &str, log: &str) -> String {
    let file = dir.join(format!("{name}.log"));
    std::fs::write(&file, log).unwrap();
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: micro\n  labels: {{app.kubernetes.io/name: webapp}}\n  \
         annotations:\n    log.testcluster.micro/webapp: {:?}\nspec:\n  containers: [{{name: webapp, image: webapp:1}}]\n---\n",
        file.display().to_string()
    )
}

fn start() -> (BlockingTestCluster, tempfile::TempDir) {
    let cluster = BlockingTestCluster::start(Options {
        rollout_delay: Duration::from_millis(50),
        ..Options::default()
    })
    .expect("test cluster");
    let dir = tempfile::tempdir().unwrap();
    kubectl(&cluster, &["create", "namespace", "micro"]);
    let pods =
        replica(dir.path(), "webapp-a", "a1\na2\n") + &replica(dir.path(), "webapp-bb", "b1\n");
    let file = dir.path().join("pods.yaml");
    std::fs::write(&file, pods).unwrap();
    kubectl(
        &cluster,
        &["apply", "--server-side", "-f", file.to_str().unwrap()],
    );
    for pod in ["webapp-a", "webapp-bb"] {
        kubectl(
            &cluster,
            &[
                "wait",
                "-n",
                "micro",
                &format!("pod/{pod}"),
                "--for=jsonpath={.status.phase}=Running",
                "--timeout=20s",
            ],
        );
    }
    (cluster, dir)
}

fn logs(cluster: &BlockingTestCluster, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(["logs", "--env", "minikube"])
        .args(extra)
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("NO_COLOR", "1");
    cmd
}

#[test]
fn logs_prints_every_replica_prefixed_and_follows_with_f() {
    let (cluster, dir) = start();
    let out = logs(&cluster, &["webapp"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        " webapp-a | a1\n webapp-a | a2\nwebapp-bb | b1\n"
    );
    let tail = logs(&cluster, &["webapp", "--tail", "1"]).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&tail.stdout),
        " webapp-a | a2\nwebapp-bb | b1\n"
    );

    let mut follow = logs(&cluster, &["webapp", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let mut seen: Vec<String> = (0..3).map(|_| lines.next().unwrap().unwrap()).collect();
    seen.sort();
    assert_eq!(seen, [" webapp-a | a1", " webapp-a | a2", "webapp-bb | b1"]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("webapp-bb.log"))
        .unwrap()
        .write_all(b"b2\n")
        .unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "webapp-bb | b2");
    let _ = follow.kill();
    let _ = follow.wait();
}

#[test]
fn logs_of_a_service_without_pods_is_one_line_exit_2() {
    let (cluster, _dir) = start();
    let out = logs(&cluster, &["auditservice"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("no pods of service `auditservice` in namespace micro"),
        "{err}"
    );
}
