//! `-l/--selector` and `-n/--namespace` on diff, sync and status: a scoped
//! sync touches only the objects that match, prunes nothing outside them,
//! keeps the inventory entries of everything else (so a later full sync still
//! prunes what git dropped) and does not claim the commit as synced.

use crate::gitops_support::{ENV, Fixture, deployment, describe, system};
use serde_json::Value;

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", describe(out)))
}

/// `(kind, name, state)` of every object of a diff/sync/status document.
fn objects(doc: &Value) -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = doc["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .map(|o| {
            let field = |k: &str| o[k].as_str().unwrap_or_default().to_string();
            (field("kind"), field("name"), field("state"))
        })
        .collect();
    rows.sort();
    rows
}

fn row(kind: &str, name: &str, state: &str) -> (String, String, String) {
    (kind.to_string(), name.to_string(), state.to_string())
}

fn image_of(f: &Fixture, name: &str) -> String {
    f.kubectl_ok(&[
        "-n",
        "micro",
        "get",
        "deployment",
        name,
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
}

#[test]
fn a_selector_sync_touches_only_matching_objects_and_prunes_nothing_else() {
    let f = Fixture::new(&system("1"));
    f.sync(&[]);
    let synced_before =
        json(&f.xtask(&["status", "--env", ENV, "-o", "json"]))["syncedCommit"].clone();
    // Git moves on: both Deployments get a new image and webapp's Service goes.
    for (name, port) in [("adderservice", 8080), ("webapp", 3000)] {
        f.write_manifest(
            &format!("deployment-{name}.yaml"),
            &deployment(name, &format!("localhost:5000/{name}:2"), port),
        );
    }
    f.remove_manifest("service-webapp.yaml");
    f.commit("new images, webapp's Service gone");

    let adder = "app.kubernetes.io/name=adderservice";
    let diff = json(&f.xtask(&[
        "diff",
        "--env",
        ENV,
        "-l",
        "app.kubernetes.io/name=webapp",
        "-o",
        "json",
    ]));
    assert_eq!(
        objects(&diff),
        [
            row("Deployment", "webapp", "configure"),
            row("Service", "webapp", "prune")
        ],
        "{diff}"
    );

    let out = f.xtask(&["sync", "--env", ENV, "-l", adder, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let doc = json(&out);
    assert_eq!(
        objects(&doc),
        [
            row("Deployment", "adderservice", "configured"),
            row("Service", "adderservice", "unchanged")
        ],
        "{doc}"
    );
    assert_eq!(
        image_of(&f, "adderservice"),
        "localhost:5000/adderservice:2"
    );
    assert_eq!(
        image_of(&f, "webapp"),
        "localhost:5000/webapp:1",
        "outside the selector"
    );
    f.kubectl_ok(&["-n", "micro", "get", "service", "webapp"]);

    // The cluster is half way: the synced commit is still the old one, so
    // what the selector left out (a change, a deletion) is outdated, not drifted.
    let status = json(&f.xtask(&["status", "--env", ENV, "-o", "json"]));
    assert_eq!(status["syncedCommit"], synced_before, "{status}");
    let states = objects(&status);
    assert!(
        states.contains(&row("Deployment", "adderservice", "in sync")),
        "{states:?}"
    );
    assert!(
        states.contains(&row("Deployment", "webapp", "outdated")),
        "{states:?}"
    );
    assert!(
        states.contains(&row("Service", "webapp", "outdated")),
        "{states:?}"
    );

    // The inventory still lists webapp's Service: a full sync prunes it.
    let full = json(&f.xtask(&["sync", "--env", ENV, "-o", "json"]));
    let states = objects(&full);
    assert!(
        states.contains(&row("Service", "webapp", "pruned")),
        "{states:?}"
    );
    assert!(
        states.contains(&row("Deployment", "webapp", "configured")),
        "{states:?}"
    );
    let status = json(&f.xtask(&["status", "--env", ENV, "-o", "json"]));
    assert_eq!(status["healthy"], true, "{status}");
}

#[test]
fn a_namespace_scope_covers_that_namespace_and_a_bad_selector_is_one_error() {
    let f = Fixture::new(&system("1"));
    f.sync(&[]);
    let other = json(&f.xtask(&["diff", "--env", ENV, "-n", "elsewhere", "-o", "json"]));
    assert!(objects(&other).is_empty(), "{other}");
    let micro = json(&f.xtask(&["status", "--env", ENV, "-n", "micro", "-o", "json"]));
    assert!(
        objects(&micro).contains(&row("Namespace", "micro", "in sync")),
        "{micro}"
    );

    let out = f.xtask(&["sync", "--env", ENV, "-l", "app in (a,b)"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("selector `app in (a,b)`"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
