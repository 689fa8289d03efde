//! Every write (create, update, patch, apply, delete) goes through here: the
//! request's object becomes the stored object after bookkeeping, validation,
//! defaults, generation and managedFields; `dryRun` stops just before storing.
use crate::errors::ApiError;
use crate::store::Store;
use crate::store::meta::{self, drop_nulls, spec_part};
use crate::store::resources::{self, ResourceKind};
use apply::{Applier, managed};

use serde_json::{Value, json};

pub mod apply;
pub mod defaults;
pub mod patch;
pub mod quantity;
pub mod validate;

/// What the request says about how to write.
pub struct WriteCtx<'a> {
    pub manager: String,
    pub dry_run: bool,
    /// `fieldValidation=Strict`.
    pub strict: bool,
    pub force: bool,
    pub subresource: Option<&'a str>,
    pub now: String,
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Op {
    Update,
    Apply,
}

/// uid, creationTimestamp, generation and an empty status for a new object.
pub fn bookkeep_new(kind: &ResourceKind, obj: &mut Value, _manager: &str) {
    let meta = meta::metadata_mut(obj);
    meta.insert("uid".into(), json!(meta::new_uid()));
    meta.insert("creationTimestamp".into(), json!(meta::now()));
    meta.remove("resourceVersion");
    meta.remove("deletionTimestamp");
    if kind.generation {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if kind.has_subresource("status")
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
}

fn namespace_must_exist(store: &Store, kind: &ResourceKind, ns: &str) -> Result<(), ApiError> {
    if kind.namespaced && store.get(resources::namespaces(), "", ns).is_none() {
        return Err(ApiError::namespace_not_found(ns));
    }
    Ok(())
}

/// Checks the object's name and namespace against the request's.
fn check_identity(
    kind: &ResourceKind,
    obj: &mut Value,
    ns: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the request body is not an object"));
    }
    let meta = meta::metadata_mut(obj);
    if kind.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta.insert("namespace".into(), json!(ns));
            }
        }
    } else {
        meta.remove("namespace");
    }
    if let Some(name) = name {
        match meta.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() && n != name => {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
            _ => {
                meta.insert("name".into(), json!(name));
            }
        }
    }
    Ok(())
}

/// Empty labels/annotations/finalizers are absent, as Go's `omitempty` writes them.
fn drop_empty_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.retain(|k, v| {
            let empty = v.as_object().is_some_and(|m| m.is_empty())
                || v.as_array().is_some_and(|a| a.is_empty());
            !(empty
                && matches!(
                    k.as_str(),
                    "labels" | "annotations" | "finalizers" | "ownerReferences"
                ))
        });
    }
}

/// The common tail of every write.
fn commit(
    store: &mut Store,
    kind: &'static ResourceKind,
    old: Option<&Value>,
    mut new: Value,
    op: Op,
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    drop_nulls(&mut new);
    new["apiVersion"] = json!(kind.api_version());
    new["kind"] = json!(kind.kind);
    match old {
        None => bookkeep_new(kind, &mut new, &ctx.manager),
        Some(o) => {
            if ctx.subresource == Some("status") {
                // Only status changes through the status subresource.
                let status = new.get("status").cloned();
                let managed = new["metadata"].get("managedFields").cloned();
                new = o.clone();
                match status {
                    Some(s) => new["status"] = s,
                    None => {
                        new.as_object_mut().expect("object").remove("status");
                    }
                }
                if let Some(m) = managed {
                    new["metadata"]["managedFields"] = m;
                }
            } else if kind.has_subresource("status") {
                // ... and never through the main resource.
                match o.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        new.as_object_mut().expect("object").remove("status");
                    }
                }
            }
            let meta = meta::metadata_mut(&mut new);
            for k in [
                "uid",
                "creationTimestamp",
                "generation",
                "resourceVersion",
                "deletionTimestamp",
            ] {
                match o["metadata"].get(k) {
                    Some(v) => meta.insert(k.into(), v.clone()),
                    None => meta.remove(k),
                };
            }
            if op == Op::Update {
                match o["metadata"].get("managedFields") {
                    Some(v) => meta.insert("managedFields".into(), v.clone()),
                    None => meta.remove("managedFields"),
                };
            }
        }
    }
    crate::write::quantity::normalize(&mut new);
    validate::check(kind, &mut new, ctx.strict, op == Op::Apply)?;
    drop_empty_metadata(&mut new);
    defaults::apply(kind, &mut new, old, store);
    if let Some(o) = old
        && kind.generation
        && spec_part(o) != spec_part(&new)
    {
        let g = o["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        new["metadata"]["generation"] = json!(g);
    }
    if op == Op::Update {
        let api_version = kind.api_version();
        let writer = managed::Writer {
            manager: &ctx.manager,
            subresource: ctx.subresource,
            api_version: &api_version,
            now: &ctx.now,
        };
        managed::record_update(old, &mut new, &writer);
    }
    if old == Some(&new) {
        return Ok((200, new)); // nothing changed: no new resourceVersion, no event
    }
    let code = if old.is_some() { 200 } else { 201 };
    if ctx.dry_run {
        return Ok((code, new));
    }
    Ok((code, store.put(kind, new)))
}

pub fn create(
    store: &mut Store,
    kind: &'static ResourceKind,
    ns: &str,
    mut body: Value,
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    check_identity(kind, &mut body, ns, None)?;
    let meta = meta::metadata_mut(&mut body);
    let name = match meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(n) => n.to_string(),
        None => match meta.get("generateName").and_then(Value::as_str) {
            Some(prefix) => {
                let suffix: String = (0..5)
                    .map(|_| b"bcdfghjklmnpqrstvwxz2456789"[rand::random_range(0..27)] as char)
                    .collect();
                let n = format!("{prefix}{suffix}");
                meta.insert("name".into(), json!(n));
                n
            }
            None => {
                return Err(ApiError::invalid(
                    kind,
                    "",
                    "metadata.name",
                    "Required value: name or generateName is required",
                ));
            }
        },
    };
    namespace_must_exist(store, kind, ns)?;
    if store.get(kind, ns, &name).is_some() {
        return Err(ApiError::already_exists(kind, &name));
    }
    commit(store, kind, None, body, Op::Update, ctx)
}

fn existing(
    store: &Store,
    kind: &'static ResourceKind,
    ns: &str,
    name: &str,
) -> Result<Value, ApiError> {
    store
        .get(kind, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(kind, name))
}

/// Optimistic concurrency: a resourceVersion in the request must be the current one.
fn check_version(
    kind: &ResourceKind,
    name: &str,
    requested: &Value,
    current: &Value,
) -> Result<(), ApiError> {
    match requested["metadata"]["resourceVersion"].as_str() {
        Some(rv)
            if !rv.is_empty() && Some(rv) != current["metadata"]["resourceVersion"].as_str() =>
        {
            Err(ApiError::modified(kind, name))
        }
        _ => Ok(()),
    }
}

pub fn update(
    store: &mut Store,
    kind: &'static ResourceKind,
    ns: &str,
    name: &str,
    mut body: Value,
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    let old = existing(store, kind, ns, name)?;
    if ctx.subresource == Some("scale") {
        check_version(kind, name, &body, &old)?;
        let (code, obj) = set_replicas(store, kind, &old, &body, ctx)?;
        return Ok((code, scale_of(&obj)));
    }
    check_identity(kind, &mut body, ns, Some(name))?;
    check_version(kind, name, &body, &old)?;
    commit(store, kind, Some(&old), body, Op::Update, ctx)
}

fn set_replicas(
    store: &mut Store,
    kind: &'static ResourceKind,
    old: &Value,
    scale: &Value,
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            kind,
            crate::store::name_of(old),
            "spec.replicas",
            "must be greater than or equal to 0",
        ));
    }
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(replicas);
    commit(store, kind, Some(old), new, Op::Update, ctx)
}

/// The autoscaling/v1 Scale view of a Deployment or StatefulSet.
pub fn scale_of(obj: &Value) -> Value {
    let selector: Vec<String> = obj["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                     "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector.join(",")},
    })
}

pub fn patch(
    store: &mut Store,
    kind: &'static ResourceKind,
    ns: &str,
    name: &str,
    content_type: &str,
    body: &[u8],
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media == "application/apply-patch+yaml" {
        return server_side_apply(store, kind, ns, name, body, ctx);
    }
    let patch_doc: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let old = existing(store, kind, ns, name)?;
    let mut target = if ctx.subresource == Some("scale") {
        scale_of(&old)
    } else {
        old.clone()
    };
    match media {
        "application/json-patch+json" => patch::json_patch(&mut target, &patch_doc),
        "application/merge-patch+json" => {
            patch::merge_patch(&mut target, &patch_doc);
            Ok(())
        }
        "application/strategic-merge-patch+json" => patch::strategic_merge(&mut target, &patch_doc),
        other => return Err(ApiError::unsupported_media_type(other)),
    }
    .map_err(|e| ApiError::invalid(kind, name, "patch", &e))?;
    check_version(kind, name, &patch_doc, &old)?;
    if ctx.subresource == Some("scale") {
        let (code, obj) = set_replicas(store, kind, &old, &target, ctx)?;
        return Ok((code, scale_of(&obj)));
    }
    check_identity(kind, &mut target, ns, Some(name))?;
    commit(store, kind, Some(&old), target, Op::Update, ctx)
}

fn server_side_apply(
    store: &mut Store,
    kind: &'static ResourceKind,
    ns: &str,
    name: &str,
    body: &[u8],
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    if ctx.manager.is_empty() {
        return Err(ApiError::bad_request(
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    }
    if ctx.subresource.is_some() {
        return Err(ApiError::bad_request(
            "server-side apply is served on the main resource only",
        ));
    }
    let mut applied: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if applied["kind"].as_str() != Some(kind.kind)
        || applied["apiVersion"].as_str() != Some(&kind.api_version())
    {
        return Err(ApiError::bad_request(format!(
            "the apply configuration is for {}/{}, not {}, Kind={}",
            applied["apiVersion"].as_str().unwrap_or(""),
            applied["kind"].as_str().unwrap_or(""),
            kind.api_version(),
            kind.kind
        )));
    }
    check_identity(kind, &mut applied, ns, Some(name))?;
    drop_nulls(&mut applied);
    // Compared with stored values (conflicts, no-op detection) in stored form.
    crate::write::quantity::normalize(&mut applied);
    let old = store.get(kind, ns, name).cloned();
    if let Some(o) = &old {
        check_version(kind, name, &applied, o)?;
    } else {
        namespace_must_exist(store, kind, ns)?;
    }
    let base = old.clone().unwrap_or_else(|| {
        let mut s = json!({"apiVersion": kind.api_version(), "kind": kind.kind, "metadata": {"name": name}});
        if kind.namespaced {
            s["metadata"]["namespace"] = json!(ns);
        }
        s
    });
    let api_version = kind.api_version();
    let who = Applier {
        manager: &ctx.manager,
        force: ctx.force,
        api_version: &api_version,
        now: &ctx.now,
    };
    let merged = apply::apply(&base, &applied, &who)
        .map_err(|c| ApiError::apply_conflict(kind, name, c.message(), c.causes()))?;
    commit(store, kind, old.as_ref(), merged, Op::Apply, ctx)
}

fn deleted_status(kind: &ResourceKind, obj: &Value) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": obj["metadata"]["name"], "group": kind.group, "kind": kind.plural, "uid": obj["metadata"]["uid"]},
    })
}

pub fn delete(
    store: &mut Store,
    kind: &'static ResourceKind,
    ns: &str,
    name: &str,
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    let obj = existing(store, kind, ns, name)?;
    if kind.kind == "Namespace" {
        // A namespace takes what it holds with it (at once: no Terminating phase lasts).
        let mut answer = obj.clone();
        answer["metadata"]["deletionTimestamp"] = json!(meta::now());
        answer["status"]["phase"] = json!("Terminating");
        if !ctx.dry_run {
            for k in resources::KINDS.iter().filter(|k| k.namespaced) {
                let names: Vec<String> = store
                    .list(k, Some(name))
                    .iter()
                    .map(|o| crate::store::name_of(o).to_string())
                    .collect();
                for n in names {
                    store.remove(k, name, &n);
                }
            }
            store.remove(kind, ns, name);
        }
        return Ok((200, answer));
    }
    if !ctx.dry_run {
        store.remove(kind, ns, name);
    }
    Ok((200, deleted_status(kind, &obj)))
}

/// DELETE on a collection: every (selected) object goes; the answer lists them.
pub fn delete_collection(
    store: &mut Store,
    kind: &'static ResourceKind,
    ns: Option<&str>,
    selected: Vec<Value>,
    ctx: &WriteCtx,
) -> Result<(u16, Value), ApiError> {
    for obj in &selected {
        let _ = ns;
        delete(
            store,
            kind,
            crate::store::namespace_of(obj),
            crate::store::name_of(obj),
            ctx,
        )?;
    }
    Ok((
        200,
        json!({"kind": format!("{}List", kind.kind), "apiVersion": kind.api_version(),
               "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": selected}),
    ))
}
