//! The message tables of the built-in kinds served (and of the types they hold),
//! and the kinds protobuf bodies may carry.
use super::bridge::{Bridge, Uncovered, message};
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message;
use serde_json::Value;

message!(meta::ObjectMeta {
    name: "name", generate_name: "generateName", namespace: "namespace", self_link: "selfLink",
    uid: "uid", resource_version: "resourceVersion", generation: "generation",
    creation_timestamp: "creationTimestamp", deletion_timestamp: "deletionTimestamp",
    deletion_grace_period_seconds: "deletionGracePeriodSeconds" keep, labels: "labels",
    annotations: "annotations", owner_references: "ownerReferences", finalizers: "finalizers",
    managed_fields: "managedFields",
});
message!(meta::OwnerReference {
    api_version: "apiVersion", kind: "kind", name: "name", uid: "uid",
    controller: "controller" keep, block_owner_deletion: "blockOwnerDeletion" keep,
});
message!(meta::ManagedFieldsEntry {
    manager: "manager",
    operation: "operation",
    api_version: "apiVersion",
    time: "time",
    fields_type: "fieldsType",
    fields_v1: "fieldsV1",
    subresource: "subresource",
});
message!(meta::LabelSelector {
    match_labels: "matchLabels",
    match_expressions: "matchExpressions"
});
message!(meta::LabelSelectorRequirement {
    key: "key",
    operator: "operator",
    values: "values"
});

message!(core::ConfigMap {
    metadata: "metadata", immutable: "immutable" keep, data: "data", binary_data: "binaryData",
});
message!(core::Secret {
    metadata: "metadata", immutable: "immutable" keep, data: "data", string_data: "stringData",
    r#type: "type",
});
message!(core::Namespace {
    metadata: "metadata",
    spec: "spec",
    status: "status"
});
message!(core::NamespaceSpec {
    finalizers: "finalizers"
});
message!(core::NamespaceStatus {
    phase: "phase",
    conditions: "conditions"
});
message!(core::NamespaceCondition {
    r#type: "type",
    status: "status",
    last_transition_time: "lastTransitionTime",
    reason: "reason",
    message: "message",
});

message!(core::Service {
    metadata: "metadata",
    spec: "spec",
    status: "status"
});
message!(core::ServiceSpec {
    ports: "ports", selector: "selector", cluster_ip: "clusterIP", cluster_ips: "clusterIPs",
    r#type: "type", external_ips: "externalIPs", session_affinity: "sessionAffinity",
    load_balancer_ip: "loadBalancerIP", load_balancer_source_ranges: "loadBalancerSourceRanges",
    external_name: "externalName", external_traffic_policy: "externalTrafficPolicy",
    health_check_node_port: "healthCheckNodePort",
    publish_not_ready_addresses: "publishNotReadyAddresses", ip_families: "ipFamilies",
    ip_family_policy: "ipFamilyPolicy",
    allocate_load_balancer_node_ports: "allocateLoadBalancerNodePorts" keep,
    load_balancer_class: "loadBalancerClass", internal_traffic_policy: "internalTrafficPolicy",
    traffic_distribution: "trafficDistribution",
});
message!(core::ServicePort {
    name: "name", protocol: "protocol", app_protocol: "appProtocol", port: "port" keep,
    target_port: "targetPort", node_port: "nodePort",
});
message!(core::ServiceStatus {
    load_balancer: "loadBalancer",
    conditions: "conditions"
});
message!(core::LoadBalancerStatus { ingress: "ingress" });
message!(core::LoadBalancerIngress {
    ip: "ip",
    hostname: "hostname",
    ip_mode: "ipMode",
    ports: "ports"
});
message!(core::PortStatus { port: "port" keep, protocol: "protocol", error: "error" });
message!(meta::Condition {
    r#type: "type",
    status: "status",
    observed_generation: "observedGeneration",
    last_transition_time: "lastTransitionTime",
    reason: "reason",
    message: "message",
});

message!(core::Pod {
    metadata: "metadata",
    spec: "spec",
    status: "status"
});
message!(core::PodTemplateSpec {
    metadata: "metadata",
    spec: "spec"
});
message!(core::PodSpec {
    volumes: "volumes", init_containers: "initContainers", containers: "containers",
    restart_policy: "restartPolicy",
    termination_grace_period_seconds: "terminationGracePeriodSeconds" keep,
    active_deadline_seconds: "activeDeadlineSeconds" keep, dns_policy: "dnsPolicy",
    node_selector: "nodeSelector", service_account_name: "serviceAccountName",
    service_account: "serviceAccount",
    automount_service_account_token: "automountServiceAccountToken" keep,
    node_name: "nodeName", host_network: "hostNetwork", host_pid: "hostPID", host_ipc: "hostIPC", security_context: "securityContext",
    image_pull_secrets: "imagePullSecrets", hostname: "hostname", subdomain: "subdomain",
    scheduler_name: "schedulerName", priority_class_name: "priorityClassName",
    priority: "priority" keep, enable_service_links: "enableServiceLinks" keep,
    preemption_policy: "preemptionPolicy",
});
message!(core::PodSecurityContext {
    run_as_user: "runAsUser" keep, run_as_group: "runAsGroup" keep,
    run_as_non_root: "runAsNonRoot" keep, fs_group: "fsGroup" keep,
    supplemental_groups: "supplementalGroups",
});
message!(core::LocalObjectReference { name: "name" });
message!(core::Container {
    name: "name",
    image: "image",
    command: "command",
    args: "args",
    working_dir: "workingDir",
    ports: "ports",
    env_from: "envFrom",
    env: "env",
    resources: "resources",
    volume_mounts: "volumeMounts",
    liveness_probe: "livenessProbe",
    readiness_probe: "readinessProbe",
    startup_probe: "startupProbe",
    termination_message_path: "terminationMessagePath",
    termination_message_policy: "terminationMessagePolicy",
    image_pull_policy: "imagePullPolicy",
    security_context: "securityContext",
    stdin: "stdin",
    stdin_once: "stdinOnce",
    tty: "tty",
});
message!(core::SecurityContext {
    run_as_user: "runAsUser" keep, run_as_group: "runAsGroup" keep,
    run_as_non_root: "runAsNonRoot" keep, read_only_root_filesystem: "readOnlyRootFilesystem" keep,
    allow_privilege_escalation: "allowPrivilegeEscalation" keep, privileged: "privileged" keep,
});
message!(core::ContainerPort {
    name: "name", host_port: "hostPort", container_port: "containerPort" keep,
    protocol: "protocol", host_ip: "hostIP",
});
message!(core::EnvVar {
    name: "name",
    value: "value",
    value_from: "valueFrom"
});
message!(core::EnvVarSource {
    field_ref: "fieldRef",
    config_map_key_ref: "configMapKeyRef",
    secret_key_ref: "secretKeyRef",
});
message!(core::ObjectFieldSelector {
    api_version: "apiVersion",
    field_path: "fieldPath"
});
message!(core::SecretKeySelector { local_object_reference: inline, key: "key", optional: "optional" keep });
message!(core::ConfigMapKeySelector { local_object_reference: inline, key: "key", optional: "optional" keep });
message!(core::EnvFromSource {
    prefix: "prefix",
    config_map_ref: "configMapRef",
    secret_ref: "secretRef"
});
message!(core::ConfigMapEnvSource { local_object_reference: inline, optional: "optional" keep });
message!(core::SecretEnvSource { local_object_reference: inline, optional: "optional" keep });
message!(core::ResourceRequirements {
    limits: "limits",
    requests: "requests"
});
message!(core::VolumeMount {
    name: "name",
    read_only: "readOnly",
    mount_path: "mountPath",
    sub_path: "subPath",
});
message!(core::Probe {
    handler: inline,
    initial_delay_seconds: "initialDelaySeconds",
    timeout_seconds: "timeoutSeconds",
    period_seconds: "periodSeconds",
    success_threshold: "successThreshold",
    failure_threshold: "failureThreshold",
});
message!(core::ProbeHandler {
    exec: "exec",
    http_get: "httpGet",
    tcp_socket: "tcpSocket"
});
message!(core::ExecAction { command: "command" });
message!(core::HttpGetAction {
    path: "path",
    port: "port",
    host: "host",
    scheme: "scheme"
});
message!(core::TcpSocketAction {
    port: "port",
    host: "host"
});
message!(core::Volume {
    name: "name",
    volume_source: inline
});
message!(core::VolumeSource {
    empty_dir: "emptyDir",
    secret: "secret",
    config_map: "configMap",
    persistent_volume_claim: "persistentVolumeClaim",
});
message!(core::EmptyDirVolumeSource {
    medium: "medium",
    size_limit: "sizeLimit"
});
message!(core::SecretVolumeSource {
    secret_name: "secretName", items: "items", default_mode: "defaultMode" keep, optional: "optional" keep,
});
message!(core::ConfigMapVolumeSource {
    local_object_reference: inline, items: "items", default_mode: "defaultMode" keep,
    optional: "optional" keep,
});
message!(core::PersistentVolumeClaimVolumeSource {
    claim_name: "claimName",
    read_only: "readOnly"
});
message!(core::KeyToPath { key: "key", path: "path", mode: "mode" keep });
message!(core::PodStatus {
    observed_generation: "observedGeneration",
    phase: "phase",
    conditions: "conditions",
    message: "message",
    reason: "reason",
    host_ip: "hostIP",
    host_ips: "hostIPs",
    pod_ip: "podIP",
    pod_ips: "podIPs",
    start_time: "startTime",
    container_statuses: "containerStatuses",
    qos_class: "qosClass",
    nominated_node_name: "nominatedNodeName",
    resize: "resize",
});
message!(core::PodCondition {
    r#type: "type",
    status: "status",
    last_probe_time: "lastProbeTime",
    last_transition_time: "lastTransitionTime",
    reason: "reason",
    message: "message",
});
message!(core::HostIp { ip: "ip" });
message!(core::PodIp { ip: "ip" });
message!(core::ContainerStatus {
    name: "name", state: "state", last_state: "lastState", ready: "ready" keep,
    restart_count: "restartCount" keep, image: "image", image_id: "imageID",
    container_id: "containerID", started: "started" keep,
});
message!(core::ContainerState {
    waiting: "waiting",
    running: "running",
    terminated: "terminated"
});
message!(core::ContainerStateWaiting {
    reason: "reason",
    message: "message"
});
message!(core::ContainerStateRunning {
    started_at: "startedAt"
});
message!(core::ContainerStateTerminated {
    exit_code: "exitCode" keep, signal: "signal", reason: "reason", message: "message",
    started_at: "startedAt", finished_at: "finishedAt", container_id: "containerID",
});

message!(apps::Deployment {
    metadata: "metadata",
    spec: "spec",
    status: "status"
});
message!(apps::DeploymentSpec {
    replicas: "replicas" keep, selector: "selector", template: "template", strategy: "strategy",
    min_ready_seconds: "minReadySeconds", revision_history_limit: "revisionHistoryLimit" keep,
    paused: "paused", progress_deadline_seconds: "progressDeadlineSeconds" keep,
});
message!(apps::DeploymentStrategy {
    r#type: "type",
    rolling_update: "rollingUpdate"
});
message!(apps::RollingUpdateDeployment {
    max_unavailable: "maxUnavailable",
    max_surge: "maxSurge"
});
message!(apps::DeploymentStatus {
    observed_generation: "observedGeneration", replicas: "replicas", updated_replicas: "updatedReplicas",
    ready_replicas: "readyReplicas", available_replicas: "availableReplicas",
    unavailable_replicas: "unavailableReplicas", conditions: "conditions",
    collision_count: "collisionCount" keep,
});
message!(apps::DeploymentCondition {
    r#type: "type",
    status: "status",
    last_update_time: "lastUpdateTime",
    last_transition_time: "lastTransitionTime",
    reason: "reason",
    message: "message",
});

/// A decoded object: JSON, or the field the tables lack.
fn decode<M: Message + Default + Bridge>(raw: &[u8]) -> Result<Value, Uncovered> {
    let msg = M::decode(raw).map_err(|e| Uncovered(format!("not a valid message: {e}")))?;
    msg.covered()?;
    Ok(msg.to_json(false).unwrap_or_default())
}

fn encode<M: Message + Bridge>(obj: &Value) -> Result<Vec<u8>, Uncovered> {
    Ok(M::from_json(obj)?.encode_to_vec())
}

type Codec = (
    fn(&[u8]) -> Result<Value, Uncovered>,
    fn(&Value) -> Result<Vec<u8>, Uncovered>,
);

/// The codec of a kind by its `apiVersion` and `kind`, if protobuf is served for it.
pub fn codec(api_version: &str, kind: &str) -> Option<Codec> {
    Some(match (api_version, kind) {
        ("v1", "ConfigMap") => (decode::<core::ConfigMap>, encode::<core::ConfigMap>),
        ("v1", "Secret") => (decode::<core::Secret>, encode::<core::Secret>),
        ("v1", "Namespace") => (decode::<core::Namespace>, encode::<core::Namespace>),
        ("v1", "Service") => (decode::<core::Service>, encode::<core::Service>),
        ("v1", "Pod") => (decode::<core::Pod>, encode::<core::Pod>),
        ("apps/v1", "Deployment") => (decode::<apps::Deployment>, encode::<apps::Deployment>),
        _ => return None,
    })
}
