//! Every rendered object (of both environments, and the committed manifests of
//! the workspace) deserializes into its typed k8s-openapi struct without
//! losing a field, and follows the manifest invariants ARCHITECTURE.md lists.

use crate::manifest_support;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use manifest_support::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

#[derive(Default)]
struct Objects {
    namespaces: Vec<Namespace>,
    deployments: BTreeMap<String, Deployment>,
    stateful_sets: BTreeMap<String, StatefulSet>,
    services: BTreeMap<String, Service>,
    budgets: BTreeMap<String, PodDisruptionBudget>,
    policies: BTreeMap<String, NetworkPolicy>,
}

/// Deserializes into `T` and back: the result must equal the file's tree, so
/// no key was unknown to the typed struct (k8s-openapi ignores unknown keys).
fn typed<T: DeserializeOwned + Serialize>(file: &str, value: &serde_yaml::Value) -> T {
    let object: T = serde_yaml::from_value(value.clone()).unwrap_or_else(|e| panic!("{file}: {e}"));
    let back = serde_yaml::to_value(&object).unwrap();
    assert_eq!(&back, value, "{file}: keys lost in the typed round trip");
    object
}

fn parse(env: &str, files: &BTreeMap<String, String>) -> Objects {
    let mut objects = Objects::default();
    for (file, text) in files {
        let value: serde_yaml::Value =
            serde_yaml::from_str(text).unwrap_or_else(|e| panic!("{env}/{file}: {e}"));
        let kind = value["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("{env}/{file}: no kind"))
            .to_string();
        let api_version = value["apiVersion"].as_str().unwrap().to_string();
        let name = value["metadata"]["name"].as_str().unwrap().to_string();
        assert_eq!(
            file,
            &format!("{}-{name}.yaml", kind.to_lowercase()),
            "{env}: file name of {kind}/{name}"
        );
        let allowed = ["v1", "apps/v1", "policy/v1", "networking.k8s.io/v1"];
        assert!(
            allowed.contains(&api_version.as_str()),
            "{env}/{file}: apiVersion {api_version}"
        );
        let labels = &value["metadata"]["labels"];
        for (key, want) in [
            ("app.kubernetes.io/part-of", Some("micro")),
            ("app.kubernetes.io/managed-by", Some("xtask")),
        ] {
            assert_eq!(labels[key].as_str(), want, "{env}/{file}: label {key}");
        }
        assert!(
            labels["app.kubernetes.io/name"]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "{env}/{file}: name label"
        );
        // The version label is only where the versioned image is: on
        // workloads. Elsewhere it would move with every release.
        let workload = kind == "Deployment" || kind == "StatefulSet";
        assert_eq!(
            labels["app.kubernetes.io/version"]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            workload,
            "{env}/{file}: version label only on workloads"
        );
        if kind != "Namespace" {
            assert_eq!(
                value["metadata"]["namespace"].as_str(),
                Some("micro"),
                "{env}/{file}: namespace"
            );
        }
        let path = format!("{env}/{file}");
        match kind.as_str() {
            "Namespace" => objects.namespaces.push(typed(&path, &value)),
            "Deployment" => drop(objects.deployments.insert(name, typed(&path, &value))),
            "StatefulSet" => drop(objects.stateful_sets.insert(name, typed(&path, &value))),
            "Service" => drop(objects.services.insert(name, typed(&path, &value))),
            "PodDisruptionBudget" => drop(objects.budgets.insert(name, typed(&path, &value))),
            "NetworkPolicy" => drop(objects.policies.insert(name, typed(&path, &value))),
            other => {
                panic!("{env}/{file}: unexpected kind {other} (a Secret must never be rendered)")
            }
        }
    }
    objects
}

fn env_value<'a>(
    container: &'a Container,
    name: &str,
) -> Option<&'a k8s_openapi::api::core::v1::EnvVar> {
    container.env.as_ref()?.iter().find(|e| e.name == name)
}

/// No Secret value on a command line (argv is world-readable in /proc): no `$(VAR)`
/// expansion of a Secret-backed variable in command, args or exec probes, and no password
/// flag (`--requirepass`, `redis-cli -a`).
fn check_no_secret_on_command_line(ctx: &str, container: &Container) {
    let secret_vars: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .filter(|e| {
            e.value_from
                .as_ref()
                .is_some_and(|v| v.secret_key_ref.is_some())
        })
        .map(|e| e.name.as_str())
        .collect();
    let probe_commands = [&container.liveness_probe, &container.readiness_probe]
        .into_iter()
        .flatten()
        .filter_map(|p| p.exec.as_ref()?.command.as_ref());
    let words: Vec<&String> = [container.command.as_ref(), container.args.as_ref()]
        .into_iter()
        .flatten()
        .chain(probe_commands)
        .flatten()
        .collect();
    for word in words {
        for var in &secret_vars {
            assert!(
                !word.contains(&format!("$({var})")),
                "{ctx}: Secret-backed {var} expanded onto a command line: {word:?}"
            );
        }
        for flag in ["--requirepass", "redis-cli -a", "--pass "] {
            assert!(
                !word.contains(flag),
                "{ctx}: password flag {flag:?} on a command line: {word:?}"
            );
        }
    }
}

/// A service pod drains on SIGTERM (`/readyz` 503 for SHUTDOWN_DELAY_SECS, the name the
/// services read) and gets a stop budget well beyond that drain.
fn check_drain(ctx: &str, pod: &PodSpec, container: &Container) {
    let delay: i64 = env_value(container, micro_common::server::SHUTDOWN_DELAY_ENV)
        .and_then(|e| e.value.as_deref())
        .unwrap_or_else(|| panic!("{ctx}: no SHUTDOWN_DELAY_SECS"))
        .parse()
        .unwrap_or_else(|e| panic!("{ctx}: SHUTDOWN_DELAY_SECS: {e}"));
    assert!(delay > 0, "{ctx}: no drain delay");
    let grace = pod
        .termination_grace_period_seconds
        .unwrap_or_else(|| panic!("{ctx}: no terminationGracePeriodSeconds"));
    assert!(grace > delay, "{ctx}: grace {grace} s <= drain {delay} s");
}

/// Requests and limits, the restricted security context, probes.
fn check_container(ctx: &str, pod: &PodSpec, container: &Container) {
    check_no_secret_on_command_line(ctx, container);
    let resources = container
        .resources
        .as_ref()
        .unwrap_or_else(|| panic!("{ctx}: no resources"));
    for (what, amounts) in [
        ("requests", &resources.requests),
        ("limits", &resources.limits),
    ] {
        let amounts = amounts
            .as_ref()
            .unwrap_or_else(|| panic!("{ctx}: no {what}"));
        assert!(
            amounts.contains_key("cpu") && amounts.contains_key("memory"),
            "{ctx}: {what} {amounts:?}"
        );
    }
    let security = container
        .security_context
        .as_ref()
        .unwrap_or_else(|| panic!("{ctx}: no securityContext"));
    assert_eq!(
        security.read_only_root_filesystem,
        Some(true),
        "{ctx}: readOnlyRootFilesystem"
    );
    assert_eq!(
        security.allow_privilege_escalation,
        Some(false),
        "{ctx}: allowPrivilegeEscalation"
    );
    assert_eq!(
        security.capabilities.as_ref().and_then(|c| c.drop.clone()),
        Some(vec!["ALL".to_string()]),
        "{ctx}"
    );
    let pod_security = pod
        .security_context
        .as_ref()
        .unwrap_or_else(|| panic!("{ctx}: no pod securityContext"));
    assert!(
        security.run_as_non_root == Some(true) || pod_security.run_as_non_root == Some(true),
        "{ctx}: runAsNonRoot"
    );
    assert!(
        pod_security.run_as_user.is_some_and(|uid| uid > 0),
        "{ctx}: runAsUser"
    );
    assert_eq!(
        pod_security
            .seccomp_profile
            .as_ref()
            .map(|s| s.type_.as_str()),
        Some("RuntimeDefault"),
        "{ctx}"
    );
    assert!(
        container.liveness_probe.is_some() && container.readiness_probe.is_some(),
        "{ctx}: probes"
    );
    for env in container.env.iter().flatten() {
        if env.name.contains("PASSWORD") {
            assert!(
                env.value.is_none(),
                "{ctx}: {} has a literal value",
                env.name
            );
            assert!(
                env.value_from
                    .as_ref()
                    .and_then(|v| v.secret_key_ref.as_ref())
                    .is_some(),
                "{ctx}: {}",
                env.name
            );
        }
    }
    let ports = container
        .ports
        .as_ref()
        .unwrap_or_else(|| panic!("{ctx}: no ports"));
    assert_eq!(ports[0].name.as_deref(), Some("main"), "{ctx}: port name");
}

fn check_env(env: &str, files: &BTreeMap<String, String>) {
    let registry = if env == "aws" {
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    } else {
        "localhost:5000"
    };
    let o = parse(env, files);
    assert_eq!(o.namespaces.len(), 1, "{env}: namespaces");
    let ns_labels = o.namespaces[0].metadata.labels.clone().unwrap();
    assert_eq!(
        ns_labels["pod-security.kubernetes.io/enforce"], "restricted",
        "{env}"
    );

    assert_eq!(
        o.deployments.keys().collect::<Vec<_>>(),
        DEPLOYED.iter().collect::<Vec<_>>(),
        "{env}: deployments"
    );
    for (name, d) in &o.deployments {
        let ctx = format!("{env}/deployment-{name}");
        let spec = d.spec.as_ref().unwrap();
        let replicas = spec.replicas.unwrap();
        if env == "aws" {
            assert!(replicas >= 2, "{ctx}: {replicas} replicas")
        } else {
            assert_eq!(replicas, 1, "{ctx}")
        }
        let template_labels = spec
            .template
            .metadata
            .as_ref()
            .unwrap()
            .labels
            .clone()
            .unwrap();
        for (k, v) in spec.selector.match_labels.as_ref().unwrap() {
            assert_eq!(
                template_labels.get(k),
                Some(v),
                "{ctx}: selector does not match the pods"
            );
        }
        assert_eq!(
            &template_labels,
            d.metadata.labels.as_ref().unwrap(),
            "{ctx}: pod labels"
        );
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.containers.len(), 1, "{ctx}");
        let c = &pod.containers[0];
        check_container(&ctx, pod, c);
        check_drain(&ctx, pod, c);
        assert_eq!(
            pod.security_context.as_ref().unwrap().run_as_user,
            Some(65532),
            "{ctx}: uid"
        );
        let image = c.image.as_deref().unwrap();
        let (named, digest) = image
            .split_once('@')
            .unwrap_or_else(|| panic!("{ctx}: {image} not by digest"));
        assert!(
            named.starts_with(&format!("{registry}/{name}:")),
            "{ctx}: {image}"
        );
        assert!(
            digest.len() == 71 && digest.starts_with("sha256:"),
            "{ctx}: {image}"
        );
        assert_eq!(
            template_labels["app.kubernetes.io/version"],
            named.rsplit(':').next().unwrap(),
            "{ctx}: version"
        );
        for (probe, path) in [
            (&c.liveness_probe, "/healthz"),
            (&c.readiness_probe, "/readyz"),
        ] {
            let get = probe
                .as_ref()
                .unwrap()
                .http_get
                .as_ref()
                .unwrap_or_else(|| panic!("{ctx}: not an HTTP probe"));
            assert_eq!(get.path.as_deref(), Some(path), "{ctx}");
        }
        assert_eq!(
            env_value(c, "LOG_FORMAT").and_then(|e| e.value.as_deref()),
            Some("json"),
            "{ctx}"
        );
        let port_var = format!("{}_SERVICE_PORT", name.to_uppercase());
        let port = c.ports.as_ref().unwrap()[0].container_port.to_string();
        assert_eq!(
            env_value(c, &port_var).and_then(|e| e.value.clone()),
            Some(port),
            "{ctx}: {port_var}"
        );
        let needs_pg = ["auditservice", "eventservice"].contains(&name.as_str());
        let needs_redis = ["webapp", "eventservice"].contains(&name.as_str());
        let secret = |var: &str| {
            env_value(c, var)
                .and_then(|e| e.value_from.clone())
                .and_then(|v| v.secret_key_ref)
                .map(|s| s.name)
        };
        assert_eq!(
            secret("POSTGRES_PASSWORD"),
            needs_pg.then(|| "postgres-credentials".to_string()),
            "{ctx}"
        );
        assert_eq!(
            env_value(c, "POSTGRES_USER").is_some(),
            needs_pg,
            "{ctx}: POSTGRES_USER"
        );
        assert_eq!(
            env_value(c, "POSTGRES_DB").is_some(),
            needs_pg,
            "{ctx}: POSTGRES_DB"
        );
        assert_eq!(
            secret("REDIS_PASSWORD"),
            needs_redis.then(|| "redis-credentials".to_string()),
            "{ctx}"
        );
        let spread = pod.topology_spread_constraints.as_ref();
        if env == "aws" {
            let spread = spread.unwrap_or_else(|| panic!("{ctx}: no topology spread"));
            assert!(
                spread
                    .iter()
                    .any(|t| t.topology_key == "topology.kubernetes.io/zone"),
                "{ctx}"
            );
            let pdb = o
                .budgets
                .get(name)
                .unwrap_or_else(|| panic!("{ctx}: no PodDisruptionBudget"));
            assert_eq!(
                pdb.spec.as_ref().unwrap().selector.as_ref(),
                Some(&spec.selector),
                "{ctx}: PDB selector"
            );
        } else {
            assert!(spread.is_none(), "{ctx}: spread on minikube");
        }
    }
    if env != "aws" {
        assert!(
            o.budgets.is_empty() && o.policies.is_empty(),
            "{env}: PDBs or NetworkPolicies"
        );
    }

    assert_eq!(
        o.stateful_sets.keys().collect::<Vec<_>>(),
        ["postgres", "redis"],
        "{env}: statefulsets"
    );
    for (name, s) in &o.stateful_sets {
        let ctx = format!("{env}/statefulset-{name}");
        let spec = s.spec.as_ref().unwrap();
        let pod = spec.template.spec.as_ref().unwrap();
        let c = &pod.containers[0];
        check_container(&ctx, pod, c);
        assert!(
            c.image.as_deref().unwrap().contains("@sha256:"),
            "{ctx}: not pinned"
        );
        assert!(
            pod.security_context.as_ref().unwrap().fs_group.is_some(),
            "{ctx}: fsGroup"
        );
        let claims = spec
            .volume_claim_templates
            .as_ref()
            .unwrap_or_else(|| panic!("{ctx}: no volumeClaimTemplates"));
        let storage = claims[0]
            .spec
            .as_ref()
            .unwrap()
            .resources
            .as_ref()
            .unwrap()
            .requests
            .as_ref()
            .unwrap();
        assert!(storage.contains_key("storage"), "{ctx}");
        let headless = &o.services[spec.service_name.as_ref().unwrap()];
        assert_eq!(
            headless.spec.as_ref().unwrap().cluster_ip.as_deref(),
            Some("None"),
            "{ctx}: headless"
        );
        if name == "redis" {
            let args = c.args.clone().unwrap().join(" ");
            assert!(args.contains("--appendonly yes"), "{ctx}: {args}");
            assert!(
                !files["statefulset-redis.yaml"].contains("- yes\n"),
                "{ctx}: `yes` unquoted: YAML 1.1 reads a boolean"
            );
        }
    }

    let with_service = [
        "adderservice",
        "auditservice",
        "postgres",
        "redis",
        "webapp",
    ];
    assert_eq!(
        o.services.keys().collect::<Vec<_>>(),
        with_service,
        "{env}: services"
    );
    for (name, svc) in &o.services {
        let ctx = format!("{env}/service-{name}");
        let spec = svc.spec.as_ref().unwrap();
        let ports = spec.ports.as_ref().unwrap();
        assert_eq!(
            ports[0].name.as_deref(),
            Some("main"),
            "{ctx}: SRV needs the port named main"
        );
        assert_eq!(
            spec.selector.as_ref().unwrap()["app.kubernetes.io/name"],
            *name,
            "{ctx}"
        );
        let type_ = spec.type_.as_deref();
        if ["postgres", "redis"].contains(&name.as_str()) {
            assert_eq!(type_, None, "{ctx}");
        } else if env == "aws" {
            assert_eq!(
                type_,
                Some(if name == "webapp" {
                    "LoadBalancer"
                } else {
                    "ClusterIP"
                }),
                "{ctx}"
            );
        } else {
            assert_eq!(type_, Some("NodePort"), "{ctx}");
        }
    }

    if env == "aws" {
        check_network_policies(&o.policies);
    }
}

fn check_network_policies(policies: &BTreeMap<String, NetworkPolicy>) {
    let deny = policies["default-deny"].spec.as_ref().unwrap();
    assert_eq!(
        deny.pod_selector,
        Some(Default::default()),
        "default-deny selects every pod"
    );
    assert_eq!(deny.policy_types.clone().unwrap(), ["Ingress", "Egress"]);
    assert!(
        deny.ingress.is_none() && deny.egress.is_none(),
        "default-deny allows something"
    );
    let dns = policies["allow-dns"]
        .spec
        .as_ref()
        .unwrap()
        .egress
        .clone()
        .unwrap();
    assert!(
        dns[0]
            .ports
            .as_ref()
            .unwrap()
            .iter()
            .any(|p| p.protocol.as_deref() == Some("UDP")),
        "DNS over UDP"
    );

    // Who may connect to each workload.
    let clients = |name: &str| -> Option<Vec<String>> {
        let rules = policies.get(name)?.spec.as_ref()?.ingress.clone()?;
        let mut out = Vec::new();
        for rule in rules {
            for peer in rule.from.unwrap_or_default() {
                assert!(
                    peer.ip_block.is_none() && peer.namespace_selector.is_none(),
                    "{name}: reachable from outside"
                );
                let selector = peer.pod_selector.unwrap();
                out.extend(
                    selector
                        .match_expressions
                        .unwrap()
                        .into_iter()
                        .flat_map(|e| e.values.unwrap()),
                );
            }
        }
        Some(out)
    };
    assert_eq!(
        clients("postgres").unwrap(),
        ["auditservice", "eventservice"]
    );
    assert_eq!(
        clients("redis").unwrap(),
        ["eventservice", "report", "webapp"]
    );
    assert_eq!(clients("adderservice").unwrap(), ["webapp"]);
    assert_eq!(clients("auditservice").unwrap(), ["webapp"]);
    // webapp: one rule without `from`: any source (the load balancer).
    let webapp = policies["webapp"]
        .spec
        .as_ref()
        .unwrap()
        .ingress
        .clone()
        .unwrap();
    assert!(
        webapp.len() == 1 && webapp[0].from.is_none(),
        "webapp must be reachable from outside"
    );
    // Nothing else has an ingress rule without `from`.
    for (name, policy) in policies {
        for rule in policy.spec.as_ref().unwrap().ingress.iter().flatten() {
            assert!(
                name == "webapp" || rule.from.is_some(),
                "{name}: open to every source"
            );
        }
    }
    // eventservice may reach postgres and redis, nothing else.
    let egress = policies["eventservice"]
        .spec
        .as_ref()
        .unwrap()
        .egress
        .clone()
        .unwrap();
    let targets: Vec<String> = egress
        .iter()
        .flat_map(|r| r.to.clone().unwrap())
        .map(|p| p.pod_selector.unwrap().match_labels.unwrap()["app.kubernetes.io/name"].clone())
        .collect();
    assert_eq!(targets, ["postgres", "redis"]);
}

#[test]
fn rendered_objects_are_typed_and_follow_the_manifest_rules() {
    let fixture = Fixture::new();
    for env in ENVS {
        assert_ok(&fixture.render(env, &[]));
        check_env(env, &fixture.manifests(env));
    }
}

#[test]
fn committed_manifests_follow_the_manifest_rules() {
    let root = workspace_root();
    for env in ENVS {
        let files = read_dir_files(&root.join("environments").join(env).join("manifests"));
        assert!(
            !files.is_empty(),
            "environments/{env}/manifests/ is empty: run `cargo xtask render --env {env}`"
        );
        check_env(env, &files);
    }
}

#[test]
fn committed_manifests_are_what_the_definitions_render() {
    // No image record: every image comes from the committed manifests, so
    // this checks that deployment/, infrastructure/ and env.yaml were
    // re-rendered after their last change.
    let none = tempfile::tempdir().unwrap();
    for env in ENVS {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["render", "--env", env, "--check", "--root"])
            .arg(workspace_root())
            .arg("--images")
            .arg(none.path().join("images.json"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "run `cargo xtask render --env {env}` and commit:\n{}{}",
            stdout(&output),
            stderr(&output)
        );
    }
}
