//! Shared fixture of the GitOps tests: an in-memory API server (with its
//! audit log), a temporary git repository holding an environment, and ways to
//! run the real `xtask` binary and the real `kubectl` against both.
#![allow(dead_code)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use testcluster::{AuditEvent, BlockingTestCluster, Options};

pub const ENV: &str = "minikube";

pub struct Fixture {
    pub cluster: BlockingTestCluster,
    pub repo: tempfile::TempDir,
}

/// A small system: namespace, config, a StatefulSet, two Deployments, Services.
pub fn system(image_tag: &str) -> Vec<(String, String)> {
    let mut files = vec![
        ("namespace-micro.yaml".to_string(), namespace()),
        (
            "configmap-settings.yaml".to_string(),
            configmap("settings", "LOG_FORMAT", "json"),
        ),
        (
            "statefulset-redis.yaml".to_string(),
            statefulset("redis", "redis:7"),
        ),
        ("service-redis.yaml".to_string(), service("redis", 6379)),
    ];
    for (name, port) in [("adderservice", 8080), ("webapp", 3000)] {
        files.push((
            format!("deployment-{name}.yaml"),
            deployment(name, &format!("localhost:5000/{name}:{image_tag}"), port),
        ));
        files.push((format!("service-{name}.yaml"), service(name, port)));
    }
    files
}

fn labels(name: &str) -> String {
    format!(
        "    app.kubernetes.io/name: {name}\n    app.kubernetes.io/part-of: micro\n    app.kubernetes.io/version: \"1\"\n    \
         app.kubernetes.io/managed-by: xtask\n"
    )
}

pub fn namespace() -> String {
    format!(
        "# generated\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: micro\n  labels:\n{}",
        labels("micro")
    )
}

pub fn configmap(name: &str, key: &str, value: &str) -> String {
    format!(
        "# generated\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: micro\n  labels:\n{}data:\n  {key}: \"{value}\"\n",
        labels(name)
    )
}

pub fn service(name: &str, port: u16) -> String {
    format!(
        "# generated\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: micro\n  labels:\n{}spec:\n  \
         selector:\n    app.kubernetes.io/name: {name}\n  ports:\n  - name: main\n    port: {port}\n    targetPort: {port}\n",
        labels(name)
    )
}

pub fn deployment(name: &str, image: &str, port: u16) -> String {
    format!(
        "# generated\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: micro\n  labels:\n{l}\
         spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n  template:\n    metadata:\n      \
         labels:\n        app.kubernetes.io/name: {name}\n    spec:\n      containers:\n      - name: {name}\n        image: {image}\n        \
         ports:\n        - name: main\n          containerPort: {port}\n        resources:\n          requests:\n            cpu: 50m\n            \
         memory: 64Mi\n          limits:\n            cpu: 500m\n            memory: 128Mi\n",
        l = labels(name)
    )
}

pub fn statefulset(name: &str, image: &str) -> String {
    format!(
        "# generated\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: {name}\n  namespace: micro\n  labels:\n{l}\
         spec:\n  serviceName: {name}\n  replicas: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n  template:\n    \
         metadata:\n      labels:\n        app.kubernetes.io/name: {name}\n    spec:\n      containers:\n      - name: {name}\n        \
         image: {image}\n",
        l = labels(name)
    )
}

impl Fixture {
    /// A fresh server and a repository with env.yaml (context `minikube`) and `files` committed.
    pub fn new(files: &[(String, String)]) -> Fixture {
        Fixture::with_options(files, Fixture::options())
    }

    /// The server options of [`Fixture::new`]: quick rollouts, a 1 s deadline.
    pub fn options() -> Options {
        Options {
            rollout_delay: std::time::Duration::from_millis(200),
            progress_deadline: std::time::Duration::from_secs(1),
            ..Options::default()
        }
    }

    /// Like [`Fixture::new`] with these server options (a fixed address and
    /// kubeconfig, to restart the server where a client expects it).
    pub fn with_options(files: &[(String, String)], options: Options) -> Fixture {
        let cluster = BlockingTestCluster::start(options).expect("start the test API server");
        let repo = tempfile::tempdir().expect("temp dir");
        git2::Repository::init(repo.path()).expect("git init");
        let fixture = Fixture { cluster, repo };
        fixture.write_file(
            &format!("environments/{ENV}/env.yaml"),
            "context: minikube\nregistry: localhost:5000\nnamespace: micro\n",
        );
        fixture.write_file(
            "environments/aws/env.yaml",
            "context: arn:aws:eks:eu-west-1:1:cluster/prod\nregistry: r.example\nnamespace: micro\n",
        );
        for (name, text) in files {
            fixture.write_manifest(name, text);
        }
        fixture.commit("initial manifests");
        fixture
    }

    /// Stop the server (watches end, connections are refused), run
    /// `while_down`, then start an empty server with `options` (give it the
    /// old address and kubeconfig path to look like the same cluster back).
    pub fn restart_cluster(&mut self, options: Options, while_down: impl FnOnce()) {
        let stand_in =
            BlockingTestCluster::start(Options::default()).expect("start a stand-in server");
        drop(std::mem::replace(&mut self.cluster, stand_in));
        while_down();
        self.cluster = BlockingTestCluster::start(options).expect("restart the test API server");
    }

    pub fn root(&self) -> &Path {
        self.repo.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.cluster.kubeconfig().to_path_buf()
    }

    pub fn write_file(&self, relative: &str, text: &str) {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    pub fn write_manifest(&self, name: &str, text: &str) {
        self.write_file(&format!("environments/{ENV}/manifests/{name}"), text);
    }

    pub fn remove_manifest(&self, name: &str) {
        std::fs::remove_file(
            self.root()
                .join(format!("environments/{ENV}/manifests/{name}")),
        )
        .unwrap();
    }

    /// Commit the whole working tree (adds and removals); returns the commit id.
    pub fn commit(&self, message: &str) -> String {
        let repo = git2::Repository::open(self.root()).unwrap();
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let signature = git2::Signature::now("test", "test@example.com").unwrap();
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        repo.commit(
            Some("HEAD"),
            &signature,
            &signature,
            message,
            &tree,
            &parents,
        )
        .unwrap()
        .to_string()
    }

    pub fn xtask_command(&self, args: &[&str]) -> Command {
        self.xtask_command_in(self.root(), args)
    }

    /// Like [`Fixture::xtask_command`], reading git from another repository.
    pub fn xtask_command_in(&self, repo: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .args(args)
            .arg("--root")
            .arg(repo)
            .env("KUBECONFIG", self.kubeconfig())
            .env("NO_COLOR", "1");
        command
    }

    /// Run `xtask <args> --repo <repo>` with KUBECONFIG pointing at the server.
    pub fn xtask(&self, args: &[&str]) -> Output {
        self.xtask_command(args).output().expect("run xtask")
    }

    /// `xtask sync --env minikube` that must succeed.
    pub fn sync(&self, extra: &[&str]) -> String {
        let mut args = vec!["sync", "--env", ENV];
        args.extend_from_slice(extra);
        let out = self.xtask(&args);
        assert!(out.status.success(), "sync failed: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .output()
            .expect("run kubectl")
    }

    /// kubectl that must succeed; its stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply --server-side -f -` of `yaml` (field manager kubectl).
    pub fn kubectl_apply(&self, yaml: &str) {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .args(["apply", "--server-side", "-f", "-"])
            .env("KUBECONFIG", self.kubeconfig())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl apply failed: {}",
            describe(&out)
        );
    }

    pub fn events(&self) -> Vec<AuditEvent> {
        self.cluster.audit_events()
    }

    pub fn clear_events(&self) {
        self.cluster.cluster().clear_audit_events();
    }

    /// Prints what xtask (not the test's own kubectl calls) asked of the
    /// cluster since the last `clear_events`: the figures of the closing note,
    /// read with `--nocapture`.
    pub fn print_audit_counts(&self, scenario: &str) {
        let ours: Vec<AuditEvent> = self
            .events()
            .into_iter()
            .filter(|e| !e.user_agent.as_deref().unwrap_or("").starts_with("kubectl"))
            .collect();
        let count = |verbs: &[&str], dry_run: bool| {
            ours.iter()
                .filter(|e| verbs.contains(&e.verb.as_str()) && e.dry_run == dry_run)
                .count()
        };
        eprintln!(
            "audit[{scenario}]: {} requests: {} list, {} get, {} stored writes, {} deletes, {} dry-run",
            ours.len(),
            count(&["list"], false),
            count(&["get"], false),
            count(&["create", "update", "patch"], false),
            count(&["delete", "deletecollection"], false),
            ours.iter().filter(|e| e.dry_run).count(),
        );
    }

    /// Writes that were really stored (not dry-run).
    pub fn stored_writes(&self) -> Vec<AuditEvent> {
        self.events()
            .into_iter()
            .filter(|e| e.is_write() && !e.dry_run)
            .collect()
    }
}

pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Sends SIGTERM to `child` and waits for it to exit; the deadline only keeps a
/// watch that ignores the signal from hanging the test run.
pub fn terminate(child: &mut std::process::Child) -> std::process::ExitStatus {
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the watch did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The next stderr line containing `what` (the deadline only keeps a loaded
/// machine from failing the test); the lines before it go to `seen`.
pub fn wait_for_line(lines: &Receiver<String>, what: &str, seen: &mut Vec<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(what) => {
                seen.push(line.clone());
                return line;
            }
            Ok(line) => seen.push(line),
            Err(_) => break,
        }
    }
    panic!("no stderr line with `{what}`:\n{}", seen.join("\n"));
}

/// The child's stderr, line by line, read on a thread of its own.
pub fn stderr_lines(child: &mut std::process::Child) -> Receiver<String> {
    let stderr = child.stderr.take().unwrap();
    lines_of(stderr)
}

/// The child's stdout, line by line, read on a thread of its own.
pub fn stdout_lines(child: &mut std::process::Child) -> Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    lines_of(stdout)
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}
