//! Connecting to the right cluster, or to none.
//!
//! The kubeconfig is found as kubectl finds it (`--kubeconfig`, `KUBECONFIG`,
//! `~/.kube/config`). Acting on whatever the current context happens to be is
//! how deploys land in the wrong cluster, so sync refuses unless the current
//! context is the one env.yaml names, or `--context` names one explicitly.

use super::kinds::KindInfo;
use crate::environment::Environment;
use anyhow::{Result, anyhow, bail};
use kube::api::{Api, DynamicObject, GetParams, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// At most this many requests to the API server in flight at once.
pub const CONCURRENCY: usize = 16;

#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub context: String,
    pub server: String,
}

/// Where the kubeconfig came from, for messages.
fn load_kubeconfig(flag: Option<&Path>) -> Result<Kubeconfig> {
    if let Some(path) = flag {
        if !path.exists() {
            bail!("kubeconfig {} does not exist", path.display());
        }
        return Kubeconfig::read_from(path)
            .map_err(|e| anyhow!("reading kubeconfig {}: {e}", path.display()));
    }
    if let Some(value) = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        let paths: Vec<_> = std::env::split_paths(&value)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        if let Some(missing) = paths.iter().find(|p| !p.exists()) {
            bail!(
                "kubeconfig {} (from KUBECONFIG) does not exist",
                missing.display()
            );
        }
    } else {
        let home = std::env::var_os("HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        let default = home.join(".kube").join("config");
        if !default.exists() {
            bail!(
                "no kubeconfig: {} does not exist; set KUBECONFIG or pass --kubeconfig",
                default.display()
            );
        }
    }
    Kubeconfig::read().map_err(|e| anyhow!("reading kubeconfig: {e}"))
}

/// The hint after a wrong context: the names the kubeconfig really has.
fn known_contexts(config: &Kubeconfig) -> String {
    let names: Vec<String> = config
        .contexts
        .iter()
        .map(|c| format!("`{}`", c.name))
        .collect();
    if names.is_empty() {
        "the kubeconfig has no contexts".to_string()
    } else {
        format!("the kubeconfig's contexts: {}", names.join(", "))
    }
}

/// The kubeconfig's current context, read again (the dashboard notices a
/// `kubectl config use-context` while it runs). No request is made.
pub fn current_context(kubeconfig: Option<&Path>) -> Result<Option<String>> {
    Ok(load_kubeconfig(kubeconfig)?.current_context)
}

/// Connect for `env`, refusing a current context other than env.yaml's.
pub async fn connect(
    kubeconfig: Option<&Path>,
    context_flag: Option<&str>,
    env: &Environment,
) -> Result<Cluster> {
    let config = load_kubeconfig(kubeconfig)?;
    let context = match context_flag {
        Some(named) => named.to_string(),
        None => {
            let current = config.current_context.clone().unwrap_or_default();
            if current != env.context {
                bail!(
                    "the current kube context is `{current}` but environment `{}` deploys to `{}`: \
                     run `kubectl config use-context {}` or pass `--context {}` ({}); nothing was changed",
                    env.name,
                    env.context,
                    env.context,
                    env.context,
                    known_contexts(&config)
                );
            }
            current
        }
    };
    let Some(named) = config.contexts.iter().find(|c| c.name == context) else {
        bail!(
            "no context `{context}` in the kubeconfig ({}); nothing was changed",
            known_contexts(&config)
        );
    };
    let cluster_name = named
        .context
        .as_ref()
        .map(|c| c.cluster.clone())
        .unwrap_or_default();
    let server = config
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .unwrap_or_else(|| "<no server>".to_string());
    let options = KubeConfigOptions {
        context: Some(context.clone()),
        ..Default::default()
    };
    let mut client_config = kube::Config::from_custom_kubeconfig(config, &options)
        .await
        .map_err(|e| anyhow!("kube context `{context}`: {e}"))?;
    client_config.connect_timeout = Some(Duration::from_secs(5));
    client_config.read_timeout = Some(Duration::from_secs(60));
    // Retries would turn "unreachable" into a long silence.
    client_config.default_retry = false;
    let client = kube::Client::try_from(client_config)
        .map_err(|e| anyhow!("kube context `{context}`: {e}"))?;
    Ok(Cluster {
        client,
        context,
        server,
    })
}

impl Cluster {
    pub fn api(&self, kind: &KindInfo, namespace: &str) -> Api<DynamicObject> {
        let resource = kind.api_resource();
        if kind.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &resource)
        } else {
            Api::all_with(self.client.clone(), &resource)
        }
    }

    /// LIST `kind` as JSON values, exactly as the server sent them (no
    /// round trip through typed objects: a large list is parsed once).
    pub async fn list_values(
        &self,
        kind: &KindInfo,
        namespace: &str,
        params: &ListParams,
    ) -> Result<Vec<Value>, kube::Error> {
        #[derive(serde::Deserialize)]
        struct List {
            items: Option<Vec<Value>>,
        }
        let api = self.api(kind, namespace);
        let mut request = kube::core::Request::new(api.resource_url())
            .list(params)
            .map_err(kube::Error::BuildRequest)?;
        request.extensions_mut().insert("list");
        let list: List = self.client.request(request).await?;
        Ok(list.items.unwrap_or_default())
    }

    /// LIST `kind` in every namespace, as JSON values.
    pub async fn list_all_values(
        &self,
        kind: &KindInfo,
        params: &ListParams,
    ) -> Result<Vec<Value>, kube::Error> {
        let all = KindInfo {
            namespaced: false,
            ..*kind
        };
        self.list_values(&all, "", params).await
    }

    /// GET one object as a JSON value.
    pub async fn get_value(
        &self,
        kind: &KindInfo,
        namespace: &str,
        name: &str,
    ) -> Result<Value, kube::Error> {
        let api = self.api(kind, namespace);
        let mut request = kube::core::Request::new(api.resource_url())
            .get(name, &GetParams::default())
            .map_err(kube::Error::BuildRequest)?;
        request.extensions_mut().insert("get");
        self.client.request(request).await
    }

    /// PATCH one object; the object the server answers, as a JSON value.
    pub async fn patch_value<P: serde::Serialize + std::fmt::Debug>(
        &self,
        kind: &KindInfo,
        namespace: &str,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<Value, kube::Error> {
        let api = self.api(kind, namespace);
        let mut request = kube::core::Request::new(api.resource_url())
            .patch(name, params, patch)
            .map_err(kube::Error::BuildRequest)?;
        request.extensions_mut().insert("patch");
        self.client.request(request).await
    }

    /// One line saying what went wrong talking to the cluster.
    pub fn explain(&self, what: &str, err: kube::Error) -> anyhow::Error {
        let place = format!(
            "the cluster at {} (context `{}`)",
            self.server, self.context
        );
        match &err {
            kube::Error::Api(status) if status.code == 401 => {
                anyhow!("{what}: {place} refused the credentials (401 Unauthorized)")
            }
            kube::Error::Api(status) if status.code == 403 => {
                anyhow!(
                    "{what}: {place} denied access (403 Forbidden): {}",
                    status.message
                )
            }
            kube::Error::Api(status) => anyhow!(
                "{what}: {} ({} {})",
                status.message,
                status.code,
                status.reason
            ),
            _ => {
                let mut cause = String::new();
                let mut source: Option<&dyn std::error::Error> = Some(&err);
                while let Some(e) = source {
                    cause = e.to_string();
                    source = e.source();
                }
                anyhow!("{what}: cannot reach {place}: {cause}")
            }
        }
    }
}

pub fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}
