//! The hand-written definitions: `deployment/*.yaml` (the namespace and one
//! file per service) and `infrastructure/*.yaml` (PostgreSQL, Redis).
//!
//! They are small YAML files in the vocabulary of Kubernetes, read strictly:
//! an unknown key, a wrong type or a missing key is an error naming the file,
//! the line and the key (serde_yaml's message), and a semantic mistake one
//! naming the file and the key.

use crate::environment::is_dns_label;
use anyhow::{Result, anyhow, bail};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `deployment/namespace.yaml`. The namespace's name comes from env.yaml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamespaceDefinition {
    /// Pod Security Admission level enforced on the namespace.
    pub pod_security: PodSecurity,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurity {
    Privileged,
    Baseline,
    Restricted,
}

impl PodSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurity::Privileged => "privileged",
            PodSecurity::Baseline => "baseline",
            PodSecurity::Restricted => "restricted",
        }
    }
}

/// `deployment/<service>.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceDefinition {
    pub name: String,
    pub description: String,
    pub kind: ServiceKind,
    /// The port it listens on (health and metrics too); none for a CLI.
    pub port: Option<u16>,
    /// Default replica count; env.yaml overrides it.
    #[serde(default = "one")]
    pub replicas: u32,
    /// A size named in env.yaml's `sizes`.
    pub size: Option<String>,
    pub probes: Option<HttpProbes>,
    /// Extra environment variables (the generated ones cannot be overridden).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The services and infrastructure it talks to.
    #[serde(default)]
    pub dependencies: Vec<String>,
    #[serde(skip)]
    pub file: PathBuf,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    /// Serves requests: a Deployment and a Service.
    Http,
    /// Consumes a queue; serves only health and metrics: a Deployment, no Service.
    Worker,
    /// Run on demand by a person: nothing long-running (network rules only).
    Cli,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbes {
    /// Path whose failure restarts the container.
    pub liveness: String,
    /// Path whose failure takes the pod out of its Service.
    pub readiness: String,
}

/// `infrastructure/<name>.yaml`: a public image run as a StatefulSet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InfraDefinition {
    pub name: String,
    pub description: String,
    /// `repository:tag@sha256:...`: pinned, since we do not build it.
    pub image: String,
    /// The `app.kubernetes.io/version` label.
    pub version: String,
    pub port: u16,
    /// The uid (and gid, and fsGroup) the image's process runs as.
    pub run_as_user: i64,
    pub size: String,
    /// Persistent volume size (env.yaml `services.<name>.storage` overrides it).
    pub storage: String,
    /// Where the persistent volume is mounted.
    pub data_path: String,
    /// Paths that must be writable besides the data volume (emptyDir each),
    /// since the root filesystem is read-only.
    #[serde(default)]
    pub writable_paths: Vec<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, EnvValue>,
    /// What every service that depends on it is given.
    #[serde(default)]
    pub client_env: BTreeMap<String, EnvValue>,
    pub probes: ExecProbes,
    #[serde(skip)]
    pub file: PathBuf,
}

/// An environment variable: a literal value or a key of a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    Value(String),
    Secret(SecretRef),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRef {
    pub secret_key_ref: SecretKey,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKey {
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecProbes {
    /// Command whose failure restarts the container.
    pub liveness: Vec<String>,
    /// Command whose failure takes the pod out of its Service.
    pub readiness: Vec<String>,
}

/// Everything under deployment/ and infrastructure/.
#[derive(Debug, Clone)]
pub struct Definitions {
    pub namespace: NamespaceDefinition,
    /// Sorted by name.
    pub services: Vec<ServiceDefinition>,
    /// Sorted by name.
    pub infrastructure: Vec<InfraDefinition>,
}

impl Definitions {
    pub fn load(root: &Path) -> Result<Definitions> {
        let namespace: NamespaceDefinition =
            read_yaml(root, Path::new("deployment/namespace.yaml"))?;
        let mut services = Vec::new();
        for file in yaml_files(root, "deployment")? {
            if file.file_name().is_some_and(|n| n == "namespace.yaml") {
                continue;
            }
            let mut def: ServiceDefinition = read_yaml(root, &file)?;
            def.file = file;
            def.validate()?;
            services.push(def);
        }
        let mut infrastructure = Vec::new();
        for file in yaml_files(root, "infrastructure")? {
            let mut def: InfraDefinition = read_yaml(root, &file)?;
            def.file = file;
            def.validate()?;
            infrastructure.push(def);
        }
        let defs = Definitions {
            namespace,
            services,
            infrastructure,
        };
        defs.validate_dependencies()?;
        Ok(defs)
    }

    pub fn infra(&self, name: &str) -> Option<&InfraDefinition> {
        self.infrastructure.iter().find(|d| d.name == name)
    }

    pub fn service(&self, name: &str) -> Option<&ServiceDefinition> {
        self.services.iter().find(|d| d.name == name)
    }

    /// Every workload name: services and infrastructure.
    pub fn names(&self) -> Vec<&str> {
        self.services
            .iter()
            .map(|s| s.name.as_str())
            .chain(self.infrastructure.iter().map(|i| i.name.as_str()))
            .collect()
    }

    /// Which definitions depend on `name`, sorted.
    pub fn dependents(&self, name: &str) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .services
            .iter()
            .filter(|s| s.dependencies.iter().any(|d| d == name))
            .map(|s| s.name.as_str())
            .collect();
        out.sort();
        out
    }

    /// The port a dependency listens on.
    pub fn port_of(&self, name: &str) -> Option<u16> {
        self.service(name)
            .and_then(|s| s.port)
            .or_else(|| self.infra(name).map(|i| i.port))
    }

    fn validate_dependencies(&self) -> Result<()> {
        let mut seen = BTreeMap::new();
        for (name, file) in self
            .services
            .iter()
            .map(|s| (&s.name, &s.file))
            .chain(self.infrastructure.iter().map(|i| (&i.name, &i.file)))
        {
            if let Some(other) = seen.insert(name.clone(), file.clone()) {
                bail!(
                    "{}: name `{name}` is already used by {}",
                    file.display(),
                    other.display()
                );
            }
        }
        for service in &self.services {
            for dep in &service.dependencies {
                if dep == &service.name {
                    bail!(
                        "{}: dependencies: `{dep}` cannot depend on itself",
                        service.file.display()
                    );
                }
                match self.service(dep) {
                    Some(target) if target.kind != ServiceKind::Http => bail!(
                        "{}: dependencies: `{dep}` is a {:?} service and serves nothing to depend on",
                        service.file.display(),
                        target.kind
                    ),
                    Some(_) => {}
                    None if self.infra(dep).is_some() => {}
                    None => bail!(
                        "{}: dependencies: no definition named `{dep}` in deployment/ or infrastructure/ (known: {})",
                        service.file.display(),
                        self.names().join(", ")
                    ),
                }
            }
        }
        Ok(())
    }
}

impl ServiceDefinition {
    fn validate(&self) -> Result<()> {
        let file = self.file.display();
        check_name(&self.file, &self.name)?;
        match self.kind {
            ServiceKind::Http | ServiceKind::Worker => {
                match self.port {
                    None => bail!(
                        "{file}: missing key `port`: a {:?} service needs the port it listens on",
                        self.kind
                    ),
                    Some(0) => bail!("{file}: port: 0 is not a port"),
                    Some(_) => {}
                }
                let Some(probes) = &self.probes else {
                    bail!(
                        "{file}: missing key `probes`: a long-running service needs liveness and readiness paths"
                    );
                };
                for (key, path) in [
                    ("liveness", &probes.liveness),
                    ("readiness", &probes.readiness),
                ] {
                    if !path.starts_with('/') {
                        bail!(
                            "{file}: probes.{key}: `{path}` is not an HTTP path (it starts with `/`)"
                        );
                    }
                }
                if self.size.is_none() {
                    bail!("{file}: missing key `size`: name one of env.yaml's `sizes`");
                }
            }
            ServiceKind::Cli => {
                for (key, set) in [
                    ("port", self.port.is_some()),
                    ("probes", self.probes.is_some()),
                    ("size", self.size.is_some()),
                ] {
                    if set {
                        bail!(
                            "{file}: `{key}` does not apply to a cli (it runs on demand, not as a Deployment)"
                        );
                    }
                }
            }
        }
        if self.replicas == 0 {
            bail!("{file}: replicas: 0 would run nothing; remove the definition instead");
        }
        for key in self.env.keys() {
            check_env_name(&self.file, key)?;
        }
        Ok(())
    }
}

impl InfraDefinition {
    fn validate(&self) -> Result<()> {
        let file = self.file.display();
        check_name(&self.file, &self.name)?;
        let Some((_, digest)) = self.image.split_once('@') else {
            bail!(
                "{file}: image: `{}` is not pinned by digest (`repository:tag@sha256:...`)",
                self.image
            );
        };
        if !is_sha256_digest(digest) {
            bail!("{file}: image: `{digest}` is not a `sha256:` digest of 64 hex digits");
        }
        if self.port == 0 {
            bail!("{file}: port: 0 is not a port");
        }
        if self.run_as_user <= 0 {
            bail!(
                "{file}: runAsUser: must be a non-root uid, got {}",
                self.run_as_user
            );
        }
        crate::environment::check_quantity(&self.storage)
            .map_err(|e| anyhow!("{file}: storage: {e}"))?;
        for path in std::iter::once(&self.data_path).chain(&self.writable_paths) {
            if !path.starts_with('/') {
                bail!("{file}: `{path}` is not an absolute path");
            }
        }
        if self.probes.liveness.is_empty() || self.probes.readiness.is_empty() {
            bail!("{file}: probes: liveness and readiness each need a command");
        }
        for key in self.env.keys().chain(self.client_env.keys()) {
            check_env_name(&self.file, key)?;
        }
        Ok(())
    }
}

pub fn is_sha256_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

fn check_name(file: &Path, name: &str) -> Result<()> {
    if !is_dns_label(name) {
        bail!(
            "{}: name: `{name}` is not a valid Kubernetes name (lower-case letters, digits, `-`)",
            file.display()
        );
    }
    if file.file_stem().is_none_or(|stem| stem != name) {
        bail!(
            "{}: name: `{name}` does not match the file name",
            file.display()
        );
    }
    Ok(())
}

fn check_env_name(file: &Path, key: &str) -> Result<()> {
    let valid = !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !key.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        bail!(
            "{}: env: `{key}` is not an environment variable name",
            file.display()
        );
    }
    Ok(())
}

/// `*.yaml` files of one folder, relative to the root, sorted.
fn yaml_files(root: &Path, folder: &str) -> Result<Vec<PathBuf>> {
    let dir = root.join(folder);
    let entries = std::fs::read_dir(&dir).map_err(|e| anyhow!("reading {folder}/: {e}"))?;
    let mut files = Vec::new();
    for entry in entries {
        let name = entry
            .map_err(|e| anyhow!("reading {folder}/: {e}"))?
            .file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".yaml") {
            files.push(Path::new(folder).join(name.as_ref()));
        } else if name.ends_with(".yml") {
            bail!("{folder}/{name}: definitions end in `.yaml`; rename it");
        }
    }
    files.sort();
    Ok(files)
}

/// Reads one YAML file strictly; errors name the file (relative to the root),
/// and serde_yaml adds the key, line and column.
pub fn read_yaml<T: DeserializeOwned>(root: &Path, file: &Path) -> Result<T> {
    let text = std::fs::read_to_string(root.join(file))
        .map_err(|e| anyhow!("reading {}: {e}", file.display()))?;
    serde_yaml::from_str(&text).map_err(|e| anyhow!("{}: {e}", file.display()))
}
