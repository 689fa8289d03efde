//! Live state, read cheaply: one label-selected LIST per kind and namespace
//! (objects carrying `app.kubernetes.io/managed-by=xtask`), plus a GET only
//! for a desired object that list did not return (it may exist unlabelled).

use super::cluster::{Cluster, is_not_found};
use super::inventory::{self, Inventory, MANAGED_BY};
use super::kinds::{self, KindInfo, ObjectKey};
use super::source::DesiredObject;
use anyhow::Result;
use futures::{StreamExt, TryStreamExt, stream};
use kube::api::ListParams;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const CONCURRENCY: usize = 16;

/// Up to this many objects of one kind missing from the labelled list are
/// read with a GET each; more cost one LIST of the whole kind instead (one
/// request either way for a single object; fewer for any more).
const GET_LIMIT: usize = 1;

pub struct Live {
    /// Live objects by key (without the inventory ConfigMap).
    pub objects: HashMap<ObjectKey, Value>,
    /// Keys of live objects that carry our managed-by label.
    pub labelled: BTreeSet<ObjectKey>,
    pub inventory: Option<Inventory>,
}

fn key_of(kind: &KindInfo, item: &Value) -> Option<ObjectKey> {
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
fn with_type(kind: &KindInfo, mut item: Value) -> Value {
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

/// Read what is live for `desired`, plus the inventory of `env` in `namespace`.
pub async fn fetch(
    cluster: &Cluster,
    env: &str,
    namespace: &str,
    desired: &[DesiredObject],
) -> Result<Live> {
    let configmaps = kinds::lookup("v1", "ConfigMap").expect("known kind");
    let mut scopes: BTreeSet<(u8, &'static str, String)> = BTreeSet::new();
    let scope = |kind: &'static KindInfo, ns: &str| {
        (
            kind.stage,
            kind.kind,
            if kind.namespaced {
                ns.to_string()
            } else {
                String::new()
            },
        )
    };
    scopes.insert(scope(configmaps, namespace));
    for object in desired {
        scopes.insert(scope(object.kind, &object.key.namespace));
    }
    let mut listed = list_scopes(cluster, &scopes).await?;

    let inventory_key = ObjectKey {
        group: String::new(),
        kind: "ConfigMap".into(),
        namespace: namespace.to_string(),
        name: inventory::name(env),
    };
    let inventory_cm = match listed.remove(&inventory_key) {
        Some(cm) => Some(cm),
        None => get(cluster, configmaps, inventory_key.clone())
            .await?
            .map(|(_, v)| v),
    };
    let inventory = inventory_cm.as_ref().map(Inventory::from_configmap);

    // Kinds only the inventory mentions (an object type removed from git).
    if let Some(inv) = &inventory {
        let extra: BTreeSet<_> = inv
            .objects
            .iter()
            .filter_map(|k| k.info().map(|info| scope(info, &k.namespace)))
            .filter(|s| !scopes.contains(s))
            .collect();
        listed.extend(list_scopes(cluster, &extra).await?);
    }
    let labelled: BTreeSet<ObjectKey> = listed.keys().cloned().collect();

    // Desired objects the label-selected lists did not return: a GET each
    // when few, else one unselected LIST of their kind (a first sync).
    let missing: Vec<&DesiredObject> = desired
        .iter()
        .filter(|d| !listed.contains_key(&d.key))
        .collect();
    let mut by_scope: BTreeMap<(u8, &'static str, String), Vec<&DesiredObject>> = BTreeMap::new();
    for object in missing {
        by_scope
            .entry(scope(object.kind, &object.key.namespace))
            .or_default()
            .push(object);
    }
    let mut to_get: Vec<&DesiredObject> = Vec::new();
    for (scope, objects) in by_scope {
        if objects.len() <= GET_LIMIT {
            to_get.extend(objects);
            continue;
        }
        let info = objects[0].kind;
        let wanted: BTreeSet<&ObjectKey> = objects.iter().map(|o| &o.key).collect();
        let all = list(cluster, info, scope.2, None).await?;
        listed.extend(all.into_iter().filter(|(k, _)| wanted.contains(k)));
    }
    let found: Vec<Option<(ObjectKey, Value)>> = stream::iter(to_get)
        .map(|d| get(cluster, d.kind, d.key.clone()))
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    listed.extend(found.into_iter().flatten());
    Ok(Live {
        objects: listed,
        labelled,
        inventory,
    })
}

async fn list_scopes(
    cluster: &Cluster,
    scopes: &BTreeSet<(u8, &'static str, String)>,
) -> Result<HashMap<ObjectKey, Value>> {
    let lists: Vec<Vec<(ObjectKey, Value)>> = stream::iter(scopes.iter().cloned())
        .map(|(_, kind, ns)| {
            let info = kinds::KINDS
                .iter()
                .find(|k| k.kind == kind)
                .expect("known kind");
            list(cluster, info, ns, Some(MANAGED_BY))
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(lists.into_iter().flatten().collect())
}
