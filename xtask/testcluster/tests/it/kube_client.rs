//! The kube crate (typed `Api<Deployment>`, watches, waiters) against the test cluster.
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use std::time::Duration;
use testcluster::{Options, TestCluster};

async fn start() -> (TestCluster, kube::Client) {
    let cluster = TestCluster::start(Options {
        rollout_delay: Duration::from_millis(100),
        ..Options::default()
    })
    .await
    .unwrap();
    let kubeconfig = Kubeconfig::read_from(cluster.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let ns: Api<Namespace> = Api::all(client.clone());
    let manifest = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "micro"}});
    ns.patch(
        "micro",
        &PatchParams::apply("test"),
        &Patch::Apply(&manifest),
    )
    .await
    .unwrap();
    (cluster, client)
}

fn deployment(image: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "adder", "namespace": "micro", "labels": {"app": "adder"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "adder"}},
            "template": {"metadata": {"labels": {"app": "adder"}},
                         "spec": {"containers": [{"name": "adder", "image": image, "ports": [{"containerPort": 8080, "name": "main"}],
                                                 "resources": {"requests": {"cpu": "1000m", "memory": "1024Mi"}}}]}}
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_deployments_apply_get_list_wait_and_delete() {
    let (cluster, client) = start().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "micro");
    let params = PatchParams::apply("sync");

    let created = api
        .patch("adder", &params, &Patch::Apply(&deployment("adder:1", 2)))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());
    let mf = created.metadata.managed_fields.as_ref().unwrap();
    assert_eq!(mf[0].manager.as_deref(), Some("sync"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));

    let done = await_condition(api.clone(), "adder", conditions::is_deployment_completed());
    let done = tokio::time::timeout(Duration::from_secs(20), done)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(done.status.unwrap().available_replicas, Some(2));

    let got = api.get("adder").await.unwrap();
    let spec = got.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    // Quantities are stored in canonical form, and re-applying them changes nothing.
    let requests = spec.template.spec.unwrap().containers[0]
        .resources
        .clone()
        .unwrap()
        .requests
        .unwrap();
    assert_eq!(requests["cpu"].0, "1");
    assert_eq!(requests["memory"].0, "1Gi");
    let again = api
        .patch("adder", &params, &Patch::Apply(&deployment("adder:1", 2)))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version,
        got.metadata.resource_version
    );
    let listed = api
        .list(&ListParams::default().labels("app=adder"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(
        api.list(&ListParams::default().labels("app=other"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=adder"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);

    // A dry run answers as if written and changes nothing.
    let mut dry = params.clone();
    dry.dry_run = true;
    let answer = api
        .patch("adder", &dry, &Patch::Apply(&deployment("adder:2", 2)))
        .await
        .unwrap();
    assert_eq!(answer.metadata.generation, Some(2));
    assert_eq!(api.get("adder").await.unwrap().metadata.generation, Some(1));

    api.delete("adder", &DeleteParams::default()).await.unwrap();
    match api.get("adder").await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 404);
            assert_eq!(status.message, "deployments.apps \"adder\" not found");
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let writes: Vec<_> = cluster
        .audit_events()
        .into_iter()
        .filter(|e| e.is_write() && e.resource == "deployments")
        .collect();
    let summary: Vec<(&str, bool, u16)> = writes
        .iter()
        .map(|e| (e.verb.as_str(), e.dry_run, e.code))
        .collect();
    assert_eq!(
        summary,
        [
            ("patch", false, 201),
            ("patch", false, 200),
            ("patch", true, 200),
            ("delete", false, 200)
        ]
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_delivers_events_in_order_and_resumes_from_a_resource_version() {
    let (cluster, client) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "micro");
    let start_rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let cm = |v: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"v": v}});
    let pp = PatchParams::apply("test");
    api.patch("c", &pp, &Patch::Apply(&cm("1"))).await.unwrap();
    api.patch("c", &pp, &Patch::Apply(&cm("2"))).await.unwrap();
    api.delete("c", &DeleteParams::default()).await.unwrap();

    let stream = api
        .watch(&WatchParams::default().timeout(5), &start_rv)
        .await
        .unwrap();
    let events: Vec<WatchEvent<ConfigMap>> = stream.take(3).try_collect().await.unwrap();
    let seen: Vec<(String, Option<String>)> = events
        .into_iter()
        .map(|e| match e {
            WatchEvent::Added(o) => ("ADDED".to_string(), o.data.unwrap()["v"].clone().into()),
            WatchEvent::Modified(o) => {
                ("MODIFIED".to_string(), o.data.unwrap()["v"].clone().into())
            }
            WatchEvent::Deleted(o) => ("DELETED".to_string(), o.data.unwrap()["v"].clone().into()),
            other => (format!("{other:?}"), None),
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("ADDED".to_string(), Some("1".to_string())),
            ("MODIFIED".into(), Some("2".into())),
            ("DELETED".into(), Some("2".into()))
        ]
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_watcher_sees_live_changes() {
    let (cluster, client) = start().await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), "micro");
    let mut objects = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    api.patch(
        "adder",
        &PatchParams::apply("sync"),
        &Patch::Apply(&deployment("adder:1", 1)),
    )
    .await
    .unwrap();
    // First the object as applied, later the status the simulated controller writes.
    let mut observed = None;
    while observed.is_none() {
        let d = tokio::time::timeout(Duration::from_secs(20), objects.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let status = d.status.unwrap_or_default();
        if status.observed_generation == Some(1) && status.ready_replicas == Some(1) {
            observed = Some(status);
        }
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_resource_version_is_a_conflict() {
    let (cluster, client) = start().await;
    let api: Api<Service> = Api::namespaced(client.clone(), "micro");
    let svc: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "adder"},
        "spec": {"selector": {"app": "adder"}, "ports": [{"name": "main", "port": 8080}]}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &svc).await.unwrap();
    let spec = created.spec.as_ref().unwrap();
    assert!(spec.cluster_ip.as_deref().unwrap().starts_with("10.96."));
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    let mut fresh = created.clone();
    fresh.metadata.labels = Some([("a".to_string(), "b".to_string())].into());
    let replaced = api
        .replace("adder", &PostParams::default(), &fresh)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    // `created` now carries an old resourceVersion.
    match api.replace("adder", &PostParams::default(), &created).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "Conflict");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    match api.create(&PostParams::default(), &svc).await {
        Err(kube::Error::Api(status)) => assert_eq!(
            (status.code, status.reason.as_str()),
            (409, "AlreadyExists")
        ),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    cluster.shutdown().await;
}

/// A TCP echo server on a free port: the process a Pod is bound to.
async fn echo_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portforward_over_websocket_reaches_the_bound_process_and_names_unbound_ports() {
    use k8s_openapi::api::core::v1::Pod;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (cluster, client) = start().await;
    let echo = echo_server().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "micro");
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "echo", "namespace": "micro",
                     "annotations": {"forward.testcluster.micro/7000": echo.to_string()}},
        "spec": {"containers": [{"name": "echo", "image": "echo:1"}]}});
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();

    let mut forward = pods.portforward("echo", &[7000, 7001]).await.unwrap();
    let mut stream = forward.take_stream(7000).unwrap();
    stream
        .write_all(b"hello through the API server")
        .await
        .unwrap();
    let mut back = vec![0u8; 28];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(back, b"hello through the API server");
    let unbound = forward.take_error(7001).unwrap().await.unwrap();
    assert!(
        unbound.contains("forward.testcluster.micro/7001"),
        "{unbound}"
    );
    drop(stream);
    drop(forward.take_stream(7001));
    forward.join().await.unwrap();

    let missing = pods.portforward("nope", &[7000]).await;
    assert!(missing.is_err(), "no such pod");
    cluster.shutdown().await;
}
