//! Bad definitions: a message naming the file and the problem, and nothing written.

use crate::manifest_support;
use manifest_support::*;

/// Renders both environments, breaks one file, renders again: exit 2, the
/// error contains every `expected` fragment, and no manifest changed.
fn assert_rejected(file: &str, edit: impl Fn(&str) -> String, env: &str, expected: &[&str]) {
    let fixture = Fixture::new();
    assert_ok(&fixture.render("minikube", &[]));
    let before = fixture.manifests("minikube");
    let path = fixture.root().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, edit(&text)).unwrap();
    let output = fixture.render(env, &[]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "stdout: {}\nstderr: {}",
        stdout(&output),
        stderr(&output)
    );
    let err = stderr(&output);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    for fragment in expected {
        assert!(err.contains(fragment), "`{fragment}` missing from: {err}");
    }
    assert_eq!(
        before,
        fixture.manifests("minikube"),
        "manifests changed after a failed render"
    );
}

#[test]
fn unknown_key_names_file_line_and_key() {
    assert_rejected(
        "deployment/webapp.yaml",
        |t| t.replace("size: small", "size: small\nreplica: 3"),
        "minikube",
        &["deployment/webapp.yaml", "unknown field `replica`", "line "],
    );
}

#[test]
fn unknown_key_in_env_yaml_names_file_line_and_key() {
    assert_rejected(
        "environments/minikube/env.yaml",
        |t| t.replace("replicas: 1", "replicas: 1\nregistryy: x"),
        "minikube",
        &[
            "environments/minikube/env.yaml",
            "unknown field `registryy`",
            "line ",
        ],
    );
}

#[test]
fn missing_port_names_file_and_key() {
    assert_rejected(
        "deployment/adderservice.yaml",
        |t| {
            t.lines()
                .filter(|l| !l.starts_with("port:"))
                .collect::<Vec<_>>()
                .join("\n")
        },
        "minikube",
        &["deployment/adderservice.yaml", "missing key `port`"],
    );
}

#[test]
fn negative_replicas_names_file_line_and_value() {
    assert_rejected(
        "deployment/auditservice.yaml",
        |t| t.replace("replicas: 1", "replicas: -1"),
        "minikube",
        &["deployment/auditservice.yaml", "replicas", "-1", "line "],
    );
    assert_rejected(
        "environments/minikube/env.yaml",
        |t| t.replace("replicas: 1", "replicas: -1"),
        "minikube",
        &["environments/minikube/env.yaml", "replicas", "-1"],
    );
}

#[test]
fn unknown_environment_names_the_missing_file_and_the_known_ones() {
    let fixture = Fixture::new();
    let output = fixture.render("staging", &[]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("no environment `staging`"), "{err}");
    assert!(err.contains("environments/staging/env.yaml"), "{err}");
    assert!(err.contains("aws, minikube"), "{err}");
    assert!(
        !fixture.root().join("environments/staging").exists(),
        "created a folder for an unknown env"
    );
}

#[test]
fn unknown_dependency_and_unknown_size_are_named() {
    assert_rejected(
        "deployment/webapp.yaml",
        |t| {
            t.replace(
                "dependencies: [adderservice",
                "dependencies: [mysql, adderservice",
            )
        },
        "minikube",
        &["deployment/webapp.yaml", "no definition named `mysql`"],
    );
    assert_rejected(
        "deployment/webapp.yaml",
        |t| t.replace("size: small", "size: huge"),
        "minikube",
        &[
            "deployment/webapp.yaml",
            "size `huge`",
            "environments/minikube/env.yaml",
        ],
    );
}

#[test]
fn infrastructure_image_must_be_pinned_by_digest() {
    assert_rejected(
        "infrastructure/redis.yaml",
        |t| {
            t.lines()
                .map(|l| {
                    if l.starts_with("image:") {
                        "image: docker.io/library/redis:7"
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
        "minikube",
        &["infrastructure/redis.yaml", "not pinned by digest"],
    );
}

#[test]
fn a_generated_variable_cannot_be_overridden() {
    assert_rejected(
        "deployment/adderservice.yaml",
        |t| t.replace("RUST_LOG: info", "RUST_LOG: info\n  LOG_FORMAT: text"),
        "minikube",
        &[
            "deployment/adderservice.yaml",
            "`LOG_FORMAT` is already set",
        ],
    );
}
