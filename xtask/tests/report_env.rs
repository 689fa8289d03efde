//! `cargo xtask report --env minikube` against the test cluster: the real
//! system of `cargo xtask dev` (its Redis and eventservice) stands behind the
//! `redis-0` Pod, bound by the test cluster's forward annotation; the password
//! comes from the Secret, the forward goes through the API server.
mod e2e_support;

use e2e_support::{DevSystem, http_status};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testcluster::{BlockingTestCluster, Options};

const PASSWORD: &str = "report-test pw";

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

fn apply(cluster: &BlockingTestCluster, dir: &Path, text: &str) {
    let file = dir.join("object.yaml");
    std::fs::write(&file, text).unwrap();
    kubectl(
        cluster,
        &["apply", "--server-side", "-f", file.to_str().unwrap()],
    );
}

fn redis_0(address: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: redis-0\n  namespace: micro\n  annotations:\n    \
         forward.testcluster.micro/6379: {address:?}\nspec:\n  containers: [{{name: redis, image: redis:7}}]\n"
    )
}

/// A cluster with the micro namespace, and the Secret unless `secret` is false.
fn start_cluster(context: &str, secret: bool) -> (BlockingTestCluster, tempfile::TempDir) {
    let cluster = BlockingTestCluster::start(Options {
        context: context.to_string(),
        rollout_delay: Duration::from_millis(50),
        ..Options::default()
    })
    .expect("test cluster");
    let dir = tempfile::tempdir().unwrap();
    kubectl(&cluster, &["create", "namespace", "micro"]);
    if secret {
        let literal = format!("--from-literal=password={PASSWORD}");
        kubectl(
            &cluster,
            &[
                "create",
                "secret",
                "generic",
                "redis-credentials",
                "-n",
                "micro",
                &literal,
            ],
        );
    }
    (cluster, dir)
}

fn report(cluster: &BlockingTestCluster, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["report", "--env", "minikube"])
        .args(extra)
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("NO_COLOR", "1")
        .env_remove("REDIS_URL")
        .output()
        .expect("run xtask")
}

fn wait_running(cluster: &BlockingTestCluster) {
    kubectl(
        cluster,
        &[
            "wait",
            "-n",
            "micro",
            "pod/redis-0",
            "--for=jsonpath={.status.phase}=Running",
            "--timeout=20s",
        ],
    );
}

/// `CONFIG SET requirepass`: dev's Redis has no password; the cluster's has one.
/// Connections made before keep working (eventservice's).
fn require_password(redis_url: &str) {
    let addr = redis_url
        .trim_start_matches("redis://")
        .trim_end_matches('/');
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "*4\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$11\r\nrequirepass\r\n${}\r\n{PASSWORD}\r\n",
        PASSWORD.len()
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(conn).read_line(&mut line).unwrap();
    assert_eq!(line.trim_end(), "+OK");
}

#[test]
fn report_env_prints_the_page_counts_of_the_system_behind_redis_0() {
    let system = DevSystem::start();
    for _ in 0..3 {
        assert_eq!(http_status(system.ports["webapp"], "/add"), Some(200));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let expected = loop {
        match system.report() {
            Ok(counts) if counts.get("/add").copied().unwrap_or(0) >= 3 => break counts,
            other if Instant::now() > deadline => {
                panic!("the dev report never counted /add: {other:?}")
            }
            _ => std::thread::sleep(Duration::from_millis(300)),
        }
    };
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(system.state_dir.path().join("dev.json")).unwrap(),
    )
    .unwrap();
    let redis_url = state["redis_url"].as_str().unwrap().to_string();
    require_password(&redis_url);

    let (cluster, dir) = start_cluster("minikube", true);
    let address = redis_url
        .trim_start_matches("redis://")
        .trim_end_matches('/');
    apply(&cluster, dir.path(), &redis_0(address));
    wait_running(&cluster);

    let started = Instant::now();
    let out = report(&cluster, &["--", "--json"]);
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let counts: std::collections::BTreeMap<String, u64> = rows
        .iter()
        .map(|r| {
            (
                r["url"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counts, expected, "the same table as against dev");
    eprintln!("report --env took {took:?}");

    let table = report(&cluster, &[]);
    assert!(table.status.success());
    assert!(
        String::from_utf8_lossy(&table.stdout)
            .lines()
            .any(|l| l.starts_with('/')),
        "a table"
    );
    let forwards = cluster
        .audit_events()
        .into_iter()
        .filter(|e| e.subresource.as_deref() == Some("portforward"))
        .count();
    assert!(
        forwards >= 2,
        "each report went through pods/portforward ({forwards})"
    );
}

fn one_line_error(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(out.stdout.is_empty());
    stderr
}

#[test]
fn a_missing_secret_a_missing_pod_and_a_wrong_context_are_one_line_each() {
    let (cluster, dir) = start_cluster("minikube", false);
    apply(&cluster, dir.path(), &redis_0("127.0.0.1:1"));
    let err = one_line_error(&report(&cluster, &[]));
    assert!(
        err.contains("Secret micro/redis-credentials does not exist")
            && err.contains("cargo xtask secrets --env minikube"),
        "{err}"
    );

    let (cluster, _dir) = start_cluster("minikube", true);
    let err = one_line_error(&report(&cluster, &[]));
    assert!(err.contains("pod micro/redis-0 does not exist"), "{err}");

    let (cluster, _dir) = start_cluster("kind-other", true);
    let err = one_line_error(&report(&cluster, &[]));
    assert!(
        err.contains("the current kube context is `kind-other`") && err.contains("minikube"),
        "{err}"
    );
}
