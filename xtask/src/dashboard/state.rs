//! The dashboard's model: one snapshot per environment. The page is rendered
//! from it and `/api/state` serves it as JSON or YAML, so people and
//! machines see the same data.

use crate::gitops::rollout::Health;
use serde::Serialize;
use std::collections::BTreeMap;

/// Everything the dashboard shows, one entry per environment in `--env` order.
#[derive(Serialize, Clone, Default)]
pub struct Snapshot {
    pub environments: Vec<EnvState>,
}

#[derive(Serialize, Clone, Default)]
#[serde(rename_all = "camelCase")]
pub struct EnvState {
    pub name: String,
    /// The context env.yaml at HEAD names.
    pub context: String,
    /// Why the view below is missing or stale (the cluster cannot be reached,
    /// the kubeconfig's context is another one); `None` when live.
    pub banner: Option<Banner>,
    pub head: Option<CommitInfo>,
    /// The commit the inventory says was synced last.
    pub synced: Option<CommitInfo>,
    /// Commits after the synced one up to HEAD, newest first (at most
    /// [`super::commits::LIMIT`]); `None` when HEAD does not descend from it.
    pub commits_ahead: Option<usize>,
    pub commits: Vec<CommitInfo>,
    /// Objects per state, in the order `status` lists them.
    pub counts: Vec<Count>,
    pub not_ready: usize,
    pub objects: Vec<ObjectView>,
    pub endpoints: Vec<Endpoint>,
}

#[derive(Serialize, Clone, PartialEq, Eq, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Banner {
    /// `connecting`, `unreachable`, `wrong-context` or `error`.
    pub kind: &'static str,
    pub message: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct Count {
    pub state: &'static str,
    pub count: usize,
}

#[derive(Serialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CommitInfo {
    pub id: String,
    pub short: String,
    pub subject: String,
    pub author: String,
    /// Seconds since the Unix epoch (the committer's time).
    pub time: i64,
    /// A deploy commit (`deploy(<env>): …`, made by `commit`/`release`).
    pub deploy: bool,
}

#[derive(Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ObjectView {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    /// As `status` says it: in sync, outdated, drifted, missing, extra, not ours.
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Replicas>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageView>,
    /// The normalized diff live → git (`diff`'s), Secret values masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Replicas {
    pub ready: i64,
    pub desired: i64,
}

#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ImageView {
    pub container: String,
    pub image: String,
    pub tag: String,
    /// The first 12 hex digits of the digest, when pinned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The commit the image was built from (the image record's entry for its
    /// digest, or its commit tag found in git).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<CommitInfo>,
}

/// A Service reachable from outside the cluster.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub namespace: String,
    pub service: String,
    /// NodePort or LoadBalancer.
    #[serde(rename = "type")]
    pub kind: String,
    /// `main 80:30080/TCP` (port:nodePort).
    pub ports: Vec<String>,
    /// Load balancer addresses, once the cloud assigned them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
}
