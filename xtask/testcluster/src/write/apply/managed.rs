//! `metadata.managedFields`: one entry per (manager, operation, subresource), and
//! how an Update (create, replace, patch) moves ownership of the fields it changed.
use super::fieldset::{FieldSet, Path, Scope, get};
use serde_json::{Value, json};

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    pub fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// How kube-apiserver's conflict messages name a manager: `"sync"` for an
    /// applier, `"kubectl" using apps/v1 at <time>` for an updater.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {} at {}", self.api_version, self.time));
        }
        s
    }
}

pub fn read(obj: &Value) -> Vec<Entry> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or("").to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or("").to_string(),
                    time: e["time"].as_str().unwrap_or("").to_string(),
                    subresource: e["subresource"].as_str().map(str::to_string),
                    fields: FieldSet::from_fields_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Stores the entries (those owning nothing are dropped, as the real server does).
pub fn write(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.fields.to_fields_v1(),
            });
            if let Some(sub) = &e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    let meta = crate::store::meta::metadata_mut(obj);
    if list.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(list));
    }
}

/// Who made a non-apply write.
pub struct Writer<'a> {
    pub manager: &'a str,
    pub subresource: Option<&'a str>,
    pub api_version: &'a str,
    pub now: &'a str,
}

/// An Update by `writer` turned `old` (None: create) into `new`: the writer owns
/// what it changed, other managers lose it, and removed fields belong to nobody.
pub fn record_update(old: Option<&Value>, new: &mut Value, writer: &Writer) {
    let scope = if writer.subresource == Some("status") {
        Scope::Status
    } else {
        Scope::Main
    };
    let mut entries = old.map(read).unwrap_or_default();
    let after = FieldSet::from_object(new, scope);
    let before = old
        .map(|o| FieldSet::from_object(o, scope))
        .unwrap_or_default();
    let changed: Vec<&Path> = after
        .0
        .iter()
        .filter(|p| match old {
            None => true,
            Some(o) => {
                let was = get(o, p);
                // A keyed list item is "changed" only when it is new; its fields speak for themselves.
                let is_item = matches!(p.last(), Some(super::fieldset::Element::Key(_)));
                if is_item {
                    was.is_none()
                } else {
                    was != get(new, p)
                }
            }
        })
        .collect();
    let removed: Vec<&Path> = before.0.iter().filter(|p| !after.contains(p)).collect();
    if changed.is_empty() && removed.is_empty() {
        return;
    }
    for e in entries.iter_mut() {
        for p in &removed {
            e.fields.remove_within(p);
        }
        if !e.is(writer.manager, "Update", writer.subresource) {
            for p in &changed {
                e.fields.0.remove(*p);
            }
        }
    }
    let idx = match entries
        .iter()
        .position(|e| e.is(writer.manager, "Update", writer.subresource))
    {
        Some(i) => i,
        None => {
            entries.push(Entry {
                manager: writer.manager.to_string(),
                operation: "Update".to_string(),
                api_version: writer.api_version.to_string(),
                time: writer.now.to_string(),
                subresource: writer.subresource.map(str::to_string),
                fields: FieldSet::default(),
            });
            entries.len() - 1
        }
    };
    let me = &mut entries[idx];
    if !changed.is_empty() {
        me.time = writer.now.to_string();
        me.api_version = writer.api_version.to_string();
    }
    me.fields.0.extend(changed.into_iter().cloned());
    write(new, &entries);
}
