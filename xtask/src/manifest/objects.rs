//! Typed Kubernetes objects for one workload: the Namespace, a service's
//! Deployment and Service, an infrastructure StatefulSet and its headless
//! Service. Every container gets requests and limits, liveness and readiness
//! probes and the restricted security context (non-root, read-only root
//! filesystem, no privilege escalation, no capabilities, RuntimeDefault seccomp).

use super::definition::{EnvValue, InfraDefinition, NamespaceDefinition, ServiceDefinition};
use super::images::ImageRef;
use crate::environment::Size;
use crate::ownership::{MANAGED_BY_LABEL, MANAGED_BY_SYNC, SYSTEM, SYSTEM_LABEL};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction,
    HTTPGetAction, Namespace, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecurityContext, Service, ServicePort, ServiceSpec, TopologySpreadConstraint, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// The port name every Service uses, so `_main._tcp.<svc>.<ns>.svc.cluster.local` exists.
pub const PORT_NAME: &str = "main";
/// The uid the service images run as (distroless `nonroot`).
pub const SERVICE_UID: i64 = 65532;

/// How long a stopping service pod keeps serving with `/readyz` at 503 (its
/// `SHUTDOWN_DELAY_SECS`): long enough for the endpoints controller and kube-proxy to
/// take it out of rotation before its listener closes.
pub const SHUTDOWN_DELAY_SECS: i64 = 5;
/// The variable the services read it from (micro-common's `server::SHUTDOWN_DELAY_ENV`;
/// manifest_rules checks that every Deployment sets that name).
pub const SHUTDOWN_DELAY_ENV: &str = "SHUTDOWN_DELAY_SECS";
/// The pod's whole stop budget: the drain above, in-flight requests (the server gives
/// them 20 s) and a margin before Kubernetes sends SIGKILL.
pub const TERMINATION_GRACE_SECS: i64 = 30;
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";

/// The labels of every object: name, system, manager. None of them moves
/// with a release, so an object whose content did not change keeps its bytes.
pub fn labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME_LABEL.to_string(), name.to_string()),
        (SYSTEM_LABEL.to_string(), SYSTEM.to_string()),
        (MANAGED_BY_LABEL.to_string(), MANAGED_BY_SYNC.to_string()),
    ])
}

/// The labels of a workload (Deployment, StatefulSet) and its pod template:
/// `labels` plus the version of the image it runs. The version is only on
/// the objects whose content is that image, so a new image changes its
/// workload's file and nothing else (its Service, budget and network policy
/// describe the name and port, which a new image does not change).
pub fn workload_labels(name: &str, version: &str) -> BTreeMap<String, String> {
    let mut labels = labels(name);
    labels.insert(VERSION_LABEL.to_string(), version.to_string());
    labels
}

/// Selects a workload's pods. Only the name: selectors are immutable, so they
/// must not include the version.
pub fn selector(name: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(NAME_LABEL.to_string(), name.to_string())])),
        ..Default::default()
    }
}

/// Metadata with a `kubernetes.io/description` annotation (what a reader of
/// `kubectl describe` sees).
pub fn described(
    name: &str,
    namespace: &str,
    labels: BTreeMap<String, String>,
    description: &str,
) -> ObjectMeta {
    ObjectMeta {
        annotations: Some(BTreeMap::from([(
            "kubernetes.io/description".to_string(),
            description.to_string(),
        )])),
        ..meta(name, namespace, labels)
    }
}

pub fn meta(name: &str, namespace: &str, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(labels),
        ..Default::default()
    }
}

pub fn namespace(def: &NamespaceDefinition, name: &str) -> Namespace {
    let mut labels = labels(name);
    labels.insert(
        "pod-security.kubernetes.io/enforce".to_string(),
        def.pod_security.as_str().to_string(),
    );
    Namespace {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// What differs per environment for one service.
pub struct ServiceSettings<'a> {
    pub def: &'a ServiceDefinition,
    pub image: ImageRef,
    pub replicas: u32,
    pub size: &'a Size,
    /// Environment variables, in the order they are written.
    pub env: Vec<(String, EnvValue)>,
    pub spread_across_zones: bool,
}

pub fn deployment(settings: &ServiceSettings, namespace: &str) -> Deployment {
    let name = &settings.def.name;
    let port = settings.def.port.unwrap_or_default();
    let probes = settings.def.probes.as_ref();
    let http_probe = |path: Option<&String>, initial_delay: i32| Probe {
        http_get: Some(HTTPGetAction {
            path: path.cloned(),
            port: IntOrString::String(PORT_NAME.to_string()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(2),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let container = Container {
        name: name.clone(),
        image: Some(settings.image.to_string()),
        ports: Some(vec![container_port(port)]),
        env: Some(env_vars(&settings.env)),
        resources: Some(resources(settings.size)),
        liveness_probe: Some(http_probe(probes.map(|p| &p.liveness), 5)),
        readiness_probe: Some(http_probe(probes.map(|p| &p.readiness), 0)),
        security_context: Some(container_security()),
        ..Default::default()
    };
    let labels = workload_labels(name, &settings.image.tag);
    Deployment {
        metadata: described(name, namespace, labels.clone(), &settings.def.description),
        spec: Some(DeploymentSpec {
            replicas: Some(settings.replicas as i32),
            selector: selector(name),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    termination_grace_period_seconds: Some(TERMINATION_GRACE_SECS),
                    security_context: Some(pod_security(SERVICE_UID, false)),
                    topology_spread_constraints: settings
                        .spread_across_zones
                        .then(|| vec![zone_spread(name)]),
                    containers: vec![container],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Service in front of a service's pods.
pub fn service(name: &str, namespace: &str, port: u16, type_: &str) -> Service {
    Service {
        metadata: meta(name, namespace, labels(name)),
        spec: Some(ServiceSpec {
            type_: Some(type_.to_string()),
            selector: selector(name).match_labels,
            ports: Some(vec![service_port(port)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The headless Service a StatefulSet needs for stable pod names; its named
/// port gives the SRV record clients discover it by.
pub fn headless_service(def: &InfraDefinition, namespace: &str) -> Service {
    Service {
        metadata: meta(&def.name, namespace, labels(&def.name)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_string()),
            selector: selector(&def.name).match_labels,
            ports: Some(vec![service_port(def.port)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// What differs per environment for one infrastructure StatefulSet.
pub struct InfraSettings<'a> {
    pub def: &'a InfraDefinition,
    pub size: &'a Size,
    pub storage: String,
    pub storage_class: Option<String>,
}

pub fn stateful_set(settings: &InfraSettings, namespace: &str) -> StatefulSet {
    let def = settings.def;
    let exec_probe = |command: &[String], initial_delay: i32| Probe {
        exec: Some(ExecAction {
            command: Some(command.to_vec()),
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Default::default()
    };
    let scratch: Vec<(String, &String)> = def
        .writable_paths
        .iter()
        .map(|p| (volume_name(p), p))
        .collect();
    let mut mounts = vec![VolumeMount {
        name: "data".to_string(),
        mount_path: def.data_path.clone(),
        ..Default::default()
    }];
    mounts.extend(scratch.iter().map(|(name, path)| VolumeMount {
        name: name.clone(),
        mount_path: path.to_string(),
        ..Default::default()
    }));
    let volumes: Vec<Volume> = scratch
        .iter()
        .map(|(name, _)| Volume {
            name: name.clone(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        })
        .collect();
    let env: Vec<(String, EnvValue)> = def
        .env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let container = Container {
        name: def.name.clone(),
        image: Some(def.image.clone()),
        args: (!def.args.is_empty()).then(|| def.args.clone()),
        ports: Some(vec![container_port(def.port)]),
        env: (!env.is_empty()).then(|| env_vars(&env)),
        resources: Some(resources(settings.size)),
        liveness_probe: Some(exec_probe(&def.probes.liveness, 30)),
        readiness_probe: Some(exec_probe(&def.probes.readiness, 5)),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };
    let labels = workload_labels(&def.name, &def.version);
    StatefulSet {
        metadata: described(&def.name, namespace, labels.clone(), &def.description),
        spec: Some(StatefulSetSpec {
            // One instance: neither runs as a replicated cluster here.
            replicas: Some(1),
            service_name: Some(def.name.clone()),
            selector: selector(&def.name),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    security_context: Some(pod_security(def.run_as_user, true)),
                    containers: vec![container],
                    volumes: (!volumes.is_empty()).then_some(volumes),
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta {
                    name: Some("data".to_string()),
                    ..Default::default()
                },
                spec: Some(PersistentVolumeClaimSpec {
                    access_modes: Some(vec!["ReadWriteOnce".to_string()]),
                    storage_class_name: settings.storage_class.clone(),
                    resources: Some(VolumeResourceRequirements {
                        requests: Some(BTreeMap::from([(
                            "storage".to_string(),
                            Quantity(settings.storage.clone()),
                        )])),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_port(port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(PORT_NAME.to_string()),
        container_port: i32::from(port),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    }
}

fn service_port(port: u16) -> ServicePort {
    ServicePort {
        name: Some(PORT_NAME.to_string()),
        port: i32::from(port),
        target_port: Some(IntOrString::String(PORT_NAME.to_string())),
        protocol: Some("TCP".to_string()),
        ..Default::default()
    }
}

fn env_vars(env: &[(String, EnvValue)]) -> Vec<EnvVar> {
    env.iter()
        .map(|(name, value)| match value {
            EnvValue::Value(value) => EnvVar {
                name: name.clone(),
                value: Some(value.clone()),
                ..Default::default()
            },
            EnvValue::Secret(secret) => EnvVar {
                name: name.clone(),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: secret.secret_key_ref.name.clone(),
                        key: secret.secret_key_ref.key.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            },
        })
        .collect()
}

fn resources(size: &Size) -> ResourceRequirements {
    let amounts = |a: &crate::environment::Amounts| {
        BTreeMap::from([
            ("cpu".to_string(), Quantity(a.cpu.clone())),
            ("memory".to_string(), Quantity(a.memory.clone())),
        ])
    };
    ResourceRequirements {
        requests: Some(amounts(&size.requests)),
        limits: Some(amounts(&size.limits)),
        ..Default::default()
    }
}

fn pod_security(uid: i64, owns_volumes: bool) -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(uid),
        run_as_group: Some(uid),
        // The persistent volume must be writable by the process's group.
        fs_group: owns_volumes.then_some(uid),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".to_string(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Spread a workload's pods over zones, preferring balance over staying pending.
fn zone_spread(name: &str) -> TopologySpreadConstraint {
    TopologySpreadConstraint {
        max_skew: 1,
        topology_key: "topology.kubernetes.io/zone".to_string(),
        when_unsatisfiable: "ScheduleAnyway".to_string(),
        label_selector: Some(selector(name)),
        ..Default::default()
    }
}

/// `/var/run/postgresql` -> `var-run-postgresql`.
fn volume_name(path: &str) -> String {
    let name: String = path
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    if name.is_empty() {
        "root".to_string()
    } else {
        name
    }
}
