//! Server-side apply: merge a manager's applied configuration into the live
//! object, refuse to change fields another manager owns unless forced, remove the
//! fields the manager stopped applying when nobody else owns them, and record the
//! manager's field set in `managedFields`.
pub mod fieldset;
pub mod managed;
pub mod merge;

use fieldset::{FieldSet, Path, Scope, display, get, remove};
use managed::Entry;
use serde_json::{Value, json};

/// Who applies, and how.
pub struct Applier<'a> {
    pub manager: &'a str,
    pub force: bool,
    pub api_version: &'a str,
    pub now: &'a str,
}

/// Fields another manager owns that the applied configuration would change.
#[derive(Debug)]
pub struct Conflicts(pub Vec<(String, Path)>);

impl Conflicts {
    /// kube-apiserver's message: `Apply failed with 1 conflict: conflict with "sync": .spec.replicas`.
    pub fn message(&self) -> String {
        if let [(m, p)] = self.0.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {m}: {}",
                display(p)
            );
        }
        let mut managers: Vec<&String> = self.0.iter().map(|(m, _)| m).collect();
        managers.sort();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for (_, p) in self.0.iter().filter(|(x, _)| x == m) {
                lines.push(format!("- {}", display(p)));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }

    pub fn causes(&self) -> Value {
        Value::Array(
            self.0
                .iter()
                .map(|(m, p)| json!({"type": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": display(p)}))
                .collect(),
        )
    }
}

/// Applies `applied` onto `live` (the stored object, or a skeleton for a new one)
/// and returns the result with updated `managedFields`.
pub fn apply(live: &Value, applied: &Value, who: &Applier) -> Result<Value, Conflicts> {
    let mut entries = managed::read(live);
    let new_set = FieldSet::from_object(applied, Scope::Main);
    let mine = |e: &Entry| e.is(who.manager, "Apply", None);
    let old_set = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();

    // Conflicts: a leaf another manager owns whose value would change.
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !mine(e)) {
        for p in new_set.0.iter().filter(|p| e.fields.contains(p)) {
            let is_item = matches!(p.last(), Some(fieldset::Element::Key(_)));
            if is_item {
                continue;
            }
            if let Some(current) = get(live, p)
                && Some(current) != get(applied, p)
            {
                conflicts.push((e.describe(), p.clone()));
            }
        }
    }
    if !conflicts.is_empty() {
        if !who.force {
            return Err(Conflicts(conflicts));
        }
        // Forced: the conflicting fields change hands; equal shared fields stay co-owned.
        for e in entries.iter_mut().filter(|e| !mine(e)) {
            let who = e.describe();
            for (_, p) in conflicts.iter().filter(|(m, _)| *m == who) {
                e.fields.0.remove(p);
            }
        }
    }

    let mut result = live.clone();
    let mut to_merge = applied.clone();
    strip_bookkeeping(&mut to_merge);
    merge::merge(&mut result, &to_merge, "");

    // Fields this manager applied before and no longer does: gone, unless another
    // manager owns them (or something below them).
    let mut dropped: Vec<&Path> = old_set.0.iter().filter(|p| !new_set.contains(p)).collect();
    // Shortest first: a dropped list item goes whole, before its fields are looked at.
    dropped.sort_by_key(|p| p.len());
    for p in dropped {
        let owned_elsewhere = entries
            .iter()
            .filter(|e| !mine(e))
            .any(|e| e.fields.owns_within(p));
        if !owned_elsewhere && !new_set.owns_within(p) && remove(&mut result, p) {
            prune_empty_parents(&mut result, p, &entries, &new_set);
        }
    }

    match entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            if e.fields != new_set {
                e.fields = new_set;
                e.time = who.now.to_string();
                e.api_version = who.api_version.to_string();
            }
        }
        None => entries.push(Entry {
            manager: who.manager.to_string(),
            operation: "Apply".to_string(),
            api_version: who.api_version.to_string(),
            time: who.now.to_string(),
            subresource: None,
            fields: new_set,
        }),
    }
    managed::write(&mut result, &entries);
    Ok(result)
}

/// Server-owned metadata in an applied configuration is ignored.
fn strip_bookkeeping(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "managedFields",
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "selfLink",
            "deletionTimestamp",
        ] {
            meta.remove(k);
        }
    }
    if let Some(m) = obj.as_object_mut() {
        m.remove("status");
    }
}

/// After removing `path`, maps left empty along it go too (when nobody owns them),
/// so that dropping the last label does not leave `labels: {}` behind.
fn prune_empty_parents(obj: &mut Value, path: &Path, entries: &[Entry], new_set: &FieldSet) {
    for len in (2..path.len()).rev() {
        let parent: Path = path[..len].to_vec();
        let empty = get(obj, &parent).is_some_and(|v| {
            v.as_object().is_some_and(|m| m.is_empty())
                || v.as_array().is_some_and(|a| a.is_empty())
        });
        let owned = new_set.contains(&parent) || entries.iter().any(|e| e.fields.contains(&parent));
        if !empty || owned || !remove(obj, &parent) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(manager: &str, force: bool) -> Applier<'_> {
        Applier {
            manager,
            force,
            api_version: "apps/v1",
            now: "2026-01-01T00:00:00Z",
        }
    }

    fn skeleton() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "micro"}})
    }

    fn config(replicas: i64, labels: Value) -> Value {
        let mut c = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": labels},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": "web:1"}]}}}});
        if c["metadata"]["labels"] == json!({}) {
            c["metadata"].as_object_mut().unwrap().remove("labels");
        }
        c
    }

    #[test]
    fn managed_fields_record_the_appliers_fields() {
        let out = apply(
            &skeleton(),
            &config(2, json!({"app": "web"})),
            &who("sync", false),
        )
        .unwrap();
        let mf = &out["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "sync");
        assert_eq!(mf["operation"], "Apply");
        assert_eq!(mf["fieldsType"], "FieldsV1");
        assert_eq!(mf["fieldsV1"]["f:spec"]["f:replicas"], json!({}));
        assert_eq!(out["spec"]["replicas"], 2);
    }

    #[test]
    fn another_manager_conflicts_unless_forced() {
        let live = apply(
            &skeleton(),
            &config(2, json!({"app": "web"})),
            &who("sync", false),
        )
        .unwrap();
        let err = apply(
            &live,
            &config(3, json!({"app": "web"})),
            &who("other", false),
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Apply failed with 1 conflict: conflict with \"sync\": .spec.replicas"
        );
        // Same value: no conflict, shared ownership.
        assert!(
            apply(
                &live,
                &config(2, json!({"app": "web"})),
                &who("other", false)
            )
            .is_ok()
        );
        let forced = apply(
            &live,
            &config(3, json!({"app": "web"})),
            &who("other", true),
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let entries = managed::read(&forced);
        let sync = entries.iter().find(|e| e.manager == "sync").unwrap();
        assert!(!sync.fields.0.iter().any(|p| display(p) == ".spec.replicas"));
    }

    #[test]
    fn dropped_fields_are_removed_unless_someone_else_owns_them() {
        let live = apply(
            &skeleton(),
            &config(2, json!({"app": "web", "tier": "front"})),
            &who("sync", false),
        )
        .unwrap();
        let live = apply(
            &live,
            &config(2, json!({"tier": "front"})),
            &who("other", false),
        )
        .unwrap();
        let out = apply(&live, &config(2, json!({})), &who("sync", false)).unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"tier": "front"}));
        let out = apply(&out, &config(2, json!({})), &who("other", false)).unwrap();
        assert!(out["metadata"].get("labels").is_none(), "{out}");
    }
}
