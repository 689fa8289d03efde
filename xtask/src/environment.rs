//! `environments/<env>/env.yaml`: what differs between minikube and aws.
//!
//! Owned by the manifests module; other commands read `context`, `registry`
//! and `namespace` from here.

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Environment {
    /// The kube context `sync` insists on.
    pub context: String,
    /// Where images are pushed and pulled from, `host[:port]`.
    pub registry: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(skip)]
    pub name: String,
}

fn default_namespace() -> String {
    "micro".to_string()
}

impl Environment {
    pub fn dir(name: &str) -> PathBuf {
        crate::project::root().join("environments").join(name)
    }

    pub fn load(name: &str) -> Result<Environment> {
        let path = Self::dir(name).join("env.yaml");
        if !path.exists() {
            bail!("no environment `{name}`: {} does not exist (known: {})", path.display(), Self::known().join(", "));
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut env: Environment =
            serde_yaml::from_str(&text).with_context(|| format!("{}", path.display()))?;
        env.name = name.to_string();
        Ok(env)
    }

    /// The environments that have an env.yaml.
    pub fn known() -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(crate::project::root().join("environments"))
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
