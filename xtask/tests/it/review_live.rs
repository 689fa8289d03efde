//! `cargo xtask review --live` against the in-memory API server: besides the
//! git diff, what syncing head would do to the cluster now (diff's plan).

use crate::gitops_support;
use gitops_support::*;
use serde_json::Value;

#[test]
fn live_shows_what_syncing_head_would_do() {
    let fixture = Fixture::new(&system("1"));
    fixture.sync(&["--no-wait"]);
    fixture.write_manifest(
        "deployment-adderservice.yaml",
        &deployment("adderservice", "localhost:5000/adderservice:2", 8080),
    );
    fixture.commit("adderservice 2");

    let out = fixture.xtask(&["review", "--base", "HEAD~1", "--live", "--output", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["environments"][0]["summary"],
        serde_json::json!({"changed": 1, "added": 0, "deleted": 0, "unchanged": 7})
    );
    let live = &doc["live"][0];
    assert_eq!(live["env"], ENV);
    assert_eq!(live["inSync"], false);
    assert_eq!(live["summary"]["configure"], 1, "{live}");
    assert_eq!(live["summary"]["create"], 0, "{live}");
    assert_eq!(live["summary"]["prune"], 0, "{live}");
    let changes = live["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["state"], "configure");
    assert!(
        changes[0]["diff"]
            .as_str()
            .unwrap()
            .contains("+      - image: localhost:5000/adderservice:2"),
        "{changes:?}"
    );

    // The same commit synced: nothing left to do live, the git diff stays.
    fixture.sync(&["--no-wait"]);
    let out = fixture.xtask(&["review", "--base", "HEAD~1", "--live", "--output", "json"]);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["live"][0]["inSync"], true, "{}", doc["live"]);
}
