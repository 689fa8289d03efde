//! Confirmation before destroying anything, answered through a real
//! pseudo-terminal: a sync that prunes and `secrets --rotate` show what they
//! would change and ask; `n` changes nothing, `y` goes ahead, `--yes` never
//! asks, and without a terminal nothing is ever asked.

use crate::gitops_support::{ENV, Fixture, describe, system};
use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Output, Stdio};

/// Run `command` with a pseudo-terminal as stdin, typing `answer` into it.
fn on_terminal(mut command: Command, answer: &str) -> Output {
    let (mut master, slave) = {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two new descriptors, which we own from here.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both descriptors are open and owned by nothing else.
        unsafe {
            (
                std::fs::File::from(OwnedFd::from_raw_fd(master)),
                OwnedFd::from_raw_fd(slave),
            )
        }
    };
    let child = command
        .stdin(Stdio::from(slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn xtask");
    // The terminal's line discipline keeps the line until xtask reads it.
    master
        .write_all(answer.as_bytes())
        .expect("type the answer");
    let out = child.wait_with_output().expect("wait for xtask");
    drop(master);
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn has_webapp_service(f: &Fixture) -> bool {
    f.kubectl(&["-n", "micro", "get", "service", "webapp"])
        .status
        .success()
}

/// Synced, then webapp's Service removed from git: the next sync prunes it.
fn fixture_with_a_prune() -> Fixture {
    let f = Fixture::new(&system("1"));
    f.sync(&[]);
    f.remove_manifest("service-webapp.yaml");
    f.commit("webapp's Service gone");
    f
}

#[test]
fn a_sync_that_prunes_asks_on_a_terminal_and_no_changes_nothing() {
    let f = fixture_with_a_prune();
    let out = on_terminal(f.xtask_command(&["sync", "--env", ENV]), "n\n");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let said = stderr(&out);
    assert!(said.contains("prune  Service  micro/webapp"), "{said}");
    assert!(
        said.contains("deletes 1 object(s). Continue? [y/N]"),
        "{said}"
    );
    assert!(
        said.contains("not confirmed: nothing was changed"),
        "{said}"
    );
    assert!(has_webapp_service(&f), "answered no, yet pruned");

    let out = on_terminal(f.xtask_command(&["sync", "--env", ENV]), "y\n");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!has_webapp_service(&f), "answered yes, not pruned");
}

#[test]
fn yes_or_no_terminal_prunes_without_asking() {
    let f = fixture_with_a_prune();
    let out = on_terminal(f.xtask_command(&["sync", "--env", ENV, "--yes"]), "");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!stderr(&out).contains("Continue?"), "{}", stderr(&out));
    assert!(!has_webapp_service(&f));

    let f = fixture_with_a_prune();
    let out = f
        .xtask_command(&["sync", "--env", ENV])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!stderr(&out).contains("Continue?"), "{}", stderr(&out));
    assert!(!has_webapp_service(&f));
}

#[test]
fn secrets_rotate_asks_on_a_terminal() {
    let cluster = testcluster::BlockingTestCluster::start(testcluster::Options::default()).unwrap();
    let secrets = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .args(["secrets", "--env", "minikube", "--kubeconfig"])
            .arg(cluster.kubeconfig())
            .args(args)
            .env("POSTGRES_PASSWORD", "first")
            .env_remove("REDIS_PASSWORD")
            .env_remove("KUBECONFIG");
        command
    };
    let created = secrets(&[]).stdin(Stdio::null()).output().unwrap();
    assert!(created.status.success(), "{}", describe(&created));

    let out = on_terminal(secrets(&["--rotate"]), "n\n");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let said = stderr(&out);
    assert!(
        said.contains("rotate  Secret micro/postgres-credentials"),
        "{said}"
    );
    assert!(
        said.contains("not confirmed: no Secret was changed"),
        "{said}"
    );
    assert!(out.stdout.is_empty(), "{}", describe(&out));

    let out = on_terminal(secrets(&["--rotate"]), "yes\n");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("secret/postgres-credentials"),
        "{}",
        describe(&out)
    );
}
