//! `cargo xtask status` against the in-memory API server: `outdated` (git is
//! ahead, the cluster is as synced) apart from `drifted` (the cluster was
//! changed), a counts line, the synced commit and HEAD, exit 1 for anything
//! not in sync or not ready, and a quiet end when stdout closes.

use crate::gitops_support;

use gitops_support::{ENV, Fixture, configmap, deployment, describe, system};
use std::process::{Output, Stdio};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn status(f: &Fixture) -> (Output, String) {
    let out = f.xtask(&["status", "--env", ENV]);
    let shown = text(&out.stdout);
    (out, shown)
}

/// The STATE column of `kind`/`name` in the status table.
fn state_of<'a>(table: &'a str, kind: &str, name: &str) -> &'a str {
    let line = table
        .lines()
        .find(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.first() == Some(&kind) && cells.get(1) == Some(&name)
        })
        .unwrap_or_else(|| panic!("no {kind} {name} in:\n{table}"));
    let cells: Vec<&str> = line
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    cells[2]
}

/// The counts line (above the commits line). A scaled Deployment may still
/// be rolling out, which adds `, 1 not ready`, so callers match its start.
fn counts(shown: &str) -> &str {
    let lines: Vec<&str> = shown.lines().collect();
    lines[lines.len() - 2]
}

fn scale(f: &Fixture, name: &str) {
    f.kubectl_ok(&[
        "scale",
        &format!("deploy/{name}"),
        "-n",
        "micro",
        "--replicas=4",
    ]);
}

#[test]
fn git_ahead_is_outdated_a_changed_cluster_is_drifted_and_both_exit_1() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    let synced = {
        let repo = git2::Repository::open(f.root()).unwrap();
        repo.head()
            .unwrap()
            .peel_to_commit()
            .unwrap()
            .id()
            .to_string()
    };
    let (out, shown) = status(&f);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(counts(&shown), "8 in sync", "{shown}");
    assert!(
        shown.contains(&format!(
            "last synced commit {s}; HEAD is {s}, the same commit",
            s = &synced[..7]
        )),
        "{shown}"
    );

    // A new commit: new images for both Deployments and a new ConfigMap.
    for (name, port) in [("adderservice", 8080), ("webapp", 3000)] {
        f.write_manifest(
            &format!("deployment-{name}.yaml"),
            &deployment(name, &format!("localhost:5000/{name}:v2"), port),
        );
    }
    f.write_manifest("configmap-more.yaml", &configmap("more", "A", "b"));
    let head = f.commit("v2");
    let (out, shown) = status(&f);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        state_of(&shown, "Deployment", "adderservice"),
        "outdated",
        "{shown}"
    );
    assert_eq!(
        state_of(&shown, "Deployment", "webapp"),
        "outdated",
        "{shown}"
    );
    assert_eq!(state_of(&shown, "ConfigMap", "more"), "outdated", "{shown}");
    assert!(!shown.contains("drifted"), "{shown}");
    assert_eq!(counts(&shown), "6 in sync, 3 outdated", "{shown}");
    assert!(
        shown.contains(&format!(
            "last synced commit {}; HEAD is {}, 1 commit ahead",
            &synced[..7],
            &head[..7]
        )),
        "{shown}"
    );

    // Someone scales webapp by hand: that one drifted, adderservice is still
    // only outdated.
    scale(&f, "webapp");
    let (out, shown) = status(&f);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        state_of(&shown, "Deployment", "webapp"),
        "drifted",
        "{shown}"
    );
    assert_eq!(
        state_of(&shown, "Deployment", "adderservice"),
        "outdated",
        "{shown}"
    );
    assert!(
        counts(&shown).starts_with("6 in sync, 2 outdated, 1 drifted"),
        "{shown}"
    );

    let json = f.xtask(&["status", "--env", ENV, "--output", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&text(&json.stdout)).unwrap();
    // notReady is left out: a rollout may still be settling here.
    let mut summary = doc["summary"].clone();
    summary.as_object_mut().unwrap().remove("notReady");
    assert_eq!(
        summary,
        serde_json::json!({"inSync": 6, "outdated": 2, "drifted": 1, "missing": 0, "extra": 0,
            "extraUntracked": 0, "notOurs": 0})
    );
    assert_eq!(doc["healthy"], false);

    // Synced again, then scaled: drifted with a ready rollout still exits 1.
    f.sync(&[]);
    let (out, shown) = status(&f);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(counts(&shown), "9 in sync", "{shown}");
    scale(&f, "adderservice");
    let (out, shown) = status(&f);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        state_of(&shown, "Deployment", "adderservice"),
        "drifted",
        "{shown}"
    );
    assert!(
        counts(&shown).starts_with("8 in sync, 1 drifted"),
        "{shown}"
    );
}

#[test]
fn status_into_a_closed_pipe_ends_quietly() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    let mut child = f
        .xtask_command(&["status", "--env", ENV])
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

/// The ENDPOINT column of `service` in the endpoints table.
fn endpoint_of(shown: &str, service: &str) -> String {
    let line = shown
        .lines()
        .skip_while(|l| !l.starts_with("SERVICE"))
        .find(|l| l.split_whitespace().next() == Some(service))
        .unwrap_or_else(|| panic!("no endpoint of {service} in:\n{shown}"));
    line.split_whitespace().nth(2).unwrap().to_string()
}

#[test]
fn status_shows_a_nodeport_on_the_node_and_a_load_balancer_pending_then_its_hostname() {
    let typed = |name: &str, port: u16, kind: &str| {
        gitops_support::service(name, port).replace("spec:\n", &format!("spec:\n  type: {kind}\n"))
    };
    let f = Fixture::new(&[
        (
            "namespace-micro.yaml".to_string(),
            gitops_support::namespace(),
        ),
        (
            "service-webapp.yaml".to_string(),
            typed("webapp", 3000, "NodePort"),
        ),
        (
            "service-shop.yaml".to_string(),
            typed("shop", 80, "LoadBalancer"),
        ),
        (
            "service-redis.yaml".to_string(),
            gitops_support::service("redis", 6379),
        ),
    ]);
    f.sync(&["--no-wait"]);
    let (_, shown) = status(&f);
    let webapp = endpoint_of(&shown, "webapp");
    let (host, port) = webapp.split_once(':').unwrap();
    assert_eq!(host, "127.0.0.1", "the node: the API server's host");
    assert!(
        (30000..=32767).contains(&port.parse::<u32>().unwrap()),
        "{webapp}"
    );
    assert_eq!(endpoint_of(&shown, "shop"), "pending", "{shown}");
    assert!(
        endpoint_of(&shown, "redis").starts_with("10.96."),
        "{shown}"
    );

    // The test cluster assigns the load balancer a hostname after its delay.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let assigned = loop {
        let out = f.xtask(&["status", "--env", ENV, "--output", "json"]);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let shop = doc["endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["service"] == "shop")
            .cloned()
            .unwrap();
        if shop["endpoint"] != "pending" {
            assert_eq!(shop["type"], "LoadBalancer");
            break shop["endpoint"].as_str().unwrap().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never assigned: {shop}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(assigned, "shop-micro.elb.testcluster.local:80");
    assert_eq!(endpoint_of(&status(&f).1, "shop"), assigned);
}
