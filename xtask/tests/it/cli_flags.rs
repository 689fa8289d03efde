//! The flags every command shares, on the real binary: `-o` for `--output`,
//! `--color auto|always|never` with NO_COLOR, and `completions <shell>`.
//! Everything here runs offline (review and render read this repository).

use std::process::{Command, Output};

fn xtask(args: &[&str], no_color: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
    cmd.args(args).env_remove("NO_COLOR");
    if let Some(value) = no_color {
        cmd.env("NO_COLOR", value);
    }
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const ESC: char = '\x1b';

#[test]
fn dash_o_is_output_on_review_and_render() {
    let review = xtask(&["review", "--base", "HEAD", "-o", "json"], None);
    assert_eq!(review.status.code(), Some(0), "{}", stderr(&review));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&review)).unwrap();
    assert!(doc["base"]["commit"].is_string(), "{doc}");

    let render = xtask(
        &["render", "--env", "minikube", "--check", "-o", "json"],
        None,
    );
    assert_eq!(render.status.code(), Some(0), "{}", stderr(&render));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&render)).unwrap();
    assert_eq!(doc["env"], "minikube", "{doc}");
}

#[test]
fn dash_o_parses_on_the_cluster_commands() {
    // Parsing fails at the first unknown flag, so an error naming --bogus
    // (and not -o) shows -o json was accepted, with no cluster needed.
    for command in ["diff", "sync", "status"] {
        let out = xtask(
            &[command, "--env", "minikube", "-o", "json", "--bogus"],
            None,
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains("unexpected argument '--bogus'"),
            "{command}: {err}"
        );
        assert!(!err.contains("'-o'"), "{command}: {err}");
    }
}

#[test]
fn color_always_paints_a_pipe_never_and_no_color_do_not() {
    let text = ["review", "--base", "HEAD", "-o", "text"];
    let with = |flag: &[&str], no_color: Option<&str>| {
        let args: Vec<&str> = text.iter().chain(flag).copied().collect();
        let out = xtask(&args, no_color);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        stdout(&out)
    };
    let always = with(&["--color", "always"], None);
    assert!(always.contains(ESC), "{always:?}");
    assert!(always.contains("review HEAD"), "{always:?}");
    // Global: accepted before the subcommand too.
    let mut before = vec!["--color", "always"];
    before.extend(text);
    assert!(stdout(&xtask(&before, None)).contains(ESC));

    for (flag, no_color) in [
        (&["--color", "never"][..], None),
        (&[][..], None), // auto, and our stdout is a pipe
        (&["--color", "auto"][..], Some("1")),
    ] {
        let plain = with(flag, no_color);
        assert!(
            !plain.contains(ESC),
            "{flag:?} NO_COLOR={no_color:?}: {plain:?}"
        );
        assert!(plain.contains("review HEAD"), "{plain:?}");
    }
    // An explicit `always` beats NO_COLOR; an empty NO_COLOR is unset.
    assert!(with(&["--color", "always"], Some("1")).contains(ESC));
    assert!(with(&["--color", "always"], Some("")).contains(ESC));
}

#[test]
fn completions_name_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = xtask(&["completions", shell], None);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for command in ["render", "review", "secrets", "completions"] {
            assert!(script.contains(command), "{shell} script lacks {command}");
        }
        assert!(script.contains("--color"), "{shell} script lacks --color");
    }
    assert!(stdout(&xtask(&["completions", "bash"], None)).contains("_xtask"));
    assert!(stdout(&xtask(&["completions", "fish"], None)).contains("complete -c xtask"));
    let bad = xtask(&["completions", "tcsh"], None);
    assert_eq!(bad.status.code(), Some(2));
}
