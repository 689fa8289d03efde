//! `environments/<env>/env.yaml`: what differs between minikube and aws.
//!
//! Owned by the manifests module; other commands read `context`, `registry`
//! and `namespace` from here. Every key past those three has a default, so a
//! three-line env.yaml (as tests of other commands write) still loads.

use anyhow::{Result, anyhow, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Environment {
    /// The kube context `sync` and `secrets` insist on.
    pub context: String,
    /// Where images are pushed and pulled from, `host[:port]`.
    pub registry: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Replicas of every stateless service; `services.<name>.replicas` overrides
    /// it, and without either the definition's `replicas` applies.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Service type of the micro services (`services.<name>.serviceType` overrides it).
    #[serde(default)]
    pub service_type: ServiceType,
    /// Storage class of the persistent volumes; absent: the cluster's default class.
    #[serde(default)]
    pub storage_class: Option<String>,
    /// What the `size` names of the definitions mean here (requests and limits).
    #[serde(default)]
    pub sizes: BTreeMap<String, Size>,
    /// Per-service (or per-infrastructure) overrides.
    #[serde(default)]
    pub services: BTreeMap<String, Override>,
    /// A PodDisruptionBudget for every service running 2+ replicas.
    #[serde(default)]
    pub pod_disruption_budgets: bool,
    /// Spread each service's pods across `topology.kubernetes.io/zone`.
    #[serde(default)]
    pub spread_across_zones: bool,
    /// Deny all traffic in the namespace except what the dependencies need.
    #[serde(default)]
    pub network_policies: bool,
    #[serde(skip)]
    pub name: String,
    /// The env.yaml this was read from, relative to the workspace root.
    #[serde(skip)]
    pub file: PathBuf,
}

/// Kubernetes Service types a micro service may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum ServiceType {
    #[default]
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl ServiceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// One resource size: what a container asks for and what it may use at most.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    pub requests: Amounts,
    pub limits: Amounts,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Amounts {
    /// Kubernetes quantity, e.g. `50m` or `1`.
    pub cpu: String,
    /// Kubernetes quantity, e.g. `64Mi`.
    pub memory: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Override {
    pub replicas: Option<u32>,
    pub size: Option<String>,
    pub service_type: Option<ServiceType>,
    /// Persistent volume size of an infrastructure StatefulSet, e.g. `10Gi`.
    pub storage: Option<String>,
}

fn default_namespace() -> String {
    "micro".to_string()
}

impl Environment {
    /// `<root>/environments/<name>` (for the commands that read the folder).
    #[allow(dead_code)]
    pub fn dir(name: &str) -> PathBuf {
        crate::workspace::root().join("environments").join(name)
    }

    pub fn load(name: &str) -> Result<Environment> {
        Self::load_in(&crate::workspace::root(), name)
    }

    /// Reads and checks `<root>/environments/<name>/env.yaml`.
    pub fn load_in(root: &Path, name: &str) -> Result<Environment> {
        let file = Self::file_of(name);
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !plain || !root.join(&file).exists() {
            bail!(
                "no environment `{name}`: {} does not exist (known: {})",
                file.display(),
                Self::known_in(root).join(", ")
            );
        }
        let text = std::fs::read_to_string(root.join(&file))
            .map_err(|e| anyhow!("reading {}: {e}", file.display()))?;
        Self::parse(name, &text)
    }

    /// `environments/<name>/env.yaml`, relative to the workspace root.
    pub fn file_of(name: &str) -> PathBuf {
        PathBuf::from("environments").join(name).join("env.yaml")
    }

    /// Reads and checks the text of environment `name`'s env.yaml (from the
    /// work tree or from a commit: sync reads it from the commit it deploys).
    pub fn parse(name: &str, text: &str) -> Result<Environment> {
        let file = Self::file_of(name);
        let mut env: Environment =
            serde_yaml::from_str(text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
        env.name = name.to_string();
        env.file = file;
        env.validate()?;
        Ok(env)
    }

    /// Checks what serde cannot: quantities and names.
    fn validate(&self) -> Result<()> {
        let file = self.file.display();
        if self.context.trim().is_empty() {
            bail!("{file}: `context` is empty");
        }
        if self.registry.trim().is_empty()
            || self.registry.contains("://")
            || self.registry.ends_with('/')
        {
            bail!(
                "{file}: `registry` must be `host[:port]` (no scheme, no trailing `/`), got `{}`",
                self.registry
            );
        }
        if !is_dns_label(&self.namespace) {
            bail!(
                "{file}: `namespace` `{}` is not a valid Kubernetes name (lower-case letters, digits, `-`)",
                self.namespace
            );
        }
        for (size_name, size) in &self.sizes {
            for (what, amounts) in [("requests", &size.requests), ("limits", &size.limits)] {
                check_quantity(&amounts.cpu)
                    .map_err(|e| anyhow!("{file}: sizes.{size_name}.{what}.cpu: {e}"))?;
                check_quantity(&amounts.memory)
                    .map_err(|e| anyhow!("{file}: sizes.{size_name}.{what}.memory: {e}"))?;
            }
        }
        for (service, over) in &self.services {
            if let Some(storage) = &over.storage {
                check_quantity(storage)
                    .map_err(|e| anyhow!("{file}: services.{service}.storage: {e}"))?;
            }
        }
        Ok(())
    }

    /// The environments that have an env.yaml.
    #[allow(dead_code)]
    pub fn known() -> Vec<String> {
        Self::known_in(&crate::workspace::root())
    }

    pub fn known_in(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root.join("environments"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("env.yaml").exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }
}

/// A Kubernetes object name of the strictest kind (RFC 1123 label).
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A Kubernetes quantity: a decimal number and an optional suffix (`500m`, `1.5`, `64Mi`).
pub fn check_quantity(text: &str) -> Result<()> {
    const SUFFIXES: &[&str] = &[
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E", "",
    ];
    let suffix = SUFFIXES
        .iter()
        .find(|s| text.ends_with(**s))
        .copied()
        .unwrap_or("");
    let number = &text[..text.len() - suffix.len()];
    let valid = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.chars().filter(|c| *c == '.').count() <= 1
        && number.chars().any(|c| c.is_ascii_digit());
    if !valid {
        bail!("`{text}` is not a Kubernetes quantity (e.g. `100m`, `1`, `64Mi`, `10Gi`)");
    }
    Ok(())
}
