//! Field sets: which fields of an object a manager owns, as paths, and their
//! `fieldsV1` encoding (`{"f:spec":{"f:replicas":{}}}`).
//!
//! Lists are atomic (one leaf) unless the list-key table below knows their keys;
//! keyed list items are addressed `k:{"name":"web"}` and are members themselves
//! (the `"."` entry), as in structured-merge-diff.
use serde_json::{Map, Value};
use std::collections::BTreeSet;

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub enum Element {
    /// A map field: `f:name`.
    Field(String),
    /// A keyed list item: `k:{"name":"web"}` (compact JSON, keys sorted).
    Key(String),
}

pub type Path = Vec<Element>;

/// Keys of the associative lists of the kinds served (the `x-kubernetes-list-map-keys`
/// of the Kubernetes schema); every other list is atomic.
pub fn list_keys(field: &str, items: &[Value]) -> Option<&'static [&'static str]> {
    let keys: &'static [&'static str] = match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims" => &["name"],
        "ports" if items.iter().all(|i| i.get("containerPort").is_some()) => {
            &["containerPort", "protocol"]
        }
        "ports"
            if items
                .iter()
                .all(|i| i.get("port").is_some() && i.get("endPort").is_none()) =>
        {
            &["port", "protocol"]
        }
        "volumeMounts" => &["mountPath"],
        "volumeDevices" => &["devicePath"],
        "conditions" => &["type"],
        "hostAliases" => &["ip"],
        "topologySpreadConstraints" => &["topologyKey", "whenUnsatisfiable"],
        "ownerReferences" => &["uid"],
        _ => return None,
    };
    let first = keys[0];
    let ok = !items.is_empty()
        && items
            .iter()
            .all(|i| i.is_object() && i.get(first).is_some());
    ok.then_some(keys)
}

/// The key of a list item: compact JSON of its key fields (protocol defaults to TCP,
/// as the server defaults it before keys are compared).
pub fn item_key(keys: &[&str], item: &Value) -> String {
    let mut m = Map::new();
    for k in keys {
        match item.get(*k) {
            Some(v) => {
                m.insert(k.to_string(), v.clone());
            }
            None if *k == "protocol" => {
                m.insert(k.to_string(), Value::String("TCP".into()));
            }
            None => {}
        }
    }
    Value::Object(m).to_string()
}

/// Which part of an object a write may own: the main resource or its status.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    Main,
    Status,
}

/// Metadata fields a client can own (the rest is the server's bookkeeping).
const OWNABLE_METADATA: &[&str] = &[
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "generateName",
];

#[derive(Clone, Default, PartialEq, Debug)]
pub struct FieldSet(pub BTreeSet<Path>);

impl FieldSet {
    /// Every leaf and keyed list item of an object within `scope`.
    pub fn from_object(obj: &Value, scope: Scope) -> FieldSet {
        let mut out = BTreeSet::new();
        if let Some(m) = obj.as_object() {
            for (k, v) in m {
                let f = vec![Element::Field(k.clone())];
                match (scope, k.as_str()) {
                    (Scope::Main, "metadata") => {
                        if let Some(meta) = v.as_object() {
                            for (mk, mv) in meta
                                .iter()
                                .filter(|(mk, _)| OWNABLE_METADATA.contains(&mk.as_str()))
                            {
                                walk(
                                    mv,
                                    &[f.clone(), vec![Element::Field(mk.clone())]].concat(),
                                    mk,
                                    &mut out,
                                );
                            }
                        }
                    }
                    (Scope::Main, "apiVersion" | "kind" | "status") => {}
                    (Scope::Main, _) => walk(v, &f, k, &mut out),
                    (Scope::Status, "status") => walk(v, &f, k, &mut out),
                    (Scope::Status, _) => {}
                }
            }
        }
        FieldSet(out)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, p: &Path) -> bool {
        self.0.contains(p)
    }

    /// Does this set hold `p` or a path below it?
    pub fn owns_within(&self, p: &Path) -> bool {
        self.0
            .range(p.clone()..)
            .next()
            .is_some_and(|q| q.starts_with(p))
    }

    /// Removes `p` and everything below it.
    pub fn remove_within(&mut self, p: &Path) {
        self.0.retain(|q| !q.starts_with(p));
    }

    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.0 {
            let mut node = &mut root;
            for el in path {
                let key = match el {
                    Element::Field(f) => format!("f:{f}"),
                    Element::Key(k) => format!("k:{k}"),
                };
                node = node
                    .entry(key)
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()
                    .expect("fieldsV1 nodes are objects");
            }
            node.insert(".".to_string(), Value::Object(Map::new()));
        }
        // A member with no children is written `{}`, not `{".":{}}`.
        fn tidy(m: &mut Map<String, Value>) {
            for v in m.values_mut() {
                if let Some(child) = v.as_object_mut() {
                    if child.len() == 1 && child.contains_key(".") {
                        child.clear();
                    } else {
                        tidy(child);
                    }
                }
            }
        }
        tidy(&mut root);
        Value::Object(root)
    }

    pub fn from_fields_v1(v: &Value) -> FieldSet {
        fn read(m: &Map<String, Value>, path: &Path, out: &mut BTreeSet<Path>) {
            for (k, child) in m {
                if k == "." {
                    out.insert(path.clone());
                    continue;
                }
                let el = if let Some(f) = k.strip_prefix("f:") {
                    Element::Field(f.to_string())
                } else if let Some(key) = k.strip_prefix("k:") {
                    Element::Key(key.to_string())
                } else {
                    continue; // v: and i: elements are not produced by this server
                };
                let p = [path.clone(), vec![el]].concat();
                match child.as_object() {
                    Some(c) if !c.is_empty() => read(c, &p, out),
                    _ => {
                        out.insert(p);
                    }
                }
            }
        }
        let mut out = BTreeSet::new();
        if let Some(m) = v.as_object() {
            read(m, &Vec::new(), &mut out);
        }
        FieldSet(out)
    }
}

fn walk(v: &Value, path: &Path, field: &str, out: &mut BTreeSet<Path>) {
    match v {
        Value::Object(m) if m.is_empty() => {
            out.insert(path.clone());
        }
        Value::Object(m) => {
            for (k, c) in m {
                walk(
                    c,
                    &[path.clone(), vec![Element::Field(k.clone())]].concat(),
                    k,
                    out,
                );
            }
        }
        Value::Array(items) => match list_keys(field, items) {
            Some(keys) => {
                for item in items {
                    let p = [path.clone(), vec![Element::Key(item_key(keys, item))]].concat();
                    out.insert(p.clone());
                    if let Some(m) = item.as_object() {
                        for (k, c) in m {
                            walk(
                                c,
                                &[p.clone(), vec![Element::Field(k.clone())]].concat(),
                                k,
                                out,
                            );
                        }
                    }
                }
            }
            None => {
                out.insert(path.clone());
            }
        },
        Value::Null => {}
        _ => {
            out.insert(path.clone());
        }
    }
}

/// `.spec.template.spec.containers[name="web"].image`, as conflict messages print paths.
pub fn display(path: &Path) -> String {
    let mut s = String::new();
    for el in path {
        match el {
            Element::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Element::Key(k) => {
                let m: Map<String, Value> = serde_json::from_str(k).unwrap_or_default();
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                s.push('[');
                s.push_str(&parts.join(","));
                s.push(']');
            }
        }
    }
    s
}

/// The list item (index) of `items` under `field` with key `key`.
fn find_item(field: &str, items: &[Value], key: &str) -> Option<usize> {
    let keys = list_keys(field, items)?;
    items.iter().position(|i| item_key(keys, i) == key)
}

/// The value at `path`, if present.
pub fn get<'a>(obj: &'a Value, path: &Path) -> Option<&'a Value> {
    let mut cur = obj;
    let mut field = "";
    for el in path {
        cur = match el {
            Element::Field(f) => {
                field = f;
                cur.get(f.as_str())?
            }
            Element::Key(k) => {
                let items = cur.as_array()?;
                &items[find_item(field, items, k)?]
            }
        };
    }
    Some(cur)
}

/// Removes the value at `path` (a field or a list item); true if something was removed.
pub fn remove(obj: &mut Value, path: &Path) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let parent_field = match parent_path.last() {
        Some(Element::Field(f)) => f.clone(),
        _ => String::new(),
    };
    let Some(parent) = get_mut(obj, parent_path) else {
        return false;
    };
    match last {
        Element::Field(f) => parent
            .as_object_mut()
            .is_some_and(|m| m.remove(f).is_some()),
        Element::Key(k) => match parent.as_array_mut() {
            Some(items) => match find_item(&parent_field, items, k) {
                Some(i) => {
                    items.remove(i);
                    true
                }
                None => false,
            },
            None => false,
        },
    }
}

pub fn get_mut<'a>(obj: &'a mut Value, path: &[Element]) -> Option<&'a mut Value> {
    let mut cur = obj;
    let mut field = String::new();
    for el in path {
        cur = match el {
            Element::Field(f) => {
                field = f.clone();
                cur.get_mut(f.as_str())?
            }
            Element::Key(k) => {
                let i = find_item(&field, cur.as_array()?, k)?;
                &mut cur.as_array_mut()?[i]
            }
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "micro", "labels": {"app": "web"}, "uid": "x"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:1", "ports": [{"containerPort": 8080}]}
            ]}}},
            "status": {"replicas": 2}
        })
    }

    #[test]
    fn fields_v1_looks_like_the_real_servers() {
        let set = FieldSet::from_object(&deployment(), Scope::Main);
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {}, "f:ports": {
                        "k:{\"containerPort\":8080,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}
                    }}
                }}}}
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()), set);
    }

    #[test]
    fn paths_find_and_remove_list_items() {
        let mut d = deployment();
        let set = FieldSet::from_object(&d, Scope::Main);
        let image = set
            .0
            .iter()
            .find(|p| display(p).ends_with(".image"))
            .unwrap()
            .clone();
        assert_eq!(
            display(&image),
            ".spec.template.spec.containers[name=\"web\"].image"
        );
        assert_eq!(get(&d, &image), Some(&json!("web:1")));
        assert!(remove(&mut d, &image));
        assert_eq!(get(&d, &image), None);
        let item = image[..image.len() - 1].to_vec();
        assert!(remove(&mut d, &item));
        assert_eq!(d["spec"]["template"]["spec"]["containers"], json!([]));
    }

    #[test]
    fn status_scope_only_sees_status() {
        let set = FieldSet::from_object(&deployment(), Scope::Status);
        assert_eq!(set.to_fields_v1(), json!({"f:status": {"f:replicas": {}}}));
    }
}
