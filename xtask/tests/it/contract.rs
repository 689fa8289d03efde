//! The output contract: every command with `--output` prints, in json and in
//! yaml, a document that validates against its JSON Schema in
//! `xtask/schemas/`, and on failure the `error` document of
//! `xtask/schemas/error.json` with exit code 2. Other test modules call
//! [`assert_document`] on the documents they already produce (build-all,
//! pipeline).

use crate::gitops_support::{ENV, Fixture, describe, system};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn schema_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{name}.json"))
}

/// The document on stdout, read as `format` (`json` or `yaml`).
pub fn parse(stdout: &[u8], format: &str) -> Value {
    let text = String::from_utf8_lossy(stdout);
    match format {
        "json" => serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{text}")),
        "yaml" => serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("stdout is not one YAML document ({e}):\n{text}")),
        other => panic!("no format {other}"),
    }
}

/// `document` is valid against `xtask/schemas/<schema>.json`.
pub fn assert_valid(schema: &str, document: &Value) {
    let path = schema_path(schema);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let schema_doc: Value = serde_json::from_str(&text).expect("a schema is JSON");
    let validator = jsonschema::validator_for(&schema_doc)
        .unwrap_or_else(|e| panic!("{} is not a valid schema: {e}", path.display()));
    let errors: Vec<String> = validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the document does not follow schemas/{schema}.json:\n  {}\n{document:#}",
        errors.join("\n  ")
    );
}

/// The command succeeded (or exited 1, a documented answer) and its stdout
/// follows `schema`; returns the document.
pub fn assert_document(schema: &str, out: &Output, format: &str) -> Value {
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "expected a document, got: {}",
        describe(out)
    );
    let doc = parse(&out.stdout, format);
    assert_valid(schema, &doc);
    doc
}

/// The command failed with exit 2 and stdout holds only the error document.
pub fn assert_error_document(out: &Output, format: &str) -> Value {
    assert_eq!(out.status.code(), Some(2), "{}", describe(out));
    let doc = parse(&out.stdout, format);
    assert_valid("error", &doc);
    assert_eq!(doc["error"]["exitCode"], 2, "{doc}");
    doc
}

fn xtask_in_workspace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .output()
        .expect("running xtask")
}

#[test]
fn render_check_prints_its_document_and_an_unknown_env_the_error_document() {
    for format in ["json", "yaml"] {
        let out = xtask_in_workspace(&["render", "--env", ENV, "--check", "-o", format]);
        let doc = assert_document("render", &out, format);
        assert_eq!(doc["env"], ENV);
        let out = xtask_in_workspace(&["render", "--env", "nosuch", "-o", format]);
        let doc = assert_error_document(&out, format);
        assert!(
            doc["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no environment `nosuch`"),
            "{doc}"
        );
    }
}

#[test]
fn review_prints_its_document_and_an_unknown_revision_the_error_document() {
    for format in ["json", "yaml"] {
        let out = xtask_in_workspace(&["review", "--base", "HEAD", "-o", format]);
        assert_document("review", &out, format);
        let out = xtask_in_workspace(&["review", "--base", "no-such-rev", "-o", format]);
        assert_error_document(&out, format);
    }
}

#[test]
fn build_and_pipeline_failures_print_the_error_document() {
    for format in ["json", "yaml"] {
        let out = xtask_in_workspace(&["build", "nosuchservice", "-o", format]);
        assert_error_document(&out, format);
        let out = xtask_in_workspace(&["pipeline", "--env", "nosuch", "-o", format]);
        assert_error_document(&out, format);
    }
}

/// A synced fixture with one drifted object: diff, sync and status all have
/// something to say.
fn drifted_fixture() -> Fixture {
    let f = Fixture::new(&system("1"));
    f.sync(&[]);
    let scaled = f.kubectl(&[
        "-n",
        "micro",
        "scale",
        "deployment/adderservice",
        "--replicas=3",
    ]);
    assert!(scaled.status.success(), "{}", describe(&scaled));
    f
}

#[test]
fn diff_sync_and_status_follow_their_schemas_in_json_and_yaml() {
    let f = drifted_fixture();
    for format in ["json", "yaml"] {
        let out = f.xtask(&["diff", "--env", ENV, "-o", format]);
        let doc = assert_document("diff", &out, format);
        assert_eq!(doc["summary"]["configure"], 1, "{doc}");
        let out = f.xtask(&["status", "--env", ENV, "-o", format]);
        let doc = assert_document("status", &out, format);
        assert_eq!(doc["summary"]["drifted"], 1, "{doc}");
        assert_eq!(doc["commit"], doc["syncedCommit"], "{doc}");
    }
    for format in ["json", "yaml"] {
        let out = f.xtask(&["sync", "--env", ENV, "-o", format]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let doc = assert_document("sync", &out, format);
        let configured = if format == "json" { 1 } else { 0 };
        assert_eq!(doc["summary"]["configured"], configured, "{doc}");
    }
}

#[test]
fn diff_sync_and_status_print_the_error_document_when_the_manifests_are_broken() {
    let f = Fixture::new(&system("1"));
    f.write_manifest(
        "broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [not, a, map]\n",
    );
    f.commit("a broken manifest");
    for command in ["diff", "sync", "status"] {
        for format in ["json", "yaml"] {
            let out = f.xtask(&[command, "--env", ENV, "-o", format]);
            let doc = assert_error_document(&out, format);
            assert!(
                doc["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("broken.yaml"),
                "{command} -o {format}: {doc}"
            );
        }
    }
}
