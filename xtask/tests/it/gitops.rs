//! `cargo xtask sync / diff / status` against the in-memory API server, with
//! its audit log counting requests and the real kubectl checking results.

use crate::gitops_support;

use gitops_support::{
    ENV, Fixture, deployment, describe, statefulset, stdout_lines, system, terminate, wait_for_line,
};
use std::time::{Duration, Instant};

fn hand_made_configmap(name: &str, labels: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: micro\n  labels:\n    made-by: hand\n{labels}data:\n  a: b\n"
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn first_sync_creates_everything_and_a_second_sync_writes_nothing() {
    let f = Fixture::new(&system("v1"));
    let out = f.sync(&[]);
    assert!(
        out.contains("Deployment") && out.contains("created"),
        "{out}"
    );
    assert!(
        out.contains("8 created, 0 configured, 0 unchanged, 0 pruned"),
        "{out}"
    );

    let listed = f.kubectl_ok(&["get", "deploy,sts,svc,cm", "-n", "micro", "-o", "name"]);
    for name in [
        "deployment.apps/adderservice",
        "deployment.apps/webapp",
        "statefulset.apps/redis",
        "service/adderservice",
        "service/webapp",
        "service/redis",
        "configmap/settings",
    ] {
        assert!(listed.contains(name), "kubectl get lacks {name}:\n{listed}");
    }

    f.clear_events();
    let out = f.sync(&[]);
    assert!(
        out.contains("0 created, 0 configured, 8 unchanged, 0 pruned"),
        "{out}"
    );
    let events = f.events();
    let writes: Vec<_> = events.iter().filter(|e| e.is_write()).collect();
    assert!(writes.is_empty(), "a no-op sync wrote: {writes:?}");
    // One LIST per kind, one of the environment's inventories (in any
    // namespace: a namespace change is seen), no GET per object.
    let gets = events
        .iter()
        .filter(|e| e.verb == "get" && e.name.is_some())
        .count();
    assert_eq!(gets, 0, "no-op sync made per-object GETs: {events:?}");
    let lists = events.iter().filter(|e| e.verb == "list").count();
    assert_eq!(lists, 6, "5 kinds + the inventories: {events:?}");

    let diff = f.xtask(&["diff", "--env", ENV]);
    assert_eq!(diff.status.code(), Some(0), "{}", describe(&diff));
    assert!(text(&diff.stdout).contains("0 to change, 0 to create, 0 to prune, 8 unchanged"));
}

#[test]
fn drift_from_kubectl_scale_shows_in_diff_and_status_and_sync_restores_it() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    f.kubectl_ok(&[
        "scale",
        "deploy/adderservice",
        "-n",
        "micro",
        "--replicas=4",
    ]);

    let diff = f.xtask(&["diff", "--env", ENV]);
    assert_eq!(diff.status.code(), Some(1), "{}", describe(&diff));
    let shown = text(&diff.stdout);
    assert!(
        shown.contains("-  replicas: 4") && shown.contains("+  replicas: 1"),
        "{shown}"
    );
    assert!(
        shown.contains("1 to change, 0 to create, 0 to prune, 7 unchanged"),
        "{shown}"
    );

    let status = f.xtask(&["status", "--env", ENV]);
    assert_eq!(status.status.code(), Some(1), "{}", describe(&status));
    let table = text(&status.stdout);
    let line = table
        .lines()
        .find(|l| l.contains("adderservice") && l.contains("Deployment"))
        .unwrap();
    assert!(line.contains("drifted"), "{table}");

    let out = f.sync(&["--output", "json"]);
    let report: serde_json::Value = serde_json::from_str(out.trim()).expect("json report");
    assert_eq!(report["summary"]["configured"], 1, "{report}");
    let replicas = f.kubectl_ok(&[
        "get",
        "deploy/adderservice",
        "-n",
        "micro",
        "-o",
        "jsonpath={.spec.replicas}",
    ]);
    assert_eq!(replicas.trim(), "1");
    assert_eq!(f.xtask(&["diff", "--env", ENV]).status.code(), Some(0));
    let status = f.xtask(&["status", "--env", ENV]);
    assert_eq!(status.status.code(), Some(0), "{}", describe(&status));
    assert!(
        text(&status.stdout).contains("last synced commit"),
        "{}",
        describe(&status)
    );
}

#[test]
fn objects_gone_from_git_are_pruned_and_hand_made_ones_survive() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    f.kubectl_apply(&hand_made_configmap("handmade", ""));
    // Carries our labels, but sync never created it: must survive too.
    f.kubectl_apply(&hand_made_configmap(
        "impostor",
        "    app.kubernetes.io/managed-by: xtask\n",
    ));

    f.remove_manifest("deployment-webapp.yaml");
    f.remove_manifest("service-webapp.yaml");
    f.commit("remove webapp");
    let diff = f.xtask(&["diff", "--env", ENV]);
    assert_eq!(diff.status.code(), Some(1));
    assert!(
        text(&diff.stdout).contains("0 to change, 0 to create, 2 to prune, 6 unchanged"),
        "{}",
        describe(&diff)
    );

    f.clear_events();
    let out = f.sync(&[]);
    assert!(out.contains("2 pruned"), "{out}");
    let deletes: Vec<String> = f
        .stored_writes()
        .iter()
        .filter(|e| e.verb == "delete")
        .map(|e| e.resource.clone())
        .collect();
    // Reverse dependency order: the Deployment before its Service.
    assert_eq!(deletes, ["deployments", "services"]);

    let gone = f.kubectl(&["get", "deploy/webapp", "-n", "micro"]);
    assert!(
        !gone.status.success() && text(&gone.stderr).contains("NotFound"),
        "{}",
        describe(&gone)
    );
    assert!(
        !f.kubectl(&["get", "svc/webapp", "-n", "micro"])
            .status
            .success()
    );
    f.kubectl_ok(&["get", "configmap/handmade", "-n", "micro"]);
    f.kubectl_ok(&["get", "configmap/impostor", "-n", "micro"]);
    f.kubectl_ok(&["get", "deploy/adderservice", "-n", "micro"]);

    // The inventory now lists only what is committed.
    let inventory = f.kubectl_ok(&[
        "get",
        "configmap/xtask-inventory-minikube",
        "-n",
        "micro",
        "-o",
        "jsonpath={.data.objects}",
    ]);
    assert!(
        !inventory.contains("webapp") && inventory.contains("apps/Deployment/micro/adderservice"),
        "{inventory}"
    );
}

#[test]
fn no_prune_keeps_objects_and_an_empty_commit_is_refused() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    f.remove_manifest("service-webapp.yaml");
    f.commit("drop webapp service");
    let out = f.sync(&["--no-prune"]);
    assert!(out.contains("0 pruned, 1 kept"), "{out}");
    // The kept object is named with its kind and namespace, and why it stayed.
    assert!(
        out.contains("kept Service micro/webapp: gone from git, not deleted (--no-prune)"),
        "{out}"
    );
    f.kubectl_ok(&["get", "svc/webapp", "-n", "micro"]);

    for (name, _) in system("v1") {
        if name != "service-webapp.yaml" {
            f.remove_manifest(&name);
        }
    }
    f.write_manifest(".keep", "");
    f.commit("empty");
    f.clear_events();
    let refused = f.xtask(&["sync", "--env", ENV]);
    assert_eq!(refused.status.code(), Some(2), "{}", describe(&refused));
    assert!(
        text(&refused.stderr).contains("--allow-empty"),
        "{}",
        describe(&refused)
    );
    assert!(f.stored_writes().is_empty());
}

#[test]
fn rev_of_an_older_commit_rolls_the_images_back() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    f.write_manifest(
        "deployment-adderservice.yaml",
        &deployment("adderservice", "localhost:5000/adderservice:v2", 8080),
    );
    f.commit("adderservice v2");
    f.clear_events();
    let out = f.sync(&[]);
    assert!(
        out.contains("0 created, 1 configured, 7 unchanged"),
        "{out}"
    );
    let patches: Vec<_> = f
        .stored_writes()
        .into_iter()
        .filter(|e| e.resource == "deployments")
        .collect();
    assert_eq!(patches.len(), 1, "{patches:?}");
    let image = |f: &Fixture| {
        f.kubectl_ok(&[
            "get",
            "deploy/adderservice",
            "-n",
            "micro",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
    };
    assert_eq!(image(&f), "localhost:5000/adderservice:v2");

    let status = text(
        &f.xtask(&["status", "--env", ENV, "--output", "json"])
            .stdout,
    );
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["commitsAhead"], 0);

    f.sync(&["--rev", "HEAD~1"]);
    assert_eq!(image(&f), "localhost:5000/adderservice:v1");
    // HEAD is now one commit ahead of what is deployed.
    let status = text(
        &f.xtask(&["status", "--env", ENV, "--output", "json"])
            .stdout,
    );
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["commitsAhead"], 1, "{status}");
}

#[test]
fn a_failed_rollout_exits_non_zero_naming_the_object_and_condition() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    f.write_manifest(
        "deployment-webapp.yaml",
        &deployment("webapp", "localhost:5000/webapp:broken", 3000),
    );
    f.commit("broken webapp");
    let out = f.xtask(&["sync", "--env", ENV, "--timeout", "60s"]);
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("Deployment/webapp") && err.contains("ProgressDeadlineExceeded"),
        "{}",
        describe(&out)
    );
    // The change set is still shown.
    assert!(
        text(&out.stdout).contains("configured"),
        "{}",
        describe(&out)
    );
}

/// The commit HEAD names in the fixture's repository.
fn head_commit(f: &Fixture) -> String {
    let repo = git2::Repository::open(f.root()).unwrap();
    repo.head()
        .unwrap()
        .peel_to_commit()
        .unwrap()
        .id()
        .to_string()
}

#[test]
fn a_failed_rollout_names_the_condition_and_the_rollback_and_claims_no_sync() {
    let f = Fixture::new(&system("v1"));
    f.sync(&[]);
    let good = head_commit(&f);
    f.write_manifest(
        "deployment-webapp.yaml",
        &deployment("webapp", "localhost:5000/webapp:broken", 3000),
    );
    f.commit("broken webapp");
    let out = f.xtask(&["sync", "--env", ENV, "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = text(&out.stderr);
    let rollback = format!("`cargo xtask sync --env {ENV} --rev {}`", &good[..7]);
    for part in [
        "rollout of Deployment/webapp failed",
        "ProgressDeadlineExceeded",
        "has timed out progressing",
        rollback.as_str(),
    ] {
        assert!(err.contains(part), "`{part}` missing: {}", describe(&out));
    }
    // The test server has no Pods or Events: none are made up.
    assert!(!err.contains("pod events"), "{}", describe(&out));
    let stdout = text(&out.stdout);
    assert!(
        !stdout.lines().any(|l| l.starts_with("synced")),
        "{}",
        describe(&out)
    );
    assert!(
        stdout.contains("did not finish syncing"),
        "{}",
        describe(&out)
    );

    // The command it names rolls back.
    let command = rollback.trim_matches('`');
    let args: Vec<&str> = command.split(' ').skip(2).collect();
    let back = f.xtask(&args);
    assert!(back.status.success(), "{}", describe(&back));
    assert!(
        text(&back.stdout).contains(&format!("synced {}", &good[..7])),
        "{}",
        describe(&back)
    );
}

/// What a terminal shows of `text`: ANSI escape sequences removed.
fn without_escapes(text: &str) -> String {
    let mut plain = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            plain.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        }
    }
    plain
}

/// The last frame of the bar starting with `what`: up to its `done`.
fn last_bar<'a>(screen: &'a str, what: &str) -> &'a str {
    let start = screen
        .rfind(what)
        .unwrap_or_else(|| panic!("no `{what}` bar: {screen}"));
    let rest = &screen[start..];
    rest.find(" done").map_or(rest, |end| &rest[..end + 5])
}

/// On a terminal (util-linux `script` provides one), the apply bar counts every
/// object the sync writes, the Namespace too, and both bars end saying done.
#[test]
fn on_a_terminal_the_progress_bars_count_every_object_and_end_with_done() {
    let f = Fixture::new(&system("v1"));
    let command = format!(
        "{} sync --env {ENV} --timeout 60s --root {}",
        env!("CARGO_BIN_EXE_xtask"),
        f.root().display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("KUBECONFIG", f.kubeconfig())
        .env("NO_COLOR", "1")
        .output()
        .expect("run util-linux `script` (it provides the terminal)");
    assert!(out.status.success(), "{}", describe(&out));
    let screen = without_escapes(&text(&out.stdout));
    assert!(screen.contains("8 created"), "{screen}");
    let apply = last_bar(&screen, "applying ");
    assert!(
        apply.starts_with("applying 8/8 ") && apply.ends_with(" done"),
        "{apply:?}\n{screen}"
    );
    let rollout = last_bar(&screen, "rollout ");
    assert_eq!(rollout, "rollout 2/2 ready done", "{screen}");
    assert!(!screen.contains("2/2 ready waiting"), "{screen}");
}

#[test]
fn a_wrong_context_is_refused_and_nothing_is_written() {
    let f = Fixture::new(&system("v1"));
    f.clear_events();
    let out = f.xtask(&["sync", "--env", "aws"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(
        err.contains("current kube context is `minikube`") && err.lines().count() == 1,
        "{err}"
    );
    assert!(
        f.events().is_empty(),
        "a refused sync still talked to the server"
    );
    // A context named explicitly is used (here: no manifests for aws in git).
    let out = f.xtask(&["sync", "--env", "aws", "--context", "minikube"]);
    assert!(
        text(&out.stderr).contains("environments/aws/manifests"),
        "{}",
        describe(&out)
    );
}

#[test]
fn unreachable_cluster_and_missing_kubeconfig_give_one_line_errors() {
    let f = Fixture::new(&system("v1"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = std::fs::read_to_string(f.kubeconfig()).unwrap();
    let server = config
        .lines()
        .find(|l| l.trim_start().starts_with("server:"))
        .unwrap()
        .trim()
        .to_string();
    let dead = f.root().join("dead-kubeconfig");
    std::fs::write(
        &dead,
        config.replace(&server, &format!("server: http://127.0.0.1:{port}")),
    )
    .unwrap();
    let out = f
        .xtask_command(&["sync", "--env", ENV])
        .env("KUBECONFIG", &dead)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("cannot reach the cluster at http://127.0.0.1"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let out = f
        .xtask_command(&["diff", "--env", ENV])
        .env("KUBECONFIG", f.root().join("nope"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        describe(&out)
    );
}

#[test]
fn dry_run_stores_nothing_and_uncommitted_edits_are_ignored() {
    let f = Fixture::new(&system("v1"));
    f.clear_events();
    let out = f.sync(&["--dry-run"]);
    assert!(out.contains("created (dry run)"), "{out}");
    assert!(f.stored_writes().is_empty(), "{:?}", f.stored_writes());
    assert!(!f.kubectl(&["get", "ns/micro"]).status.success());

    f.sync(&[]);
    f.write_manifest(
        "deployment-webapp.yaml",
        &deployment("webapp", "localhost:5000/webapp:dirty", 3000),
    );
    f.clear_events();
    let out = f.xtask(&["sync", "--env", ENV]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("uncommitted changes"),
        "{}",
        describe(&out)
    );
    assert!(f.stored_writes().is_empty());

    // A real change in dry-run mode: dry-run writes only.
    f.commit("webapp dirty");
    f.clear_events();
    let out = f.sync(&["--dry-run"]);
    assert!(out.contains("configured (dry run)"), "{out}");
    assert!(f.stored_writes().is_empty());
    assert!(f.events().iter().any(|e| e.is_write() && e.dry_run));
}

/// `sync --watch` every second, plus `extra`.
fn watch_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["sync", "--env", ENV, "--watch", "--interval", "1s"];
    args.extend_from_slice(extra);
    args
}

/// Starts `cmd` with stdout and stderr piped (a watch prints a few lines per sync,
/// well under a pipe's buffer).
fn spawn_piped(mut cmd: std::process::Command) -> std::process::Child {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn watch_syncs_a_new_commit_within_one_interval_and_stops_on_sigterm() {
    let f = Fixture::new(&system("v1"));
    let mut child = spawn_piped(f.xtask_command(&watch_args(&["--no-wait"])));
    let lines = stdout_lines(&mut child);
    let image = |f: &Fixture| {
        let out = f.kubectl(&[
            "get",
            "deploy/webapp",
            "-n",
            "micro",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ]);
        text(&out.stdout)
    };
    let wait_for = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if image(&f) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    assert!(
        wait_for("localhost:5000/webapp:v1"),
        "the watch never made its first sync"
    );
    f.write_manifest(
        "deployment-webapp.yaml",
        &deployment("webapp", "localhost:5000/webapp:v3", 3000),
    );
    let v3 = f.commit("webapp v3");
    // With a 1s interval this happens within about a second; the deadline
    // only keeps a loaded machine from failing the test.
    assert!(
        wait_for("localhost:5000/webapp:v3"),
        "the new commit was not synced"
    );
    // The next check finds nothing new: one line says so.
    let mut seen = Vec::new();
    wait_for_line(&lines, &format!("up to date at {}", &v3[..7]), &mut seen);

    stop_cleanly(&mut child);
    seen.extend(lines.iter());
    let printed = seen.join("\n");
    // One line per check, each after the local time `HH:MM:SS`.
    let checks: Vec<&str> = printed
        .lines()
        .filter_map(|l| {
            let (time, rest) = l.split_once(' ')?;
            let digits = time
                .split(':')
                .all(|p| p.len() == 2 && p.parse::<u8>().is_ok());
            (time.len() == 8 && digits).then_some(rest)
        })
        .collect();
    // Two syncs: the first commit and the new one; none while HEAD stood still.
    let syncs: Vec<&&str> = checks.iter().filter(|l| l.starts_with("synced ")).collect();
    assert_eq!(syncs.len(), 2, "{printed}");
    assert!(syncs[0].ends_with(": 8 created"), "{printed}");
    assert!(syncs[1].ends_with(": 1 configured"), "{printed}");
    let up_to_date = checks
        .iter()
        .filter(|l| l.starts_with("up to date at "))
        .count();
    assert!(
        up_to_date >= 1,
        "no `up to date` line between the syncs:\n{printed}"
    );
    // The object table only for the two syncs that changed something.
    let tables = printed.lines().filter(|l| l.starts_with("KIND")).count();
    assert_eq!(tables, 2, "{printed}");
}

#[test]
fn watch_with_fetch_deploys_what_the_upstream_branch_gains() {
    let f = Fixture::new(&system("v1"));
    let clone_dir = tempfile::tempdir().unwrap();
    git2::Repository::clone(f.root().to_str().unwrap(), clone_dir.path())
        .expect("clone the fixture repository");
    let mut child =
        spawn_piped(f.xtask_command_in(clone_dir.path(), &watch_args(&["--fetch", "--no-wait"])));
    let image = |f: &Fixture| {
        let out = f.kubectl(&[
            "get",
            "deploy/adderservice",
            "-n",
            "micro",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ]);
        text(&out.stdout)
    };
    let wait_for = |want: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if image(&f) == want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    };
    assert!(
        wait_for("localhost:5000/adderservice:v1"),
        "the watch never made its first sync"
    );
    // A commit upstream only: the clone's own HEAD does not move.
    f.write_manifest(
        "deployment-adderservice.yaml",
        &deployment("adderservice", "localhost:5000/adderservice:v4", 8080),
    );
    f.commit("adderservice v4");
    assert!(
        wait_for("localhost:5000/adderservice:v4"),
        "the fetched commit was not synced"
    );
    stop_cleanly(&mut child);
}

#[test]
fn watch_retries_a_failed_sync_at_every_interval_without_a_new_commit() {
    let f = Fixture::new(&system_with(
        "v1",
        "deployment-webapp.yaml",
        deployment("webapp", "localhost:5000/webapp:broken", 3000),
    ));
    let mut child = spawn_piped(f.xtask_command(&watch_args(&["--timeout", "30s"])));
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    // Deadlines only keep a loaded machine from failing the test.
    let mut wait_for_line = |what: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(what);
                    seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no stderr line with `{what}`:\n{}", seen.join("\n"));
    };
    // The first sync applies everything, then the webapp rollout fails.
    wait_for_line("ProgressDeadlineExceeded");

    // The live state changes behind the watch's back; no commit follows.
    f.kubectl_ok(&["delete", "deployment", "webapp", "-n", "micro"]);
    let creates_of_webapp = |f: &Fixture| {
        f.stored_writes()
            .iter()
            .filter(|e| {
                e.resource == "deployments"
                    && e.name.as_deref() == Some("webapp")
                    && e.field_manager.as_deref() == Some("xtask")
                    && e.code == 201
            })
            .count()
    };
    // Only a retry of the same commit can bring it back.
    wait_for_line("retrying the failed sync of");
    let deadline = Instant::now() + Duration::from_secs(30);
    while creates_of_webapp(&f) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(creates_of_webapp(&f), 2, "webapp was not re-created");
    f.kubectl_ok(&["get", "deployment", "webapp", "-n", "micro"]);

    stop_cleanly(&mut child);
}

/// The system at `version` with one file replaced.
fn system_with(version: &str, name: &str, text: String) -> Vec<(String, String)> {
    let mut files = system(version);
    for (file, contents) in files.iter_mut() {
        if file == name {
            *contents = text.clone();
        }
    }
    files
}

/// SIGTERM to a watch, which must exit 0; its stderr (if still piped) for further checks.
fn stop_cleanly(child: &mut std::process::Child) -> String {
    let status = terminate(child);
    let err = child
        .stderr
        .as_mut()
        .map(|e| read_all(Some(e)))
        .unwrap_or_default();
    assert!(
        status.success(),
        "watch did not stop cleanly: {status:?}\n{err}"
    );
    err
}

fn read_all(pipe: Option<&mut impl std::io::Read>) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(pipe.unwrap(), &mut text).unwrap();
    text
}

#[test]
fn watch_stops_on_sigterm_during_a_hung_fetch_and_kills_it() {
    let f = Fixture::new(&system("v1"));
    let clone_dir = tempfile::tempdir().unwrap();
    git2::Repository::clone(f.root().to_str().unwrap(), clone_dir.path())
        .expect("clone the fixture repository");
    // The remote never answers: its upload-pack records its pid and sleeps.
    let pid_file = clone_dir.path().join("upload-pack.pid");
    git2::Repository::open(clone_dir.path())
        .unwrap()
        .config()
        .unwrap()
        .set_str(
            "remote.origin.uploadpack",
            &format!("echo $$ > '{}'; exec sleep 600 #", pid_file.display()),
        )
        .unwrap();
    let mut child =
        spawn_piped(f.xtask_command_in(clone_dir.path(), &watch_args(&["--fetch", "--no-wait"])));
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<u32>() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the fetch never started");
        std::thread::sleep(Duration::from_millis(100));
    };

    let err = stop_cleanly(&mut child);
    assert!(err.contains("fetch cancelled"), "{err}");
    // The fetch's helper went with it (a zombie until init reaps it is fine).
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!alive(), "the hung fetch (pid {pid}) outlived the watch");
    assert!(
        !read_all(child.stdout.as_mut()).contains("synced "),
        "nothing was fetched, so nothing may be synced"
    );
}

#[test]
fn watch_stops_on_sigterm_during_a_rollout_wait() {
    // Never ready: the sync waits for it until --timeout.
    let f = Fixture::new(&system_with(
        "v1",
        "statefulset-redis.yaml",
        statefulset("redis", "redis:broken"),
    ));
    let mut child = spawn_piped(f.xtask_command(&watch_args(&["--timeout", "10m"])));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f
        .stored_writes()
        .iter()
        .any(|e| e.resource == "statefulsets" && e.code == 201)
    {
        assert!(
            Instant::now() < deadline,
            "the StatefulSet was never applied"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let err = stop_cleanly(&mut child);
    assert!(
        err.contains("sync of") && err.contains("cancelled"),
        "{err}"
    );
    // Deployments come after the StatefulSet is ready: never, here.
    let deployments = f.kubectl_ok(&["get", "deploy", "-n", "micro", "-o", "name"]);
    assert!(deployments.trim().is_empty(), "{deployments}");
}
