//! The real kubectl (1.32) against the test cluster: every command the
//! deploy tooling and its users rely on.
use crate::common;

use common::{path, start, web_deployment};

#[test]
fn apply_server_side_then_get_shows_kubectls_usual_columns() {
    let k = start();
    k.apply_fixtures();
    let writes: Vec<_> = k.audit().into_iter().filter(|e| e.is_write()).collect();
    assert_eq!(writes.len(), 4, "namespace + 3 objects: {writes:#?}");
    assert!(writes.iter().all(|e| e.verb == "patch"
        && e.patch_type.as_deref() == Some("application/apply-patch+yaml")
        && e.field_manager.as_deref() == Some("kubectl")
        && e.code == 201));

    k.kubectl(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "micro",
        "--timeout=20s",
    ])
    .ok();
    k.kubectl(&[
        "rollout",
        "status",
        "sts/redis",
        "-n",
        "micro",
        "--timeout=20s",
    ])
    .ok();
    let out = k.kubectl(&["get", "deploy,sts,svc", "-n", "micro"]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let cols = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(
        cols(lines[0]),
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    );
    assert_eq!(
        cols(lines[1])[..4],
        ["deployment.apps/web", "2/2", "2", "2"]
    );
    let sts_header = lines
        .iter()
        .position(|l| l.starts_with("NAME") && l.contains("READY") && !l.contains("UP-TO-DATE"))
        .unwrap();
    assert_eq!(
        cols(lines[sts_header + 1])[..2],
        ["statefulset.apps/redis", "1/1"]
    );
    let svc_header = lines.iter().position(|l| l.contains("CLUSTER-IP")).unwrap();
    assert_eq!(
        cols(lines[svc_header]),
        [
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE"
        ]
    );
    let svc = cols(lines[svc_header + 1]);
    assert_eq!(svc[0], "service/web");
    assert_eq!(svc[1], "NodePort");
    assert!(svc[2].starts_with("10.96."), "{svc:?}");
    assert_eq!(svc[3], "<none>");
    let node_port: u32 = svc[4]
        .strip_prefix("3000:")
        .and_then(|p| p.strip_suffix("/TCP"))
        .unwrap()
        .parse()
        .unwrap();
    assert!((30000..=32767).contains(&node_port));
}

#[test]
fn defaults_appear_like_a_real_servers_and_reapply_changes_nothing() {
    let k = start();
    let folder = k.apply_fixtures();
    let out = k.kubectl(&["get", "deploy", "web", "-n", "micro", "-o", "json"]);
    let d: serde_json::Value = serde_json::from_str(&out.ok().stdout).unwrap();
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(
        pod["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    assert_eq!(pod["containers"][0]["readinessProbe"]["periodSeconds"], 10);
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(d["metadata"]["generation"], 1);
    let uid = d["metadata"]["uid"].as_str().unwrap().to_string();

    k.kubectl(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "micro",
        "--timeout=20s",
    ])
    .ok();
    let before = k.kubectl(&[
        "get",
        "deploy",
        "web",
        "-n",
        "micro",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    k.kubectl(&["apply", "--server-side", "-f", path(&folder)])
        .ok();
    let after = k.kubectl(&[
        "get",
        "deploy",
        "web",
        "-n",
        "micro",
        "-o",
        "jsonpath={.metadata.resourceVersion} {.metadata.generation} {.metadata.uid}",
    ]);
    assert_eq!(
        after.stdout,
        format!("{} 1 {uid}", before.stdout),
        "an unchanged apply is a no-op"
    );
}

#[test]
fn scale_bumps_generation_and_rolls_out() {
    let k = start();
    k.apply_fixtures();
    k.kubectl(&["scale", "deploy/web", "-n", "micro", "--replicas=4"])
        .ok();
    let scale = k.audit().into_iter().rfind(|e| e.verb == "patch").unwrap();
    assert_eq!(scale.subresource.as_deref(), Some("scale"));
    k.kubectl(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "micro",
        "--timeout=20s",
    ])
    .ok();
    let out = k.kubectl(&["get", "deploy", "web", "-n", "micro", "-o",
        "jsonpath={.spec.replicas} {.metadata.generation} {.status.observedGeneration} {.status.availableReplicas}"]);
    assert_eq!(out.ok().stdout, "4 2 2 4");
    k.kubectl(&["scale", "sts/redis", "-n", "micro", "--replicas=3"])
        .ok();
    k.kubectl(&[
        "rollout",
        "status",
        "sts/redis",
        "-n",
        "micro",
        "--timeout=20s",
    ])
    .ok();
    let out = k.kubectl(&[
        "get",
        "sts",
        "redis",
        "-n",
        "micro",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(out.ok().stdout, "3");
}

#[test]
fn delete_then_get_is_not_found() {
    let k = start();
    let folder = k.apply_fixtures();
    k.kubectl(&["delete", "deploy/web", "-n", "micro"]).ok();
    let out = k.kubectl(&["get", "deploy", "web", "-n", "micro"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("Error from server (NotFound): deployments.apps \"web\" not found"),
        "{}",
        out.stderr
    );
    k.kubectl(&["delete", "-f", path(&folder), "--ignore-not-found"])
        .ok();
    let out = k.kubectl(&["get", "deploy,sts,svc", "-n", "micro"]);
    assert!(
        out.ok()
            .stderr
            .contains("No resources found in micro namespace."),
        "{}",
        out.stderr
    );
}

#[test]
fn deleting_a_namespace_deletes_what_it_holds() {
    let k = start();
    k.apply_fixtures();
    k.kubectl(&["delete", "namespace", "micro"]).ok();
    let out = k.kubectl(&["get", "deploy,sts,svc", "-A", "-o", "name"]);
    assert_eq!(out.ok().stdout, "");
    let out = k.kubectl(&["get", "ns", "micro"]);
    assert!(out.stderr.contains("NotFound"), "{}", out.stderr);
}

#[test]
fn another_field_manager_conflicts_unless_it_forces() {
    let k = start();
    k.apply_fixtures();
    let other = k.write(
        "other/web.yaml",
        &web_deployment("localhost:5000/web:1.0", 5),
    );
    let out = k.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "-f",
        path(&other),
    ]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("Apply failed with 1 conflict: conflict with \"kubectl\": .spec.replicas"),
        "{}",
        out.stderr
    );
    let conflict = k.audit().into_iter().rfind(|e| e.verb == "patch").unwrap();
    assert_eq!(conflict.code, 409);

    k.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager",
        "other",
        "--force-conflicts",
        "-f",
        path(&other),
    ])
    .ok();
    let out = k.kubectl(&[
        "get",
        "deploy",
        "web",
        "-n",
        "micro",
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    let d: serde_json::Value = serde_json::from_str(&out.ok().stdout).unwrap();
    assert_eq!(d["spec"]["replicas"], 5);
    let managers: Vec<(&str, &str)> = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().unwrap(),
                m["operation"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("kubectl", "Apply")) && managers.contains(&("other", "Apply")),
        "{managers:?}"
    );
    let kubectl = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == "kubectl")
        .unwrap();
    assert!(
        kubectl["fieldsV1"]["f:spec"].get("f:replicas").is_none(),
        "forced: kubectl lost .spec.replicas"
    );
    assert!(
        kubectl["fieldsV1"]["f:spec"].get("f:template").is_some(),
        "shared fields stay co-owned"
    );
}

#[test]
fn a_field_dropped_from_the_applied_configuration_is_removed() {
    let k = start();
    k.apply_fixtures();
    let fewer = web_deployment("localhost:5000/web:1.0", 2)
        .replace(", tier: front", "")
        .replace(
            "        env:\n        - {name: LOG_FORMAT, value: json}\n",
            "",
        );
    let file = k.write("fewer/web.yaml", &fewer);
    k.kubectl(&["apply", "--server-side", "-f", path(&file)])
        .ok();
    let out = k.kubectl(&["get", "deploy", "web", "-n", "micro", "-o", "json"]);
    let d: serde_json::Value = serde_json::from_str(&out.ok().stdout).unwrap();
    assert_eq!(d["metadata"]["labels"], serde_json::json!({"app": "web"}));
    assert!(
        d["spec"]["template"]["spec"]["containers"][0]
            .get("env")
            .is_none(),
        "{d}"
    );
    assert_eq!(d["metadata"]["generation"], 2);
}

#[test]
fn diff_exits_0_when_the_same_and_1_when_different() {
    let k = start();
    let folder = k.apply_fixtures();
    k.kubectl(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "micro",
        "--timeout=20s",
    ])
    .ok();
    let same = k.kubectl(&["diff", "--server-side", "-f", path(&folder)]);
    assert_eq!(same.code, 0, "{}{}", same.stdout, same.stderr);
    let same = k.kubectl(&["diff", "-f", path(&folder)]);
    assert_eq!(
        same.code, 0,
        "client-side diff: {}{}",
        same.stdout, same.stderr
    );

    k.write(
        "manifests/web.yaml",
        &web_deployment("localhost:5000/web:2.0", 2),
    );
    let writes_before = k
        .audit()
        .iter()
        .filter(|e| e.is_write() && !e.dry_run)
        .count();
    let changed = k.kubectl(&["diff", "--server-side", "-f", path(&folder)]);
    assert_eq!(changed.code, 1, "{}{}", changed.stdout, changed.stderr);
    assert!(
        changed
            .stdout
            .contains("-        image: localhost:5000/web:1.0"),
        "{}",
        changed.stdout
    );
    assert!(
        changed
            .stdout
            .contains("+        image: localhost:5000/web:2.0"),
        "{}",
        changed.stdout
    );
    let changed = k.kubectl(&["diff", "-f", path(&folder)]);
    assert_eq!(
        changed.code, 1,
        "client-side diff: {}{}",
        changed.stdout, changed.stderr
    );
    let writes_after = k
        .audit()
        .iter()
        .filter(|e| e.is_write() && !e.dry_run)
        .count();
    assert_eq!(
        writes_before, writes_after,
        "diff only makes dry-run writes"
    );
    let image = k.kubectl(&[
        "get",
        "deploy",
        "web",
        "-n",
        "micro",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(image.ok().stdout, "localhost:5000/web:1.0");
}

#[test]
fn dry_run_answers_without_storing() {
    let k = start();
    let ns = k.write("ns.yaml", common::NAMESPACE);
    k.kubectl(&["apply", "--server-side", "-f", path(&ns)]).ok();
    let web = k.write("web.yaml", &web_deployment("web:1", 1));
    let out = k.kubectl(&[
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        path(&web),
        "-o",
        "json",
    ]);
    let d: serde_json::Value = serde_json::from_str(&out.ok().stdout).unwrap();
    assert_eq!(
        d["spec"]["revisionHistoryLimit"], 10,
        "the answer is the object as it would be stored"
    );
    let out = k.kubectl(&["get", "deploy", "web", "-n", "micro"]);
    assert!(out.stderr.contains("NotFound"), "{}", out.stderr);

    k.kubectl(&["apply", "--server-side", "-f", path(&web)])
        .ok();
    k.kubectl(&["delete", "deploy/web", "-n", "micro", "--dry-run=server"])
        .ok();
    k.kubectl(&["get", "deploy", "web", "-n", "micro"]).ok();
    let dry: Vec<_> = k.audit().into_iter().filter(|e| e.dry_run).collect();
    assert_eq!(
        dry.iter().map(|e| e.verb.as_str()).collect::<Vec<_>>(),
        ["patch", "delete"]
    );
}

#[test]
fn a_broken_image_fails_the_rollout_with_progress_deadline_exceeded() {
    let k = start();
    k.apply_fixtures();
    let broken = k.write("broken/web.yaml", &web_deployment("localhost:5000/web:broken@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 2));
    k.kubectl(&["apply", "--server-side", "-f", path(&broken)])
        .ok();
    let out = k.kubectl(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "micro",
        "--timeout=30s",
    ]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("deployment \"web\" exceeded its progress deadline"),
        "{}",
        out.stderr
    );
    let out = k.kubectl(&[
        "get",
        "deploy",
        "web",
        "-n",
        "micro",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Progressing\")].reason}",
    ]);
    assert_eq!(out.ok().stdout, "ProgressDeadlineExceeded");
}

#[test]
fn strict_field_validation_rejects_unknown_fields() {
    let k = start();
    k.apply_fixtures();
    let typo = web_deployment("web:1", 2).replace("  replicas: 2", "  replicaz: 2");
    let file = k.write("typo/web.yaml", &typo);
    let out = k.kubectl(&["apply", "--server-side", "-f", path(&file)]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains(".spec.replicaz: field not declared in schema"),
        "{}",
        out.stderr
    );
}

#[test]
fn unknown_resources_are_404_like_kube_apiserver() {
    let k = start();
    let out = k.kubectl(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/replicasets",
    ]);
    assert!(out.stderr.contains("NotFound"), "{}", out.stderr);
    let out = k.kubectl(&["get", "foos"]);
    assert!(
        out.stderr
            .contains("the server doesn't have a resource type \"foos\""),
        "{}",
        out.stderr
    );
}

/// `kubectl get <what> -n micro -o json`: the object as a JSON client sees it.
fn get_json(k: &common::Kube, what: &[&str]) -> serde_json::Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-n", "micro", "-o", "json"]);
    serde_json::from_str(&k.kubectl(&args).ok().stdout).expect("kubectl printed JSON")
}

/// kubectl's generators send protobuf bodies; a create must come back as a JSON
/// client would have written it: no empty strings, zeros or empty lists added.
fn assert_no_protobuf_zeros(obj: &serde_json::Value) {
    let meta = &obj["metadata"];
    for absent in [
        "generateName",
        "selfLink",
        "deletionTimestamp",
        "finalizers",
    ] {
        assert!(meta.get(absent).is_none(), "{absent} in {meta}");
    }
}

#[test]
fn create_configmap_and_secret_send_protobuf_and_store_what_json_clients_see() {
    let k = start();
    k.apply_fixtures();
    k.kubectl(&[
        "create",
        "configmap",
        "foreign",
        "-n",
        "micro",
        "--from-literal=a=b",
    ])
    .ok();
    let cm = get_json(&k, &["configmap", "foreign"]);
    assert_eq!(cm["data"], serde_json::json!({"a": "b"}));
    assert_eq!(cm["metadata"]["namespace"], "micro");
    assert!(
        cm["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_no_protobuf_zeros(&cm);

    k.kubectl(&[
        "create",
        "secret",
        "generic",
        "redis-auth",
        "-n",
        "micro",
        "--from-literal=password=s3cr3t",
    ])
    .ok();
    let secret = get_json(&k, &["secret", "redis-auth"]);
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(secret["data"]["password"], "czNjcjN0"); // base64("s3cr3t")
    assert_no_protobuf_zeros(&secret);
    let creates: Vec<_> = k
        .audit()
        .into_iter()
        .filter(|e| e.verb == "create")
        .collect();
    assert_eq!(creates.len(), 2, "{creates:#?}");
    assert!(creates.iter().all(|e| e.code == 201));
}

#[test]
fn create_deployment_then_expose_it_then_run_a_pod() {
    let k = start();
    k.apply_fixtures();
    k.kubectl(&[
        "create",
        "deployment",
        "api",
        "-n",
        "micro",
        "--image=localhost:5000/api:1",
        "--replicas=2",
        "--port=8080",
    ])
    .ok();
    let d = get_json(&k, &["deployment", "api"]);
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["selector"]["matchLabels"]["app"], "api");
    let container = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "localhost:5000/api:1");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(
        container["imagePullPolicy"], "IfNotPresent",
        "defaults applied"
    );
    assert_eq!(d["metadata"]["generation"], 1);
    assert_no_protobuf_zeros(&d);
    k.kubectl(&[
        "rollout",
        "status",
        "deploy/api",
        "-n",
        "micro",
        "--timeout=20s",
    ])
    .ok();

    k.kubectl(&[
        "expose",
        "deployment",
        "api",
        "-n",
        "micro",
        "--port=80",
        "--target-port=8080",
    ])
    .ok();
    let svc = get_json(&k, &["service", "api"]);
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(svc["spec"]["selector"], serde_json::json!({"app": "api"}));
    assert!(
        svc["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .starts_with("10.96.")
    );
    assert_no_protobuf_zeros(&svc);

    k.kubectl(&[
        "run",
        "once",
        "-n",
        "micro",
        "--image=localhost:5000/report:1",
        "--restart=Never",
        "--labels=app.kubernetes.io/name=report",
        "--",
        "report",
        "--json",
    ])
    .ok();
    let pod = get_json(&k, &["pod", "once"]);
    assert_eq!(pod["spec"]["restartPolicy"], "Never");
    assert_eq!(
        pod["spec"]["containers"][0]["args"],
        serde_json::json!(["report", "--json"])
    );
    assert_eq!(
        pod["metadata"]["labels"]["app.kubernetes.io/name"],
        "report"
    );
    assert_no_protobuf_zeros(&pod);
}

#[test]
fn a_load_balancer_is_pending_then_shows_its_hostname() {
    let k = common::start_with(testcluster::Options {
        load_balancer_delay: std::time::Duration::from_millis(1500),
        ..testcluster::Options::default()
    });
    k.apply_fixtures();
    k.kubectl(&[
        "expose",
        "deployment",
        "web",
        "-n",
        "micro",
        "--name=web-lb",
        "--type=LoadBalancer",
        "--port=80",
        "--target-port=3000",
    ])
    .ok();
    let external = |k: &common::Kube| {
        let out = k.kubectl(&["get", "svc", "web-lb", "-n", "micro"]);
        out.ok()
            .stdout
            .lines()
            .nth(1)
            .unwrap()
            .split_whitespace()
            .nth(3)
            .unwrap()
            .to_string()
    };
    assert_eq!(external(&k), "<pending>");
    k.kubectl(&[
        "wait", "-n", "micro", "svc/web-lb", "--timeout=20s",
        "--for=jsonpath={.status.loadBalancer.ingress[0].hostname}=web-lb-micro.elb.testcluster.local",
    ])
    .ok();
    assert_eq!(external(&k), "web-lb-micro.elb.testcluster.local");
}
