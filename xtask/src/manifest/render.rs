//! Definitions + env.yaml + image record -> the manifest files of one
//! environment, entirely in memory (nothing is written until all of it
//! rendered), one object per file, deterministic bytes.

use super::definition::{Definitions, EnvValue, InfraDefinition, ServiceDefinition, ServiceKind};
use super::images::{self, ImageRef};
use super::objects::{self, InfraSettings, ServiceSettings};
use super::overrides;
use super::policy::{self, Traffic};
use crate::environment::{Environment, Override, ServiceType, Size};
use crate::image::record::ImageRecord;
use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `environments/<env>/manifests`, relative to the root.
pub fn manifests_dir(env: &str) -> PathBuf {
    PathBuf::from("environments").join(env).join("manifests")
}

/// What render writes: file name (in the manifests folder) -> contents.
pub type Files = BTreeMap<String, String>;

/// Renders every manifest of `env_name` from the definitions under `root`.
pub fn render(root: &Path, env_name: &str, record: &ImageRecord) -> Result<Files> {
    render_with_notes(root, env_name, record).map(|(files, _)| files)
}

/// `render`, plus a note for each env.yaml setting that overrides a
/// different value in a definition (see `overrides`).
pub fn render_with_notes(
    root: &Path,
    env_name: &str,
    record: &ImageRecord,
) -> Result<(Files, Vec<String>)> {
    let input = Input::load(root, env_name, record)?;
    let mut out = Out::new(env_name);
    out.add(&objects::namespace(&input.defs.namespace, input.ns()))?;
    input.infrastructure(&mut out)?;
    let service_types = input.services(&mut out)?;
    input.network_policies(&service_types, &mut out)?;
    Ok((out.files, overrides::lines(&input.env, out.notes)))
}

/// What one render reads: env.yaml and the definitions, checked against each other.
struct Input<'a> {
    root: &'a Path,
    env_name: &'a str,
    record: &'a ImageRecord,
    env: Environment,
    defs: Definitions,
}

/// What one render produces: the files and the override notes.
struct Out<'a> {
    env_name: &'a str,
    files: Files,
    notes: Vec<overrides::Note>,
}

impl<'a> Input<'a> {
    fn load(root: &'a Path, env_name: &'a str, record: &'a ImageRecord) -> Result<Self> {
        let env = Environment::load_in(root, env_name)?;
        let defs = Definitions::load(root)?;
        check_overrides(&env, &defs)?;
        Ok(Input {
            root,
            env_name,
            record,
            env,
            defs,
        })
    }

    fn ns(&self) -> &str {
        self.env.namespace.as_str()
    }

    /// A StatefulSet and a headless Service per infrastructure definition.
    fn infrastructure(&self, out: &mut Out) -> Result<()> {
        for def in &self.defs.infrastructure {
            let settings = self.infra_settings(def)?;
            out.add(&objects::stateful_set(&settings, self.ns()))?;
            out.add(&objects::headless_service(def, self.ns()))?;
        }
        Ok(())
    }

    fn infra_settings<'d>(&'d self, def: &'d InfraDefinition) -> Result<InfraSettings<'d>> {
        let over = self
            .env
            .services
            .get(&def.name)
            .cloned()
            .unwrap_or_default();
        if over.replicas.is_some() || over.service_type.is_some() {
            bail!(
                "{}: services.{}: `replicas` and `serviceType` do not apply to infrastructure (one instance, headless Service)",
                self.env.file.display(),
                def.name
            );
        }
        let size_name = over.size.unwrap_or_else(|| def.size.clone());
        Ok(InfraSettings {
            def,
            size: size(&self.env, &size_name, &def.file)?,
            storage: over.storage.unwrap_or_else(|| def.storage.clone()),
            storage_class: self.env.storage_class.clone(),
        })
    }

    /// Deployment, Service (http) and disruption budget per deployed service;
    /// returns the type of each Service, for the network policies.
    fn services(&self, out: &mut Out) -> Result<BTreeMap<&str, ServiceType>> {
        let mut service_types = BTreeMap::new();
        for def in &self.defs.services {
            if def.kind == ServiceKind::Cli {
                continue;
            }
            let over = self
                .env
                .services
                .get(&def.name)
                .cloned()
                .unwrap_or_default();
            let settings = self.service_settings(def, &over, out)?;
            out.add(&objects::deployment(&settings, self.ns()))?;
            if def.kind == ServiceKind::Http {
                let type_ = over.service_type.unwrap_or(self.env.service_type);
                service_types.insert(def.name.as_str(), type_);
                let port = def.port.unwrap_or_default();
                out.add(&objects::service(
                    &def.name,
                    self.ns(),
                    port,
                    type_.as_str(),
                ))?;
            }
            if self.env.pod_disruption_budgets && settings.replicas >= 2 {
                out.add(&policy::disruption_budget(&def.name, self.ns()))?;
            }
        }
        Ok(service_types)
    }

    /// Image, replicas, size and container environment of one service.
    fn service_settings<'d>(
        &'d self,
        def: &'d ServiceDefinition,
        over: &Override,
        out: &mut Out,
    ) -> Result<ServiceSettings<'d>> {
        let committed = committed_image(self.root, self.env_name, &def.name)?;
        let image = images::resolve(&def.name, &self.env, self.record, committed.as_deref())?;
        check_label_value(&image.tag).map_err(|e| anyhow!("image tag of {}: {e}", def.name))?;
        let (replicas, note) = overrides::replicas(&self.env, over, def);
        out.notes.extend(note);
        if replicas == 0 {
            bail!(
                "{}: replicas of {}: 0 would run nothing",
                self.env.file.display(),
                def.name
            );
        }
        let (size_name, note) = overrides::size(over, def);
        out.notes.extend(note);
        Ok(ServiceSettings {
            def,
            env: container_env(def, &self.defs, self.ns())?,
            image,
            replicas,
            size: size(&self.env, &size_name, &def.file)?,
            spread_across_zones: self.env.spread_across_zones,
        })
    }

    /// Default deny, DNS, and one policy per workload (when env.yaml asks for them).
    fn network_policies(
        &self,
        service_types: &BTreeMap<&str, ServiceType>,
        out: &mut Out,
    ) -> Result<()> {
        if !self.env.network_policies {
            return Ok(());
        }
        out.add(&policy::default_deny(self.ns()))?;
        out.add(&policy::allow_dns(self.ns()))?;
        for name in self.defs.names() {
            if let Some(policy) =
                policy::workload_policy(&self.traffic(name, service_types), self.ns())
            {
                out.add(&policy)?;
            }
        }
        Ok(())
    }

    /// Who may reach workload `name`, and what it reaches.
    fn traffic<'d>(
        &'d self,
        name: &'d str,
        service_types: &BTreeMap<&str, ServiceType>,
    ) -> Traffic<'d> {
        let defs = &self.defs;
        let dependencies = match defs.service(name) {
            Some(def) => {
                let mut deps: Vec<(&str, u16)> = def
                    .dependencies
                    .iter()
                    .map(|d| (d.as_str(), defs.port_of(d).unwrap_or_default()))
                    .collect();
                deps.sort();
                deps
            }
            None => Vec::new(),
        };
        let is_cli = defs
            .service(name)
            .is_some_and(|s| s.kind == ServiceKind::Cli);
        Traffic {
            name,
            port: if is_cli { None } else { defs.port_of(name) },
            public: service_types
                .get(name)
                .is_some_and(|t| *t != ServiceType::ClusterIP),
            clients: defs.dependents(name),
            dependencies,
        }
    }
}

impl<'a> Out<'a> {
    fn new(env_name: &'a str) -> Self {
        Out {
            env_name,
            files: Files::new(),
            notes: Vec::new(),
        }
    }

    fn add<K>(&mut self, object: &K) -> Result<()>
    where
        K: k8s_openapi::Resource
            + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>
            + Serialize,
    {
        add(&mut self.files, self.env_name, object)
    }
}

/// Every name under `services:` in env.yaml must be a definition.
fn check_overrides(env: &Environment, defs: &Definitions) -> Result<()> {
    for name in env.services.keys() {
        match defs.service(name) {
            Some(def) if def.kind == ServiceKind::Cli => {
                bail!(
                    "{}: services.{name}: {name} is a cli; nothing of it is deployed",
                    env.file.display()
                )
            }
            Some(_) => {}
            None if defs.infra(name).is_some() => {}
            None => bail!(
                "{}: services.{name}: no definition named `{name}` in deployment/ or infrastructure/",
                env.file.display()
            ),
        }
    }
    Ok(())
}

fn size<'a>(env: &'a Environment, name: &str, file: &Path) -> Result<&'a Size> {
    env.sizes.get(name).ok_or_else(|| {
        let known: Vec<&str> = env.sizes.keys().map(String::as_str).collect();
        anyhow!(
            "{}: size `{name}` is not defined in {} `sizes` (defined: {})",
            file.display(),
            env.file.display(),
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
    })
}

/// The environment of a service's container: the runtime contract (own
/// port, JSON logs, DNS namespace, drain delay on SIGTERM), what each dependency hands its clients,
/// then the definition's own variables. A name set twice is an error.
fn container_env(
    def: &super::definition::ServiceDefinition,
    defs: &Definitions,
    ns: &str,
) -> Result<Vec<(String, EnvValue)>> {
    let port_var = format!("{}_SERVICE_PORT", def.name.to_uppercase().replace('-', "_"));
    let mut env: Vec<(String, EnvValue)> = vec![
        (
            port_var,
            EnvValue::Value(def.port.unwrap_or_default().to_string()),
        ),
        (
            "LOG_FORMAT".to_string(),
            EnvValue::Value("json".to_string()),
        ),
        ("DNS_NAMESPACE".to_string(), EnvValue::Value(ns.to_string())),
        (
            super::objects::SHUTDOWN_DELAY_ENV.to_string(),
            EnvValue::Value(super::objects::SHUTDOWN_DELAY_SECS.to_string()),
        ),
    ];
    let mut deps: Vec<&String> = def.dependencies.iter().collect();
    deps.sort();
    for dep in deps {
        if let Some(infra) = defs.infra(dep) {
            env.extend(infra.client_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    env.extend(
        def.env
            .iter()
            .map(|(k, v)| (k.clone(), EnvValue::Value(v.clone()))),
    );
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in &env {
        if !seen.insert(name) {
            bail!(
                "{}: env: `{name}` is already set by the generated environment or a dependency's clientEnv",
                def.file.display()
            );
        }
    }
    Ok(env)
}

/// The image the committed manifest of `service` runs (if there is one).
fn committed_image(root: &Path, env: &str, service: &str) -> Result<Option<String>> {
    let file = manifests_dir(env).join(format!("deployment-{service}.yaml"));
    let text = match std::fs::read_to_string(root.join(&file)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => bail!("reading {}: {e}", file.display()),
    };
    let deployment: k8s_openapi::api::apps::v1::Deployment =
        serde_yaml::from_str(&text).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    let image = deployment
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.into_iter().find(|c| c.name == service))
        .and_then(|c| c.image);
    if let Some(image) = &image {
        ImageRef::parse(image).map_err(|e| anyhow!("{}: {e}", file.display()))?;
    }
    Ok(image)
}

/// Label values: at most 63 characters, alphanumerics and `-_.` inside.
fn check_label_value(value: &str) -> Result<()> {
    let ok = value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !ok {
        bail!("`{value}` is not a valid label value");
    }
    Ok(())
}

/// Serializes one object under the header line, as `<kind>-<name>.yaml`.
fn add<K>(files: &mut Files, env: &str, object: &K) -> Result<()>
where
    K: k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>
        + Serialize,
{
    let name = object.metadata().name.clone().unwrap_or_default();
    let file = format!("{}-{name}.yaml", K::KIND.to_lowercase());
    let yaml = serde_yaml::to_string(object).map_err(|e| anyhow!("serializing {file}: {e}"))?;
    let text = format!("{}{}", header(env), super::yaml11::quote_booleans(&yaml));
    if files.insert(file.clone(), text).is_some() {
        bail!("two objects render to {file}: rename one definition");
    }
    Ok(())
}

/// The first line of every generated file.
pub fn header(env: &str) -> String {
    format!(
        "# Generated by `cargo xtask render --env {env}` from deployment/, infrastructure/ and environments/{env}/env.yaml: do not edit.\n"
    )
}
