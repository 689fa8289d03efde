//! The house rules, checked on every run (as rust-analyzer's `tidy.rs`): each
//! source file says what it is for, ARCHITECTURE.md names only crates the
//! manifests declare and paths that exist, nothing points outside the repo,
//! and no `unwrap()` sits on a code path that handles input.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace root")
        .to_path_buf()
}

/// Every file git tracks or would track (untracked but not ignored).
fn files() -> Vec<PathBuf> {
    let out = Command::new("git")
        .current_dir(root())
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .expect("running git ls-files");
    assert!(out.status.success(), "git ls-files failed");
    out.stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
        .filter(|p| root().join(p).exists())
        .collect()
}

fn rust_files() -> Vec<PathBuf> {
    files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect()
}

fn read(rel: &Path) -> String {
    std::fs::read_to_string(root().join(rel))
        .unwrap_or_else(|e| panic!("reading {}: {e}", rel.display()))
}

#[test]
fn every_source_file_starts_with_a_header_saying_what_it_is_for() {
    let missing: Vec<String> = rust_files()
        .into_iter()
        .filter(|p| !read(p).starts_with("//!"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` header:\n  {}",
        missing.join("\n  ")
    );
}

/// The text of one `## ` section of a markdown file.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("ARCHITECTURE.md has no `## {heading}` section"));
    let body = &doc[start + heading.len() + 5..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

/// The crates a bullet of "Crate choices" is about: the backticked names
/// before its first `:` (`- \`tokio-postgres\` + \`deadpool-postgres\`: why`).
fn crates_of_bullet(line: &str) -> Vec<String> {
    let Some(item) = line.strip_prefix("- ") else {
        return Vec::new();
    };
    let names = item.split_once(':').map_or(item, |(names, _)| names);
    names
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Every dependency the workspace's manifests declare, by crate name, except
/// the workspace's own crates.
fn declared_crates() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .current_dir(root())
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .output()
        .expect("running cargo metadata");
    assert!(out.status.success(), "cargo metadata failed");
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    meta["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .flat_map(|p| p["dependencies"].as_array().cloned().unwrap_or_default())
        .filter(|d| d["path"].is_null())
        .map(|d| d["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn architecture_lists_exactly_the_crates_the_manifests_declare() {
    let doc = read(Path::new("ARCHITECTURE.md"));
    let listed: BTreeSet<String> = section(&doc, "Crate choices")
        .lines()
        .flat_map(crates_of_bullet)
        .collect();
    let declared = declared_crates();
    let unlisted: Vec<&String> = declared.difference(&listed).collect();
    let undeclared: Vec<&String> = listed.difference(&declared).collect();
    assert!(
        unlisted.is_empty() && undeclared.is_empty(),
        "ARCHITECTURE.md's crate choices and the Cargo.toml files disagree\n  \
         declared but not explained: {unlisted:?}\n  explained but not declared: {undeclared:?}"
    );
}

/// A backticked word that names a path in the repository: it starts with one
/// of the repository's top-level entries and has no placeholder in it.
fn repo_path(word: &str, top_level: &BTreeSet<String>) -> Option<String> {
    let word = word.trim_end_matches([':', ',', '.']);
    let first = word.split('/').next()?;
    let placeholder = word.contains(['<', '*', '{', ' ', '$']);
    (word.contains('/') && top_level.contains(first) && !placeholder).then(|| {
        // `file.rs::item` names an item in a file.
        word.split("::").next().unwrap_or(word).to_string()
    })
}

#[test]
fn every_path_architecture_names_exists() {
    let doc = read(Path::new("ARCHITECTURE.md"));
    let top_level: BTreeSet<String> = std::fs::read_dir(root())
        .expect("reading the workspace root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "target")
        .collect();
    let missing: Vec<String> = doc
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|word| repo_path(word, &top_level))
        .filter(|path| !root().join(path).exists())
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist: {missing:?}"
    );
}

/// What a reader of the repository cannot follow: files outside it, and the
/// labels of the planning that produced the code.
const OUTSIDE_REFERENCES: &[&str] = &[
    "../shared",
    "DESIGN.md",
    "DESIGN:",
    "the chapter",
    "the book",
];

fn planning_label(text: &str) -> Option<String> {
    // `H4's`, `(H12)`: the hypothesis labels of a review checklist.
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(1)).find_map(|i| {
        let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let digits = bytes[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let after = bytes.get(i + 1 + digits).copied().unwrap_or(b' ');
        (bytes[i] == b'H' && boundary && digits > 0 && !after.is_ascii_alphanumeric())
            .then(|| text[i..i + 1 + digits].to_string())
    })
}

#[test]
fn nothing_points_outside_the_repository_or_at_planning_labels() {
    let this_file = Path::new("xtask/tests/it/tidy.rs");
    let texts = files().into_iter().filter(|p| {
        p != this_file
            && p.extension()
                .is_some_and(|e| e == "rs" || e == "md" || e == "toml")
    });
    let mut found = Vec::new();
    for path in texts {
        for (n, line) in read(&path).lines().enumerate() {
            let hits = OUTSIDE_REFERENCES
                .iter()
                .filter(|r| line.contains(**r))
                .map(|r| r.to_string())
                .chain(planning_label(line));
            for hit in hits {
                found.push(format!("{}:{}: {hit}", path.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "references a reader cannot follow:\n  {}",
        found.join("\n  ")
    );
}

/// Source files whose `unwrap()`s are justified, with the reason.
const UNWRAP_ALLOWED: &[(&str, &str)] = &[(
    "xtask/src/pipeline/ci_files.rs",
    "a test-only module (`#[cfg(test)] mod ci_files`)",
)];

/// The code of a source file before its `#[cfg(test)]` module.
fn non_test_code(text: &str) -> &str {
    &text[..text.find("#[cfg(test)]").unwrap_or(text.len())]
}

#[test]
fn no_unwrap_outside_tests() {
    let offenders: Vec<String> = rust_files()
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "src"))
        .filter(|p| !UNWRAP_ALLOWED.iter().any(|(f, _)| Path::new(f) == p))
        .flat_map(|p| {
            let text = read(&p);
            non_test_code(&text)
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains(".unwrap()") && !l.trim_start().starts_with("//"))
                .map(|(n, _)| format!("{}:{}", p.display(), n + 1))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "`unwrap()` outside tests (return an error, or add the file to UNWRAP_ALLOWED with \
         the reason):\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn the_planning_label_finder_sees_labels_and_not_words() {
    assert_eq!(planning_label("as H4's check"), Some("H4".to_string()));
    assert_eq!(planning_label("(H12) fixed"), Some("H12".to_string()));
    assert_eq!(planning_label("SHA256 HTTP H2O"), None);
    assert_eq!(planning_label("an h2 stream, H: 3"), None);
}

#[test]
fn a_bullet_names_its_crates_before_the_colon() {
    assert_eq!(
        crates_of_bullet("- `tokio-postgres` + `deadpool-postgres`: plain SQL, not `sqlx`"),
        ["tokio-postgres", "deadpool-postgres"]
    );
    assert!(crates_of_bullet("plain text `x`").is_empty());
}
