//! Sync never destroys or takes over what it should not: each test first sets
//! up the situation that used to go wrong (namespace rollback, shared
//! namespaces, hand-made objects, stale rollout status, concurrent syncs, bad
//! manifests) against the test API server, then checks its audit log.

use crate::gitops_support;

use gitops_support::*;
use std::time::{Duration, Instant};
use testcluster::AuditEvent;

/// kubectl's ApplySet id of minikube's inventory in `micro` (computed with Python).
const MINIKUBE_APPLYSET: &str = "applyset-XXFNldmK9agWOvfvsGQHbjXtDE_HDBM3PVTpVqw2vgk-v1";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn env_yaml(namespace: &str) -> String {
    format!("context: minikube\nregistry: localhost:5000\nnamespace: {namespace}\n")
}

fn namespace_named(name: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
}

fn configmap_in(namespace: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  k: v\n"
    )
}

fn pvc_in(namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: {namespace}\nspec:\n  \
         accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
    )
}

/// Namespace, ConfigMap and PVC of the environment, all in `namespace`.
fn write_environment_in(f: &Fixture, namespace: &str) {
    for name in ["namespace.yaml", "configmap.yaml", "pvc.yaml"] {
        let path = f
            .root()
            .join(format!("environments/{ENV}/manifests/{name}"));
        let _ = std::fs::remove_file(path);
    }
    f.write_file(
        &format!("environments/{ENV}/env.yaml"),
        &env_yaml(namespace),
    );
    f.write_manifest("namespace.yaml", &namespace_named(namespace));
    f.write_manifest("configmap.yaml", &configmap_in(namespace, "settings"));
    f.write_manifest("pvc.yaml", &pvc_in(namespace));
}

fn deletes(events: &[AuditEvent]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.verb == "delete" && !e.dry_run)
        .map(|e| {
            format!(
                "{}/{}/{}",
                e.resource,
                e.namespace.clone().unwrap_or_default(),
                e.name.clone().unwrap_or_default()
            )
        })
        .collect()
}

fn inventory_of(f: &Fixture, namespace: &str) -> String {
    f.kubectl_ok(&[
        "get",
        "configmap/xtask-inventory-minikube",
        "-n",
        namespace,
        "-o",
        "jsonpath={.data.objects}",
    ])
}

#[test]
fn a_rollback_across_a_namespace_change_deletes_no_namespace_and_no_volume() {
    let f = Fixture::new(&[]);
    write_environment_in(&f, "nsa");
    f.commit("deploy to nsa");
    f.sync(&[]);

    write_environment_in(&f, "nsb");
    f.commit("move to nsb");
    f.clear_events();
    let refused = f.xtask(&["sync", "--env", ENV]);
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    let err = text(&refused.stderr);
    assert!(
        err.contains("deployed in namespace `nsa`")
            && err.contains("--allow-namespace-change")
            && err.lines().count() == 1,
        "{err}"
    );
    assert!(f.stored_writes().is_empty(), "{:?}", f.stored_writes());

    let moved = f.sync(&["--allow-namespace-change"]);
    assert!(moved.contains("left namespace `nsa`"), "{moved}");
    // The old namespace keeps its objects; only its inventory went.
    f.kubectl_ok(&["get", "pvc/data", "-n", "nsa"]);
    f.kubectl_ok(&["get", "configmap/settings", "-n", "nsa"]);
    assert!(
        !f.kubectl(&["get", "configmap/xtask-inventory-minikube", "-n", "nsa"])
            .status
            .success()
    );

    // The rollback reads env.yaml from HEAD~1 too: it targets nsa, and is
    // refused as a namespace change until told.
    let refused = f.xtask(&["sync", "--env", ENV, "--rev", "HEAD~1"]);
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(text(&refused.stderr).contains("deployed in namespace `nsb`"));
    f.sync(&["--rev", "HEAD~1", "--allow-namespace-change"]);

    let all = f.events();
    let deleted = deletes(&all);
    assert!(
        deleted.iter().all(|d| d.starts_with("configmaps/")),
        "only superseded inventories may be deleted: {deleted:?}"
    );
    assert_eq!(
        deleted,
        [
            "configmaps/nsa/xtask-inventory-minikube",
            "configmaps/nsb/xtask-inventory-minikube"
        ]
    );
    for ns in ["nsa", "nsb"] {
        f.kubectl_ok(&["get", "namespace", ns]);
        f.kubectl_ok(&["get", "pvc/data", "-n", ns]);
    }
    assert!(inventory_of(&f, "nsa").contains("/PersistentVolumeClaim/nsa/data"));
    f.print_audit_counts("a_rollback_across_a_namespace_change_deletes_no_namespace_and_no_volume");
}

#[test]
fn data_gone_from_git_is_kept_unless_prune_data() {
    let f = Fixture::new(&[]);
    write_environment_in(&f, "micro");
    f.commit("with a volume");
    f.sync(&[]);

    f.remove_manifest("pvc.yaml");
    f.remove_manifest("configmap.yaml");
    f.commit("volume and settings gone from git");
    let diff = f.xtask(&["diff", "--env", ENV]);
    assert!(
        text(&diff.stdout).contains("a volume claim holds data"),
        "{}",
        describe(&diff)
    );
    f.clear_events();
    let out = f.sync(&[]);
    assert!(
        out.contains("kept: a volume claim holds data (--prune-data deletes it)"),
        "{out}"
    );
    assert_eq!(deletes(&f.events()), ["configmaps/micro/settings"]);
    f.kubectl_ok(&["get", "pvc/data", "-n", "micro"]);
    // Still listed, so a later --prune-data can remove it.
    assert!(inventory_of(&f, "micro").contains("/PersistentVolumeClaim/micro/data"));

    f.clear_events();
    let out = f.sync(&["--prune-data"]);
    assert!(out.contains("1 pruned"), "{out}");
    assert_eq!(deletes(&f.events()), ["persistentvolumeclaims/micro/data"]);
    f.print_audit_counts("data_gone_from_git_is_kept_unless_prune_data");
}

#[test]
fn two_environments_in_one_namespace_never_prune_each_other() {
    let f = Fixture::new(&[
        ("namespace.yaml".into(), namespace_named("micro")),
        ("configmap-a.yaml".into(), configmap_in("micro", "a")),
    ]);
    f.write_file("environments/staging/env.yaml", &env_yaml("micro"));
    f.write_file(
        "environments/staging/manifests/configmap-b.yaml",
        &configmap_in("micro", "b"),
    );
    f.commit("staging shares the namespace");
    f.sync(&[]);
    let staging = f.xtask(&["sync", "--env", "staging"]);
    assert!(staging.status.success(), "{}", describe(&staging));

    // minikube's inventory names an object of staging, and one in a namespace
    // minikube does not declare (a hand edit, or a bug elsewhere).
    f.kubectl_apply(&namespace_named("other"));
    // Even carrying minikube's own ApplySet label, it is outside minikube's namespaces.
    f.kubectl_apply(&format!(
        "{}  labels:\n    applyset.kubernetes.io/part-of: {MINIKUBE_APPLYSET}\n",
        configmap_in("other", "victim").replace("data:\n  k: v\n", "")
    ));
    let inventory = inventory_of(&f, "micro");
    let tampered = format!("{inventory}\n/ConfigMap/micro/b\n/ConfigMap/other/victim");
    f.kubectl_ok(&[
        "patch",
        "configmap/xtask-inventory-minikube",
        "-n",
        "micro",
        "--type=merge",
        "-p",
        &serde_json::json!({"data": {"objects": tampered}}).to_string(),
    ]);

    f.remove_manifest("configmap-a.yaml");
    f.commit("minikube drops a");
    f.clear_events();
    f.sync(&[]);
    assert_eq!(deletes(&f.events()), ["configmaps/micro/a"]);
    f.kubectl_ok(&["get", "configmap/b", "-n", "micro"]);
    f.kubectl_ok(&["get", "configmap/victim", "-n", "other"]);

    f.clear_events();
    let again = f.xtask(&["sync", "--env", "staging"]);
    assert!(again.status.success(), "{}", describe(&again));
    assert!(deletes(&f.events()).is_empty());
    f.kubectl_ok(&["get", "namespace", "micro"]);
    f.print_audit_counts("two_environments_in_one_namespace_never_prune_each_other");
}

#[test]
fn a_hand_made_object_is_not_taken_over_without_adopt() {
    let f = Fixture::new(&[("namespace.yaml".into(), namespace_named("micro"))]);
    f.sync(&[]);
    f.kubectl_apply(&configmap_in("micro", "foreign"));
    f.write_manifest("configmap-foreign.yaml", &configmap_in("micro", "foreign"));
    f.commit("git now has one of that name");

    let diff = f.xtask(&["diff", "--env", ENV]);
    assert!(
        text(&diff.stdout).contains("exists, not ours"),
        "{}",
        describe(&diff)
    );
    f.clear_events();
    let refused = f.xtask(&["sync", "--env", ENV]);
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(
        text(&refused.stderr).contains("micro/ConfigMap/foreign")
            && text(&refused.stderr).contains("--adopt"),
        "{}",
        describe(&refused)
    );
    assert!(f.stored_writes().is_empty(), "{:?}", f.stored_writes());

    let adopted = f.sync(&["--adopt"]);
    assert!(adopted.contains("configured"), "{adopted}");
    // Adopted means ours: gone from git, it is pruned like any other.
    f.remove_manifest("configmap-foreign.yaml");
    f.commit("drop it");
    f.clear_events();
    f.sync(&[]);
    assert_eq!(deletes(&f.events()), ["configmaps/micro/foreign"]);
    f.print_audit_counts("a_hand_made_object_is_not_taken_over_without_adopt");
}

fn writes_to(events: &[AuditEvent], resource: &str) -> usize {
    events
        .iter()
        .filter(|e| e.is_write() && !e.dry_run && e.resource == resource)
        .count()
}

#[test]
fn deployments_wait_for_every_statefulset_of_the_commit_also_on_a_rerun() {
    let f = Fixture::new(&system_with_statefulset_image("redis:broken"));
    let first = f.xtask(&["sync", "--env", ENV, "--timeout", "2s"]);
    assert_eq!(first.status.code(), Some(2), "{}", describe(&first));
    let out = text(&first.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("Deployment") && l.ends_with("not applied")),
        "{out}"
    );
    assert!(text(&first.stderr).contains("StatefulSet/redis"));
    assert_eq!(writes_to(&f.events(), "deployments"), 0);

    // The StatefulSet is unchanged now; the gate must still hold.
    f.clear_events();
    let rerun = f.xtask(&["sync", "--env", ENV, "--timeout", "2s"]);
    assert_eq!(rerun.status.code(), Some(2), "{}", describe(&rerun));
    assert_eq!(writes_to(&f.events(), "deployments"), 0);
    let status = f.xtask(&["status", "--env", ENV]);
    assert_eq!(status.status.code(), Some(1));
    f.print_audit_counts("deployments_wait_for_every_statefulset_of_the_commit_also_on_a_rerun");
}

fn system_with_statefulset_image(image: &str) -> Vec<(String, String)> {
    let mut files = system("v1");
    for (name, text) in &mut files {
        if name == "statefulset-redis.yaml" {
            *text = statefulset("redis", image);
        }
    }
    files
}

#[test]
fn a_rollback_after_a_failed_rollout_waits_for_the_new_spec_and_a_rerun_of_the_failure_fails() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    f.write_manifest(
        "deployment-webapp.yaml",
        &deployment("webapp", "localhost:5000/webapp:broken", 3000),
    );
    f.commit("broken webapp");
    let failed = f.xtask(&["sync", "--env", ENV, "--timeout", "20s"]);
    assert_eq!(failed.status.code(), Some(2), "{}", describe(&failed));
    assert!(text(&failed.stderr).contains("ProgressDeadlineExceeded"));

    // Rerunning the broken commit writes nothing, but it is not healthy.
    let rerun = f.xtask(&["sync", "--env", ENV, "--timeout", "20s"]);
    assert_eq!(rerun.status.code(), Some(2), "{}", describe(&rerun));
    assert!(text(&rerun.stdout).contains("did not finish syncing"));

    // The rollback's new generation is not judged by the old condition.
    let rollback = f.xtask(&["sync", "--env", ENV, "--rev", "HEAD~1", "--timeout", "20s"]);
    assert!(rollback.status.success(), "{}", describe(&rollback));
    let status = f.xtask(&["status", "--env", ENV, "--rev", "HEAD~1"]);
    assert_eq!(status.status.code(), Some(0), "{}", describe(&status));
    f.print_audit_counts(
        "a_rollback_after_a_failed_rollout_waits_for_the_new_spec_and_a_rerun_of_the_failure_fails",
    );
}

#[test]
fn a_second_sync_waits_for_the_lease_or_names_its_holder() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    // A Lease's MicroTime: RFC 3339 with microseconds.
    let now = |offset: i64| {
        let jiff = k8s_openapi::jiff::Timestamp::now()
            + k8s_openapi::jiff::SignedDuration::from_secs(offset);
        jiff.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    };
    let lease = |renewed: &str| {
        format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: xtask-sync-minikube\n  namespace: micro\n\
             spec:\n  holderIdentity: ci@builder pid 7\n  leaseDurationSeconds: 30\n  renewTime: \"{renewed}\"\n  acquireTime: \"{renewed}\"\n"
        )
    };
    // Another holder's lease, as kubectl writes it (replacing sync's own).
    f.kubectl_ok(&["delete", "lease/xtask-sync-minikube", "-n", "micro"]);
    f.kubectl_apply(&lease(&now(0)));
    f.write_manifest("configmap-extra.yaml", &configmap("extra", "A", "1"));
    f.commit("one more");
    f.clear_events();
    let refused = f.xtask(&["sync", "--env", ENV, "--lock-timeout", "0s"]);
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(
        text(&refused.stderr).contains("ci@builder pid 7 holds Lease micro/xtask-sync-minikube"),
        "{}",
        describe(&refused)
    );
    assert!(f.stored_writes().is_empty(), "{:?}", f.stored_writes());

    // A lease its holder stopped renewing a minute ago is taken over.
    f.kubectl_ok(&["delete", "lease/xtask-sync-minikube", "-n", "micro"]);
    f.kubectl_apply(&lease(&now(-60)));
    let out = f.sync(&["--lock-timeout", "0s"]);
    assert!(out.contains("1 created"), "{out}");
    let holder = f.kubectl_ok(&[
        "get",
        "lease/xtask-sync-minikube",
        "-n",
        "micro",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(holder, "", "released at the end of the sync");
    f.print_audit_counts("a_second_sync_waits_for_the_lease_or_names_its_holder");
}

#[test]
fn concurrent_syncs_take_turns_and_leave_no_object_untracked() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    f.write_manifest("configmap-one.yaml", &configmap("one", "A", "1"));
    let one = f.commit("one");
    f.remove_manifest("configmap-one.yaml");
    f.write_manifest("configmap-two.yaml", &configmap("two", "A", "2"));
    let two = f.commit("two");
    let spawn = |rev: &str| {
        f.xtask_command(&["sync", "--env", ENV, "--rev", rev, "--no-wait"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(&one), spawn(&two));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", describe(&out));
    }
    // Whichever ran last decides what is live; every live object of ours is
    // in the inventory (none orphaned by a lost inventory write).
    let live = f.kubectl_ok(&["get", "configmaps", "-n", "micro", "-o", "name"]);
    let inventory = inventory_of(&f, "micro");
    for name in ["one", "two"] {
        let is_live = live.contains(&format!("configmap/{name}\n"));
        let listed = inventory.contains(&format!("/ConfigMap/micro/{name}"));
        assert!(
            !is_live || listed,
            "configmap/{name} live but not in the inventory:\n{inventory}"
        );
    }
    assert!(
        live.contains("configmap/one\n") != live.contains("configmap/two\n"),
        "exactly one of the two commits won:\n{live}"
    );
    // The lease was taken once per sync that wrote (created, then taken over).
    let lease_writes = writes_to(&f.events(), "leases");
    assert!(lease_writes >= 4, "{lease_writes} lease writes");
    f.print_audit_counts("concurrent_syncs_take_turns_and_leave_no_object_untracked");
}

#[test]
fn a_watch_repairs_a_deleted_object_at_the_next_resync_and_otherwise_writes_nothing() {
    let f = Fixture::new(&system("v1"));
    let mut child = f
        .xtask_command(&[
            "sync",
            "--env",
            ENV,
            "--watch",
            "--interval",
            "1s",
            "--resync",
            "2s",
            "--no-wait",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut child);
    let mut seen = Vec::new();
    wait_for_line(&lines, "resync: ", &mut seen);
    // A resync of an unchanged cluster: reads only, one line and no table.
    f.clear_events();
    let from = seen.len();
    let line = wait_for_line(&lines, "in sync, nothing written", &mut seen);
    assert!(line.contains(" resync: "), "{line}");
    assert!(
        !seen[from..].iter().any(|l| l.starts_with("KIND")),
        "a resync without drift printed the table:\n{}",
        seen.join("\n")
    );
    assert!(f.stored_writes().is_empty(), "{:?}", f.stored_writes());
    let events = f.events();
    assert!(
        events.iter().all(|e| e.verb == "list"),
        "a resync without drift makes only LISTs: {events:?}"
    );
    f.print_audit_counts("one resync tick without drift");

    f.kubectl_ok(&["delete", "configmap", "settings", "-n", "micro"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f
        .kubectl(&["get", "configmap/settings", "-n", "micro"])
        .status
        .success()
    {
        assert!(
            Instant::now() < deadline,
            "the deleted ConfigMap was never re-created"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(terminate(&mut child).success());
    f.print_audit_counts(
        "a_watch_repairs_a_deleted_object_at_the_next_resync_and_otherwise_writes_nothing",
    );
}

#[test]
fn bad_manifests_get_one_line_naming_file_and_field_and_nothing_is_sent() {
    let cases = [
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: 5\n",
            "metadata.namespace must be a string",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
            "duplicate key `name`",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a/b\n",
            "metadata.name `a/b` is not a valid ConfigMap name",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\nspec:\n  replicas: three\n  selector: {}\n  template: {}\n",
            "spec.replicas: invalid type",
        ),
    ];
    let f = Fixture::new(&system("v1"));
    for (manifest, message) in cases {
        f.write_manifest("bad.yaml", manifest);
        f.commit("a bad manifest");
        f.clear_events();
        let out = f.xtask(&["sync", "--env", ENV]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let err = text(&out.stderr);
        assert!(
            err.lines().count() == 1
                && err.contains("environments/minikube/manifests/bad.yaml")
                && err.contains(message),
            "want `{message}`: {err}"
        );
        assert!(
            f.events().is_empty(),
            "requests were sent: {:?}",
            f.events()
        );
    }
    f.print_audit_counts("bad_manifests_get_one_line_naming_file_and_field_and_nothing_is_sent");
}
