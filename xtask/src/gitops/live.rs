//! Live state, read cheaply: one label-selected LIST per kind and namespace
//! (the members of the environment's ApplySet), one LIST of the environment's
//! inventories, plus a GET only for a desired object those lists did not
//! return (it may exist without our label).

use super::cluster::{CONCURRENCY, Cluster, is_not_found};
use super::inventory::Inventory;
use super::kinds::{self, KindInfo, ObjectKey};
use super::source::{Desired, DesiredObject};
use crate::ownership::{self, Owner};
use anyhow::Result;
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::ListParams;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Up to this many objects of one kind missing from the labelled list are
/// read with a GET each; more cost one LIST of the whole kind instead (one
/// request either way for a single object; fewer for any more).
const GET_LIMIT: usize = 1;

pub struct Live {
    /// Live objects by key (without the inventory ConfigMap).
    pub objects: HashMap<ObjectKey, Value>,
    /// Keys of live objects that carry the owner's ApplySet label.
    pub members: BTreeSet<ObjectKey>,
    /// The owner's inventory, in the environment's namespace.
    pub inventory: Option<Inventory>,
    /// Inventories of the same environment in other namespaces.
    pub elsewhere: Vec<Inventory>,
    /// Keys of the live objects in the command's scope (all of them unless
    /// `-n`/`-l`), kept after the plan takes `objects`.
    pub in_scope: BTreeSet<ObjectKey>,
}

pub(crate) fn key_of(kind: &KindInfo, item: &Value) -> Option<ObjectKey> {
    let meta = item.get("metadata")?;
    Some(ObjectKey {
        group: kind.group.to_string(),
        kind: kind.kind.to_string(),
        namespace: meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        name: meta.get("name")?.as_str()?.to_string(),
    })
}

/// Items of a list response lack apiVersion/kind; put them back.
pub(crate) fn with_type(kind: &KindInfo, mut item: Value) -> Value {
    if let Some(map) = item.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(kind.api_version()));
        map.insert("kind".into(), Value::String(kind.kind.to_string()));
    }
    item
}

async fn list(
    cluster: &Cluster,
    kind: &'static KindInfo,
    namespace: String,
    selector: Option<&str>,
) -> Result<Vec<(ObjectKey, Value)>> {
    let params = match selector {
        Some(selector) => ListParams::default().labels(selector),
        None => ListParams::default(),
    };
    let items = cluster
        .list_values(kind, &namespace, &params)
        .await
        .map_err(|e| cluster.explain(&format!("listing {}", kind.plural), e))?;
    Ok(items
        .into_iter()
        .filter_map(|item| {
            let key = key_of(kind, &item)?;
            Some((key, with_type(kind, item)))
        })
        .collect())
}

async fn get(
    cluster: &Cluster,
    kind: &'static KindInfo,
    key: ObjectKey,
) -> Result<Option<(ObjectKey, Value)>> {
    let what = format!("reading {key}");
    match cluster.get_value(kind, &key.namespace, &key.name).await {
        Ok(object) => Ok(Some((key, with_type(kind, object)))),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(cluster.explain(&what, e)),
    }
}

/// Read what is live for `desired`: the owner's members (one selected LIST
/// per kind and namespace), the desired objects that are not members yet, and
/// every inventory of the environment, in whatever namespace.
pub async fn fetch(cluster: &Cluster, desired: &Desired) -> Result<Live> {
    let started = std::time::Instant::now();
    let live = fetch_all(cluster, desired).await?;
    crate::cli::verbosity::note(&format!(
        "read the live state: {} object(s) in {} ms",
        live.objects.len(),
        started.elapsed().as_millis()
    ));
    Ok(live)
}

async fn fetch_all(cluster: &Cluster, desired: &Desired) -> Result<Live> {
    let owner = desired.owner();
    let selector = owner.member_selector();
    let scopes = desired_scopes(desired);
    let mut listed = list_scopes(cluster, &scopes, &selector).await?;
    let (inventory, elsewhere) = inventories(cluster, &owner).await?;
    let extra = inventory_only_scopes(inventory.as_ref(), &scopes);
    listed.extend(list_scopes(cluster, &extra, &selector).await?);
    let members: BTreeSet<ObjectKey> = listed.keys().cloned().collect();
    listed.extend(not_members(cluster, &desired.objects, &listed).await?);
    let mut live = Live {
        objects: listed,
        members,
        inventory,
        elsewhere,
        in_scope: BTreeSet::new(),
    };
    live.restrict(&desired.scope);
    Ok(live)
}

impl Live {
    /// Forget the live objects outside `scope`: they are neither compared
    /// nor pruned. `in_scope` keeps the keys of those that stay.
    fn restrict(&mut self, scope: &super::scope::Scope) {
        if !scope.is_everything() {
            self.objects
                .retain(|key, object| scope.contains(key, object));
            let objects = &self.objects;
            self.members.retain(|key| objects.contains_key(key));
        }
        self.in_scope = self.objects.keys().cloned().collect();
    }
}

/// Every (kind, namespace) a desired object lives in.
fn desired_scopes(desired: &Desired) -> BTreeSet<Scope> {
    desired
        .objects
        .iter()
        .map(|o| scope(o.kind, &o.key.namespace))
        .collect()
}

/// Scopes only the inventory mentions (an object type removed from git).
fn inventory_only_scopes(
    inventory: Option<&Inventory>,
    known: &BTreeSet<Scope>,
) -> BTreeSet<Scope> {
    inventory
        .into_iter()
        .flat_map(|inv| &inv.objects)
        .filter_map(|k| k.info().map(|info| scope(info, &k.namespace)))
        .filter(|s| !known.contains(s))
        .collect()
}

/// (stage, kind, namespace): one LIST. Cluster-scoped kinds have no namespace.
type Scope = (u8, &'static str, String);

fn scope(kind: &'static KindInfo, ns: &str) -> Scope {
    let namespace = if kind.namespaced { ns } else { "" };
    (kind.stage, kind.kind, namespace.to_string())
}

/// Desired objects the member lists did not return: a GET each when few,
/// else one unselected LIST of their kind (a first sync). They may exist
/// without our label: made by hand, by another environment, or by an older xtask.
async fn not_members(
    cluster: &Cluster,
    desired: &[DesiredObject],
    listed: &HashMap<ObjectKey, Value>,
) -> Result<Vec<(ObjectKey, Value)>> {
    let mut by_scope: BTreeMap<Scope, Vec<&DesiredObject>> = BTreeMap::new();
    for object in desired.iter().filter(|d| !listed.contains_key(&d.key)) {
        by_scope
            .entry(scope(object.kind, &object.key.namespace))
            .or_default()
            .push(object);
    }
    let mut found = Vec::new();
    let mut to_get: Vec<&DesiredObject> = Vec::new();
    for (scope, objects) in by_scope {
        if objects.len() <= GET_LIMIT {
            to_get.extend(objects);
            continue;
        }
        let info = objects[0].kind;
        let wanted: BTreeSet<&ObjectKey> = objects.iter().map(|o| &o.key).collect();
        let all = list(cluster, info, scope.2, None).await?;
        found.extend(all.into_iter().filter(|(k, _)| wanted.contains(k)));
    }
    let got: Vec<Option<(ObjectKey, Value)>> = stream::iter(to_get)
        .map(|d| get(cluster, d.kind, d.key.clone()))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    found.extend(got.into_iter().flatten());
    Ok(found)
}

/// The environment's inventory in its namespace, and any in other namespaces
/// (left by an earlier namespace). One cluster-wide LIST by the inventory
/// label; where RBAC allows only the namespace, a GET there (and a warning:
/// a namespace change cannot be seen then).
async fn inventories(
    cluster: &Cluster,
    owner: &Owner,
) -> Result<(Option<Inventory>, Vec<Inventory>)> {
    let configmaps = kinds::lookup("v1", "ConfigMap").expect("known kind");
    let params = ListParams::default().labels(&ownership::inventory_selector(&owner.env));
    let name = owner.inventory_name();
    let found: Vec<Inventory> = match cluster.list_all_values(configmaps, &params).await {
        Ok(items) => items
            .iter()
            .filter(|cm| cm.pointer("/metadata/name").and_then(Value::as_str) == Some(&name))
            .map(Inventory::from_configmap)
            .collect(),
        Err(kube::Error::Api(status)) if status.code == 403 => {
            eprintln!(
                "warning: cannot list ConfigMaps across namespaces (403): a change of `{}`'s namespace would go unnoticed",
                owner.env
            );
            let key = ObjectKey {
                group: String::new(),
                kind: "ConfigMap".into(),
                namespace: owner.namespace.clone(),
                name,
            };
            get(cluster, configmaps, key)
                .await?
                .map(|(_, cm)| Inventory::from_configmap(&cm))
                .into_iter()
                .collect()
        }
        Err(e) => return Err(cluster.explain("listing the inventories", e)),
    };
    let (here, elsewhere): (Vec<Inventory>, Vec<Inventory>) = found
        .into_iter()
        .partition(|inv| inv.namespace == owner.namespace);
    Ok((here.into_iter().next(), elsewhere))
}

async fn list_scopes(
    cluster: &Cluster,
    scopes: &BTreeSet<Scope>,
    selector: &str,
) -> Result<HashMap<ObjectKey, Value>> {
    let lists: Vec<Vec<(ObjectKey, Value)>> = stream::iter(scopes.iter().cloned())
        .map(|(_, kind, ns)| {
            let info = kinds::KINDS
                .iter()
                .find(|k| k.kind == kind)
                .expect("known kind");
            list(cluster, info, ns, Some(selector))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(lists.into_iter().flatten().collect())
}
