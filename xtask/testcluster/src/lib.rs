//! An in-memory Kubernetes API server for tests.
//!
//! No Kubernetes cluster can run on the build machine, yet `cargo xtask sync`,
//! `diff` and `status` must be tested against something that speaks the API over
//! HTTP. This crate is that something: it stores objects in memory, answers with
//! Kubernetes' own paths, status codes and `Status` bodies, simulates the status
//! that controllers would write (rollouts, ClusterIPs, NodePorts, a LoadBalancer's
//! hostname after `Options::load_balancer_delay`), and runs no
//! containers. The real `kubectl` (1.32) and the `kube` crate use it unchanged.
//!
//! # Starting it in-process
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use testcluster::{Options, TestCluster};
//! let cluster = TestCluster::start(Options::default()).await?; // 127.0.0.1:0: a free port
//! // `cluster.kubeconfig()` is a kubeconfig file (context `minikube`, namespace `micro`):
//! // run `kubectl` with KUBECONFIG=<that path>, or build a kube::Client from it.
//! println!("{}", cluster.url());
//! let writes = cluster.audit_events().into_iter().filter(|e| e.is_write()).count();
//! # let _ = writes;
//! cluster.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! From synchronous code (plain `#[test]`), [`BlockingTestCluster::start`] runs the
//! server on its own runtime thread.
//!
//! `Options::rollout_delay` is how long a Deployment/StatefulSet takes to look
//! rolled out after a spec change; `Options::progress_deadline` how long until a
//! rollout whose image tag is `broken` (`app:broken`, `app:broken@sha256:...`)
//! reports `Progressing=False` with reason `ProgressDeadlineExceeded`.
//!
//! # The API served
//!
//! - Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>[/<version>]`
//!   (legacy discovery only: kubectl falls back to it), `/openapi/v3` with one small
//!   document per group-version listing each kind's operations and parameters
//!   (kubectl reads it to learn that the server validates fields and supports dry-run).
//! - Kinds: Namespaces; v1 Services, ConfigMaps, Secrets, PersistentVolumeClaims,
//!   Pods (`status`, `log`, `portforward` subresources), ServiceAccounts; apps/v1
//!   Deployments and StatefulSets (`status`, `scale` subresources); policy/v1 PodDisruptionBudgets; networking.k8s.io/v1
//!   NetworkPolicies; coordination.k8s.io/v1 Leases. Anything else: 404 `the server could not find the requested resource`.
//! - Verbs: get, list (`labelSelector`, `fieldSelector` on `metadata.name` /
//!   `metadata.namespace`, `resourceVersion`), watch (ordered events, resume from
//!   `resourceVersion`, `timeoutSeconds`), create, update (409 on a stale
//!   `resourceVersion`), delete (a Namespace deletes what it holds), deletecollection,
//!   patch (JSON patch, merge patch, strategic merge patch, server-side apply with
//!   `fieldManager`, `force`, per-manager `managedFields`, conflicts), `dryRun=All`
//!   on every write, `fieldValidation=Strict` (unknown fields: 400).
//! - Table output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`) with
//!   kubectl's usual columns.
//! - Protobuf bodies for the kinds kubectl's typed clients send (see below), and the
//!   streaming Pod subresources `log` (`follow`, `tailLines`, `container`) and
//!   `portforward` (WebSocket), for Pods bound to local processes.
//! - An audit log: one JSON line per request ([`AuditEvent`]), in memory and
//!   optionally in a file.
//!
//! # Known differences from kube-apiserver
//!
//! - No authentication, authorization, admission webhooks or TLS; HTTP only.
//!   Protobuf bodies (`application/vnd.kubernetes.protobuf`, what client-go's typed
//!   clients such as `kubectl create configmap|secret|deployment|namespace`, `run` and
//!   `expose` send) are served for ConfigMaps, Secrets, Namespaces, Services, Pods and
//!   Deployments, through k8s-pb's messages and a table of their common fields: a
//!   request using a field outside the tables is a 400 naming it, and a response that
//!   would need one is sent as JSON. Lists, watches and Tables are JSON only; CBOR is 415.
//! - Legacy discovery only (no aggregated discovery); the OpenAPI v3 documents carry
//!   operations and parameters but no schemas (no `/openapi/v2`, `kubectl explain` fails).
//! - Validation: field names and types are checked against the k8s-openapi types
//!   (unknown fields: 400 under `fieldValidation=Strict`, dropped otherwise); semantic
//!   validation (selectors matching labels, immutable fields, name syntax) is absent,
//!   and duplicate fields are only caught in YAML (apply) bodies.
//! - Server-side apply knows list semantics from a built-in table (containers, env,
//!   ports, volumes, volumeMounts, conditions... keyed; every other list atomic)
//!   rather than from the schema; set-lists (`v:` elements) are treated as atomic.
//!   Apply is served on the main resource only (not on `status`).
//! - Pods run nothing. A test binds a Pod to local processes with annotations
//!   (`forward.testcluster.micro/<port>: host:port` for `pods/portforward`,
//!   `log.testcluster.micro/<container>: <file>` for `pods/log` with `follow`,
//!   `tailLines`, `container`, and `testcluster.micro/exit-code` to end a one-off Pod
//!   Succeeded or Failed); a Pod is Pending when created and Running a rollout delay
//!   later. Port-forward is served over WebSocket only: `v4.channel.k8s.io` (the kube
//!   crate) and `SPDY/3.1+portforward.k8s.io` (kubectl 1.31+), for which the Pod's one
//!   bound port is used because kubectl names the port only in compressed SPDY
//!   headers; native SPDY is refused with a 400.
//! - Controllers are simulated: no ReplicaSets, Endpoints or Events exist, no
//!   controller creates Pods, and there is no garbage collector; only a Namespace
//!   deletes its contents (at once: the `Terminating` phase does not last). Deletion
//!   ignores finalizers and grace periods.
//! - Watch history is never compacted (no 410 Gone); bookmarks are sent only to end
//!   `sendInitialEvents`. List items carry `apiVersion`/`kind`; `limit`/`continue`
//!   paging is ignored (the whole list comes back).
//! - Deleting most kinds answers a `Status` (kube-apiserver answers some with the
//!   object); a Namespace delete answers the object in phase `Terminating`.
//! - Pod templates keep no `metadata.creationTimestamp: null`; Service type changes
//!   keep allocated NodePorts.

// Layers, each importing only from those below it:
// http (server, handlers, watch, tables, discovery) → controllers → state →
// write (writes, defaults, validate, patch, apply) → store (objects, kinds, selectors, metadata).
mod audit;
mod bindings;
mod controllers;
mod errors;
mod http;
mod kubeconfig;
mod state;
mod store;
mod write;

pub use audit::AuditEvent;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How to start a [`TestCluster`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen; `127.0.0.1:0` picks a free port.
    pub listen: SocketAddr,
    /// Name of the context (and cluster and user) written to the kubeconfig.
    pub context: String,
    /// Default namespace of that context.
    pub namespace: String,
    /// Where to write the kubeconfig; `None`: a file in a private temporary
    /// directory, removed when the cluster is shut down or dropped.
    pub kubeconfig: Option<PathBuf>,
    /// Also append each audit event as one JSON line to this file.
    pub audit_log: Option<PathBuf>,
    /// How long a Deployment/StatefulSet takes to look rolled out after a spec change.
    pub rollout_delay: Duration,
    /// How long until a rollout of a `broken` image reports `ProgressDeadlineExceeded`.
    pub progress_deadline: Duration,
    /// How long until a LoadBalancer Service gets its hostname.
    pub load_balancer_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            context: "minikube".to_string(),
            namespace: "micro".to_string(),
            kubeconfig: None,
            audit_log: None,
            rollout_delay: Duration::from_millis(300),
            progress_deadline: Duration::from_secs(2),
            load_balancer_delay: Duration::from_secs(2),
        }
    }
}

/// A running in-memory API server. Dropping it stops the server too.
pub struct TestCluster {
    addr: SocketAddr,
    kubeconfig: PathBuf,
    state: Arc<state::Cluster>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _tempdir: Option<TempDir>,
}

impl TestCluster {
    /// Binds, starts serving and the simulated controllers, and writes the kubeconfig
    /// (only once the server answers).
    pub async fn start(opts: Options) -> anyhow::Result<TestCluster> {
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", opts.listen))?;
        let addr = listener.local_addr()?;
        let state = state::Cluster::new(&opts)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(http::server::serve(listener, state.clone(), rx));
        let (kubeconfig, tempdir) = match &opts.kubeconfig {
            Some(path) => (path.clone(), None),
            None => {
                let dir = TempDir::new()?;
                (dir.0.join("kubeconfig"), Some(dir))
            }
        };
        kubeconfig::write(
            &kubeconfig,
            &format!("http://{addr}"),
            &opts.context,
            &opts.namespace,
        )?;
        Ok(TestCluster {
            addr,
            kubeconfig,
            state,
            shutdown: Some(tx),
            task: Some(task),
            _tempdir: tempdir,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The kubeconfig file naming this server.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Every request answered so far, in order.
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        self.state.audit.events()
    }

    /// Forgets the audit events recorded so far (to count a command's own requests).
    pub fn clear_audit_events(&self) {
        self.state.audit.clear()
    }

    /// Stops serving (open watches end) and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Serves until the process is stopped (Ctrl-C / SIGTERM).
    pub async fn serve_until_signal(self) -> anyhow::Result<()> {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        self.shutdown().await;
        Ok(())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A [`TestCluster`] on its own runtime thread, for synchronous tests.
pub struct BlockingTestCluster {
    runtime: Option<tokio::runtime::Runtime>,
    cluster: Option<TestCluster>,
}

impl BlockingTestCluster {
    /// Starts the server on a private multi-threaded runtime.
    pub fn start(opts: Options) -> anyhow::Result<BlockingTestCluster> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let cluster = runtime.block_on(TestCluster::start(opts))?;
        Ok(BlockingTestCluster {
            runtime: Some(runtime),
            cluster: Some(cluster),
        })
    }

    /// The running cluster (addr, url, kubeconfig, audit events).
    pub fn cluster(&self) -> &TestCluster {
        self.cluster.as_ref().expect("cluster present until drop")
    }

    /// The kubeconfig file naming this server.
    pub fn kubeconfig(&self) -> &Path {
        self.cluster().kubeconfig()
    }

    /// Every request answered so far, in order.
    pub fn audit_events(&self) -> Vec<AuditEvent> {
        self.cluster().audit_events()
    }
}

impl Drop for BlockingTestCluster {
    fn drop(&mut self) {
        if let (Some(rt), Some(cluster)) = (self.runtime.take(), self.cluster.take()) {
            rt.block_on(cluster.shutdown());
            rt.shutdown_background();
        }
    }
}

/// A private temporary directory removed on drop (no tempfile dependency at runtime).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<TempDir> {
        let name = format!(
            "testcluster-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
