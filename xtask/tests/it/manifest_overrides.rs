//! render says when env.yaml overrides a value a definition states: the note
//! names the env.yaml setting and the definition file, and the rendered
//! object carries env.yaml's value.

use crate::manifest_support;
use manifest_support::*;

fn webapp_replicas(fixture: &Fixture, env: &str) -> u64 {
    let files = fixture.manifests(env);
    let (_, text) = files
        .iter()
        .find(|(name, text)| name.contains("webapp") && text.contains("kind: Deployment"))
        .expect("a webapp Deployment");
    let doc: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
    doc["spec"]["replicas"].as_u64().unwrap()
}

fn set_in(fixture: &Fixture, file: &str, from: &str, to: &str) {
    let path = fixture.root().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} lacks {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn equal_values_render_without_a_note() {
    let fixture = Fixture::new();
    let out = fixture.render("minikube", &[]);
    assert_ok(&out);
    assert!(!stdout(&out).contains("note:"), "{}", stdout(&out));
}

#[test]
fn env_yaml_replicas_overriding_the_definition_is_noted() {
    let fixture = Fixture::new();
    set_in(
        &fixture,
        "deployment/webapp.yaml",
        "replicas: 1",
        "replicas: 3",
    );
    let out = fixture.render("minikube", &[]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains(
            "note: environments/minikube/env.yaml `replicas: 1` overrides `replicas: 3` in deployment/webapp.yaml\n"
        ),
        "{text}"
    );
    assert_eq!(webapp_replicas(&fixture, "minikube"), 1);

    // A per-service setting is named as such and wins over `replicas`; a
    // different size is noted too.
    set_in(
        &fixture,
        "environments/minikube/env.yaml",
        "services: {}",
        "services: {webapp: {replicas: 2, size: medium}}",
    );
    let out = fixture.render("minikube", &["--output", "json"]);
    assert_ok(&out);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        report["notes"],
        serde_json::json!([
            "environments/minikube/env.yaml `services.webapp.replicas: 2` overrides `replicas: 3` in deployment/webapp.yaml",
            "environments/minikube/env.yaml `services.webapp.size: medium` overrides `size: small` in deployment/webapp.yaml"
        ])
    );
    assert_eq!(webapp_replicas(&fixture, "minikube"), 2);
}
