//! Definitions + env.yaml + image record -> the manifest files of one
//! environment, entirely in memory (nothing is written until all of it
//! rendered), one object per file, deterministic bytes.

use super::definition::{Definitions, EnvValue, ServiceKind};
use super::images::{self, ImageRef};
use super::objects::{self, InfraSettings, ServiceSettings};
use super::overrides;
use super::policy::{self, Traffic};
use crate::environment::{Environment, ServiceType, Size};
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
    let mut notes = Vec::new();
    let env = Environment::load_in(root, env_name)?;
    let defs = Definitions::load(root)?;
    check_overrides(&env, &defs)?;
    let ns = env.namespace.as_str();
    let mut files = Files::new();

    add(
        &mut files,
        env_name,
        &objects::namespace(&defs.namespace, ns),
    )?;

    for def in &defs.infrastructure {
        let over = env.services.get(&def.name).cloned().unwrap_or_default();
        if over.replicas.is_some() || over.service_type.is_some() {
            bail!(
                "{}: services.{}: `replicas` and `serviceType` do not apply to infrastructure (one instance, headless Service)",
                env.file.display(),
                def.name
            );
        }
        let size_name = over.size.unwrap_or_else(|| def.size.clone());
        let settings = InfraSettings {
            def,
            size: size(&env, &size_name, &def.file)?,
            storage: over.storage.unwrap_or_else(|| def.storage.clone()),
            storage_class: env.storage_class.clone(),
        };
        add(&mut files, env_name, &objects::stateful_set(&settings, ns))?;
        add(&mut files, env_name, &objects::headless_service(def, ns))?;
    }

    let mut service_types: BTreeMap<&str, ServiceType> = BTreeMap::new();
    for def in &defs.services {
        if def.kind == ServiceKind::Cli {
            continue;
        }
        let over = env.services.get(&def.name).cloned().unwrap_or_default();
        let committed = committed_image(root, env_name, &def.name)?;
        let image = images::resolve(&def.name, &env, record, committed.as_deref())?;
        check_label_value(&image.tag).map_err(|e| anyhow!("image tag of {}: {e}", def.name))?;
        let (replicas, note) = overrides::replicas(&env, &over, def);
        notes.extend(note);
        if replicas == 0 {
            bail!(
                "{}: replicas of {}: 0 would run nothing",
                env.file.display(),
                def.name
            );
        }
        let (size_name, note) = overrides::size(&over, def);
        notes.extend(note);
        let settings = ServiceSettings {
            def,
            env: container_env(def, &defs, ns)?,
            image,
            replicas,
            size: size(&env, &size_name, &def.file)?,
            spread_across_zones: env.spread_across_zones,
        };
        let port = def.port.unwrap_or_default();
        add(&mut files, env_name, &objects::deployment(&settings, ns))?;
        if def.kind == ServiceKind::Http {
            let type_ = over.service_type.unwrap_or(env.service_type);
            service_types.insert(&def.name, type_);
            add(
                &mut files,
                env_name,
                &objects::service(&def.name, ns, port, type_.as_str()),
            )?;
        }
        if env.pod_disruption_budgets && replicas >= 2 {
            add(
                &mut files,
                env_name,
                &policy::disruption_budget(&def.name, ns),
            )?;
        }
    }

    if env.network_policies {
        add(&mut files, env_name, &policy::default_deny(ns))?;
        add(&mut files, env_name, &policy::allow_dns(ns))?;
        for name in defs.names() {
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
            let traffic = Traffic {
                name,
                port: if is_cli { None } else { defs.port_of(name) },
                public: service_types
                    .get(name)
                    .is_some_and(|t| *t != ServiceType::ClusterIP),
                clients: defs.dependents(name),
                dependencies,
            };
            if let Some(policy) = policy::workload_policy(&traffic, ns) {
                add(&mut files, env_name, &policy)?;
            }
        }
    }
    Ok((files, overrides::lines(&env, notes)))
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
