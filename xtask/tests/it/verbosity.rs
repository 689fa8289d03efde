//! `-q` and `-v` on a command that reaches the cluster: quiet drops the
//! warnings on stderr, verbose adds a note per step, and stdout (the answer)
//! is the same at every level.

use crate::gitops_support::{ENV, Fixture, configmap, describe, system};

#[test]
fn quiet_drops_warnings_verbose_adds_notes_and_stdout_stays_the_same() {
    let f = Fixture::new(&system("1"));
    f.sync(&[]);
    // An edit that is not committed: diff warns that it ignores it.
    f.write_manifest(
        "configmap-settings.yaml",
        &configmap("settings", "LOG_FORMAT", "text"),
    );

    let normal = f.xtask(&["diff", "--env", ENV]);
    let quiet = f.xtask(&["-q", "diff", "--env", ENV]);
    let verbose = f.xtask(&["diff", "--env", ENV, "--verbose"]);
    for out in [&normal, &quiet, &verbose] {
        assert_eq!(out.status.code(), Some(0), "{}", describe(out));
        assert_eq!(out.stdout, normal.stdout, "{}", describe(out));
    }
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stderr(&normal).contains("warning: uncommitted changes"),
        "{}",
        stderr(&normal)
    );
    assert!(stderr(&quiet).is_empty(), "{}", stderr(&quiet));
    let notes = stderr(&verbose);
    assert!(notes.contains("warning: uncommitted changes"), "{notes}");
    assert!(notes.contains("context `minikube` at "), "{notes}");
    assert!(notes.contains("read the live state: "), "{notes}");

    let both = f.xtask(&["-q", "-v", "diff", "--env", ENV]);
    assert_eq!(both.status.code(), Some(2), "{}", describe(&both));
}
