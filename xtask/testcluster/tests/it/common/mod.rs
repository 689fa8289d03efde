//! Shared by the kubectl tests: a cluster on a free port, the real kubectl
//! pointed at it, and manifests written to a temporary folder.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use testcluster::{AuditEvent, BlockingTestCluster, Options};

pub struct Kube {
    pub cluster: BlockingTestCluster,
    pub dir: tempfile::TempDir,
}

/// What kubectl printed and how it exited.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "kubectl failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }
}

pub fn start() -> Kube {
    start_with(Options {
        rollout_delay: Duration::from_millis(100),
        progress_deadline: Duration::from_millis(500),
        ..Options::default()
    })
}

pub fn start_with(opts: Options) -> Kube {
    let cluster = BlockingTestCluster::start(opts).expect("test cluster starts");
    Kube {
        cluster,
        dir: tempfile::tempdir().expect("temp dir"),
    }
}

impl Kube {
    /// Runs kubectl with KUBECONFIG naming the test cluster.
    pub fn kubectl(&self, args: &[&str]) -> Run {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.cluster.kubeconfig())
            .env("HOME", self.dir.path()) // kubectl's discovery cache stays private to the test
            .output()
            .expect("kubectl is installed (it is part of the test environment)");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Writes `text` to `<tmp>/<rel>` and returns the path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn audit(&self) -> Vec<AuditEvent> {
        self.cluster.audit_events()
    }

    /// The micro namespace plus a folder with a Deployment, a StatefulSet and a Service.
    pub fn apply_fixtures(&self) -> PathBuf {
        let ns = self.write("ns.yaml", NAMESPACE);
        self.kubectl(&["apply", "--server-side", "-f", ns.to_str().unwrap()])
            .ok();
        let folder = self.dir.path().join("manifests");
        self.write(
            "manifests/web.yaml",
            &web_deployment("localhost:5000/web:1.0", 2),
        );
        self.write("manifests/web-svc.yaml", WEB_SERVICE);
        self.write("manifests/redis.yaml", REDIS);
        self.kubectl(&["apply", "--server-side", "-f", folder.to_str().unwrap()])
            .ok();
        folder
    }
}

pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: micro\n";

pub fn web_deployment(image: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: micro
  labels: {{app: web, tier: front}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
        env:
        - {{name: LOG_FORMAT, value: json}}
        ports:
        - {{name: main, containerPort: 3000}}
        readinessProbe:
          httpGet: {{path: /readyz, port: main}}
"#
    )
}

pub const WEB_SERVICE: &str = r#"apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: micro
spec:
  type: NodePort
  selector: {app: web}
  ports:
  - {name: main, port: 3000}
"#;

pub const REDIS: &str = r#"apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: redis
  namespace: micro
spec:
  serviceName: redis
  replicas: 1
  selector:
    matchLabels: {app: redis}
  template:
    metadata:
      labels: {app: redis}
    spec:
      containers:
      - name: redis
        image: redis:7
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

/// A real redis-server on a free port of 127.0.0.1, stopped on drop: the process
/// a Pod is bound to. redis-server must be installed (Debian: `redis-server`).
pub struct RedisServer {
    pub port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("temp dir");
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--dir", path(dir.path())])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (Debian package redis-server)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        RedisServer {
            port,
            child,
            _dir: dir,
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one RESP command (`["SET", "k", "v"]`) and returns the first reply line.
pub fn redis_command(stream: &mut std::net::TcpStream, args: &[&str]) -> String {
    use std::io::{BufRead, Write};
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(req.as_bytes()).expect("write to redis");
    let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("a reply");
    if line.starts_with('$') && !line.starts_with("$-1") {
        line.clear();
        reader.read_line(&mut line).expect("a bulk reply");
    }
    line.trim_end().to_string()
}

/// A Pod with one container per name, bound by the given annotations.
pub fn pod(
    name: &str,
    containers: &[&str],
    restart: &str,
    annotations: &[(&str, String)],
) -> String {
    let mut text = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: micro\n  labels: {{app: {name}}}\n  annotations:\n"
    );
    for (k, v) in annotations {
        text.push_str(&format!("    {k}: {v:?}\n"));
    }
    if annotations.is_empty() {
        text = text.replace("  annotations:\n", "");
    }
    text.push_str(&format!(
        "spec:\n  restartPolicy: {restart}\n  containers:\n"
    ));
    for c in containers {
        text.push_str(&format!("  - name: {c}\n    image: localhost:5000/{c}:1\n"));
    }
    text
}
