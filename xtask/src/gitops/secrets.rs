//! `cargo xtask secrets --env <env>`: create (or, with `--rotate`, replace)
//! the Secrets the manifests reference, directly in the cluster. Values never
//! touch git: they come from the variable the definition reads them into
//! (`POSTGRES_PASSWORD`, `REDIS_PASSWORD`) when set, else are generated.
//!
//! The Secrets are labelled `managed-by: xtask-secrets`, not `xtask`, so that
//! sync's prune (of `xtask` objects gone from git) never deletes them.

use crate::environment::Environment;
use crate::gitops::cluster::{Cluster, connect};
use crate::manifest::definition::{Definitions, EnvValue};
use crate::ownership::{
    APPLYSET_PART_OF, MANAGED_BY_LABEL, MANAGED_BY_SECRETS, Owner, SYSTEM, SYSTEM_LABEL,
};
use anyhow::{Result, anyhow};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
#[command(
    after_help = "Creates missing Secrets; with --rotate, replaces their values.\nValues: $POSTGRES_PASSWORD / $REDIS_PASSWORD when set, else generated.\nExample: cargo xtask secrets --env minikube\n         POSTGRES_PASSWORD=... cargo xtask secrets --env aws --rotate"
)]
pub struct SecretsArgs {
    /// Environment: its kube context and namespace come from env.yaml.
    #[arg(long)]
    pub env: String,
    /// Replace the values of Secrets that exist already.
    #[arg(long)]
    pub rotate: bool,
    /// Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, as kubectl).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Use this kube context instead of env.yaml's `context`.
    #[arg(long)]
    pub context: Option<String>,
    /// Rotate without asking. On a terminal, --rotate lists the Secrets and
    /// asks first; without a terminal it never asks.
    #[arg(short = 'y', long)]
    pub yes: bool,
}

/// Secret name -> key -> the environment variable its value is read from.
pub type Wanted = BTreeMap<String, BTreeMap<String, String>>;

/// Every Secret key the infrastructure definitions reference.
pub fn wanted(defs: &Definitions) -> Wanted {
    let mut wanted = Wanted::new();
    for def in &defs.infrastructure {
        for (var, value) in def.env.iter().chain(&def.client_env) {
            if let EnvValue::Secret(secret) = value {
                wanted
                    .entry(secret.secret_key_ref.name.clone())
                    .or_default()
                    .insert(secret.secret_key_ref.key.clone(), var.clone());
            }
        }
    }
    wanted
}

pub fn run(args: SecretsArgs) -> Result<ExitCode> {
    let root = crate::workspace::root();
    let env = Environment::load_in(&root, &args.env)?;
    let defs = Definitions::load(&root)?;
    // Secrets names its context (env.yaml's, or --context), so the current
    // context does not matter; connecting as sync does gives the same errors.
    let context = args.context.clone().unwrap_or_else(|| env.context.clone());
    let wanted = wanted(&defs);
    if args.rotate && !args.yes && crate::cli::prompt::interactive() {
        confirm_rotation(&wanted, &env.namespace, &context)?;
    }
    let lines = crate::cli::runtime()?.block_on(async {
        let cluster = connect(args.kubeconfig.as_deref(), Some(&context), &env).await?;
        apply(
            &cluster,
            &Owner::new(&env.name, &env.namespace),
            &wanted,
            args.rotate,
            &|var| std::env::var(var).ok(),
        )
        .await
    })?;
    for line in lines {
        outln!("{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The Secrets `--rotate` replaces, and a yes before it does.
fn confirm_rotation(wanted: &Wanted, namespace: &str, context: &str) -> Result<()> {
    let rows: Vec<Vec<String>> = wanted
        .iter()
        .map(|(name, keys)| {
            let keys: Vec<&str> = keys.keys().map(String::as_str).collect();
            vec![
                "  rotate".to_string(),
                format!("Secret {namespace}/{name}"),
                keys.join(", "),
            ]
        })
        .collect();
    let question = format!(
        "replace these values in context `{context}`? Running pods keep the old ones until they restart."
    );
    if !crate::cli::prompt::confirm(&crate::cli::table::table(&rows), &question)? {
        anyhow::bail!("not confirmed: no Secret was changed (pass --yes to rotate without asking)");
    }
    Ok(())
}

/// Creates the namespace if missing, then each Secret; returns one line per Secret.
/// A namespace created here belongs to the environment (its ApplySet label), so the
/// first `sync` after `secrets` applies it instead of refusing it as not ours.
pub async fn apply(
    cluster: &Cluster,
    owner: &Owner,
    wanted: &Wanted,
    rotate: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>> {
    let mut lines: Vec<String> = ensure_namespace(cluster, owner)
        .await?
        .into_iter()
        .collect();
    let secrets = Secrets {
        cluster,
        api: Api::namespaced(cluster.client.clone(), &owner.namespace),
        namespace: &owner.namespace,
        rotate,
        lookup,
    };
    for (name, keys) in wanted {
        lines.push(secrets.apply(name, keys).await?);
    }
    lines.extend(rotation_note(rotate, wanted));
    Ok(lines)
}

/// Creates the owner's namespace, labelled as the environment's, unless it exists.
async fn ensure_namespace(cluster: &Cluster, owner: &Owner) -> Result<Option<String>> {
    let namespace = owner.namespace.as_str();
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    if namespaces
        .get_opt(namespace)
        .await
        .map_err(|e| cluster.explain(&format!("reading namespace {namespace}"), e))?
        .is_some()
    {
        return Ok(None);
    }
    let mut metadata = meta(namespace, None);
    metadata
        .labels
        .get_or_insert_default()
        .insert(APPLYSET_PART_OF.to_string(), owner.applyset_id());
    let object = Namespace {
        metadata,
        ..Default::default()
    };
    namespaces
        .create(&PostParams::default(), &object)
        .await
        .map_err(|e| cluster.explain(&format!("creating namespace {namespace}"), e))?;
    Ok(Some(format!("namespace/{namespace} created")))
}

/// A rotated database password needs more than the Secret.
fn rotation_note(rotate: bool, wanted: &Wanted) -> Option<String> {
    (rotate && wanted.contains_key("postgres-credentials")).then(|| {
        "note: PostgreSQL reads POSTGRES_PASSWORD only when it initializes an empty volume; \
         for a running database also run ALTER USER ... PASSWORD, then restart its clients"
            .to_string()
    })
}

/// The Secrets of one namespace, and where their values come from.
struct Secrets<'a> {
    cluster: &'a Cluster,
    api: Api<Secret>,
    namespace: &'a str,
    rotate: bool,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

/// The values set by `fill`: a note per key, and whether any was set.
struct Filled {
    sources: Vec<String>,
    changed: bool,
}

impl Secrets<'_> {
    /// Creates, completes or rotates Secret `name`; returns its line.
    async fn apply(&self, name: &str, keys: &BTreeMap<String, String>) -> Result<String> {
        let namespace = self.namespace;
        let existing = self.api.get_opt(name).await.map_err(|e| {
            self.cluster
                .explain(&format!("reading secret {namespace}/{name}"), e)
        })?;
        let mut data = existing
            .as_ref()
            .and_then(|s| s.data.clone())
            .unwrap_or_default();
        let filled = self.fill(&mut data, keys)?;
        match existing {
            None => self.create(name, data, &filled).await,
            Some(_) if !filled.changed => Ok(format!(
                "secret/{name} unchanged (exists; --rotate replaces its values)"
            )),
            Some(secret) => self.replace(name, secret, data, &filled).await,
        }
    }

    /// Sets each missing key (every key, when rotating): from its variable, else generated.
    fn fill(
        &self,
        data: &mut BTreeMap<String, ByteString>,
        keys: &BTreeMap<String, String>,
    ) -> Result<Filled> {
        let mut filled = Filled {
            sources: Vec::new(),
            changed: false,
        };
        for (key, var) in keys {
            if data.contains_key(key) && !self.rotate {
                continue;
            }
            let value = match (self.lookup)(var) {
                Some(value) if !value.is_empty() => {
                    filled.sources.push(format!("{key} from ${var}"));
                    value
                }
                _ => {
                    filled.sources.push(format!("{key} generated"));
                    generate()?
                }
            };
            data.insert(key.clone(), ByteString(value.into_bytes()));
            filled.changed = true;
        }
        Ok(filled)
    }

    async fn create(
        &self,
        name: &str,
        data: BTreeMap<String, ByteString>,
        filled: &Filled,
    ) -> Result<String> {
        let secret = Secret {
            metadata: meta(name, Some(self.namespace)),
            data: Some(data),
            type_: Some("Opaque".to_string()),
            ..Default::default()
        };
        self.api
            .create(&PostParams::default(), &secret)
            .await
            .map_err(|e| self.cluster.explain(&format!("creating secret {name}"), e))?;
        Ok(format!(
            "secret/{name} created ({})",
            filled.sources.join(", ")
        ))
    }

    async fn replace(
        &self,
        name: &str,
        mut secret: Secret,
        data: BTreeMap<String, ByteString>,
        filled: &Filled,
    ) -> Result<String> {
        secret.data = Some(data);
        secret.string_data = None;
        self.api
            .replace(name, &PostParams::default(), &secret)
            .await
            .map_err(|e| self.cluster.explain(&format!("replacing secret {name}"), e))?;
        Ok(format!(
            "secret/{name} {} ({})",
            if self.rotate { "rotated" } else { "completed" },
            filled.sources.join(", ")
        ))
    }
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(BTreeMap::from([
            (SYSTEM_LABEL.to_string(), SYSTEM.to_string()),
            (MANAGED_BY_LABEL.to_string(), MANAGED_BY_SECRETS.to_string()),
        ])),
        ..Default::default()
    }
}

/// 32 random bytes from the kernel, hex: 64 characters safe in a URL or a shell.
fn generate() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| anyhow!("reading /dev/urandom: {e}"))?;
    Ok(hex::encode(bytes))
}
