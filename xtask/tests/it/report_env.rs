//! `cargo xtask report --env minikube` against the test cluster: the real
//! system of `cargo xtask dev` (its Redis and eventservice) stands behind the
//! `redis-0` Pod, bound by the test cluster's forward annotation; the password
//! comes from the Secret, the forward goes through the API server.
use crate::e2e_support;

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

/// The report Pod `--in-cluster` created, once it exists, as JSON.
fn report_pod(cluster: &BlockingTestCluster) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = kubectl(
            cluster,
            &[
                "get",
                "pods",
                "-n",
                "micro",
                "-l",
                "app.kubernetes.io/name=report",
                "-o",
                "json",
            ],
        );
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(pod) = list["items"].get(0) {
            return pod.clone();
        }
        assert!(Instant::now() < deadline, "no report pod appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `report --in-cluster`; plays the container: its output and exit code.
fn in_cluster(exit_code: u8, output: &str) -> (Output, serde_json::Value, BlockingTestCluster) {
    let (cluster, dir) = start_cluster("minikube", true);
    let child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["report", "--env", "minikube", "--in-cluster", "--image", "localhost:5000/report:c-test@sha256:0000000000000000000000000000000000000000000000000000000000000000", "--", "--json"])
        .env("KUBECONFIG", cluster.kubeconfig())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pod = report_pod(&cluster);
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let log = dir.path().join("report.log");
    std::fs::write(&log, output).unwrap();
    kubectl(
        &cluster,
        &[
            "annotate",
            "-n",
            "micro",
            &format!("pod/{name}"),
            &format!("log.testcluster.micro/report={}", log.display()),
            &format!("testcluster.micro/exit-code={exit_code}"),
        ],
    );
    let out = child.wait_with_output().unwrap();
    let left = kubectl(&cluster, &["get", "pods", "-n", "micro", "-o", "name"]);
    assert_eq!(
        String::from_utf8_lossy(&left.stdout),
        "",
        "the pod is deleted"
    );
    (out, pod, cluster)
}

#[test]
fn report_in_cluster_runs_a_one_off_pod_prints_its_log_and_deletes_it() {
    let table = "[{\"url\":\"/add\",\"count\":3}]\n";
    let (out, pod, _cluster) = in_cluster(0, table);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), table);
    assert_eq!(
        pod["metadata"]["labels"]["app.kubernetes.io/name"],
        "report"
    );
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    let container = &pod["spec"]["containers"][0];
    assert!(
        container["image"]
            .as_str()
            .unwrap()
            .starts_with("localhost:5000/report:c-test@sha256:")
    );
    assert_eq!(container["args"], serde_json::json!(["--json"]));
    assert_eq!(
        container["env"][0]["valueFrom"]["secretKeyRef"]["name"],
        "redis-credentials"
    );

    // A failed report: its log on stdout, one error line, exit 2, the pod deleted all the same.
    let (out, _, _cluster) = in_cluster(1, "error: no answer from eventservice\n");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "error: no answer from eventservice\n"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("the report pod report-") && err.contains("failed"),
        "{err}"
    );
}
