//! The CI files call xtask; every `cargo xtask ...` line they hold must parse
//! with xtask's own command line, so a renamed flag breaks this test, not a
//! pipeline on the CI server.

use clap::Parser;
use std::path::{Path, PathBuf};

/// The Jenkinsfile and every workflow of .github/workflows/.
fn ci_files(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("Jenkinsfile")];
    let workflows = root.join(".github/workflows");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&workflows)
        .unwrap_or_else(|e| panic!("reading {}: {e}", workflows.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    found.sort();
    files.extend(found);
    files
}

/// The words after `cargo xtask` on one line, up to the end of the shell
/// command (a quote closing a Groovy `sh '...'`, `||`, `&&`, `;`).
fn invocation(line: &str) -> Option<Vec<String>> {
    let (_, rest) = line.split_once("cargo xtask ")?;
    let end = ["'", "||", "&&", ";", " |"]
        .iter()
        .filter_map(|stop| rest.find(stop))
        .min()
        .unwrap_or(rest.len());
    let words = rest[..end]
        .split_whitespace()
        .map(|w| w.trim_matches('"').to_string())
        .collect();
    Some(words)
}

#[test]
fn every_cargo_xtask_line_of_the_ci_files_parses() {
    let root = crate::workspace::root();
    let mut parsed = 0;
    for file in ci_files(&root) {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        for (n, line) in text.lines().enumerate() {
            // Comments may name a command in prose.
            let code = line.trim_start();
            if code.starts_with('#') || code.starts_with("//") {
                continue;
            }
            let Some(words) = invocation(line) else {
                continue;
            };
            let argv = std::iter::once("cargo xtask".to_string()).chain(words);
            if let Err(e) = crate::Cli::try_parse_from(argv) {
                panic!("{}:{}: `{}`:\n{e}", file.display(), n + 1, line.trim());
            }
            parsed += 1;
        }
    }
    // The Jenkinsfile's five stages and the workflows' calls.
    assert!(parsed >= 8, "only {parsed} `cargo xtask` lines found");
}

#[test]
fn a_renamed_flag_fails_to_parse() {
    let words =
        invocation("        sh 'cargo xtask pipeline --env minikube --stage build'").unwrap();
    assert_eq!(words, ["pipeline", "--env", "minikube", "--stage", "build"]);
    let argv = std::iter::once("cargo xtask".to_string()).chain(words);
    assert!(crate::Cli::try_parse_from(argv).is_err());
}
