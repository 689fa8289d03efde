//! Discovery: `/version`, the legacy group and resource lists, and the small
//! OpenAPI v3 documents kubectl reads to learn which query parameters
//! (`fieldValidation`, `dryRun`) each kind's PATCH takes.
use crate::store::resources::{self, ResourceKind};
use serde_json::{Value, json};

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0", "gitCommit": "testcluster",
        "gitTreeState": "clean", "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.3",
        "compiler": "gc", "platform": "linux/amd64"
    })
}

pub fn api_versions(server: &str) -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]})
}

fn group(name: &str) -> Value {
    let gv = json!({"groupVersion": format!("{name}/v1"), "version": "v1"});
    json!({"name": name, "versions": [gv.clone()], "preferredVersion": gv})
}

pub fn api_group_list() -> Value {
    let groups: Vec<Value> = resources::groups()
        .into_iter()
        .filter(|g| !g.is_empty())
        .map(group)
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(name: &str) -> Option<Value> {
    if name.is_empty() || !resources::groups().contains(&name) {
        return None;
    }
    let mut g = group(name);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn resource_entries(k: &ResourceKind) -> Vec<Value> {
    let mut out = vec![json!({
        "name": k.plural, "singularName": k.singular, "namespaced": k.namespaced, "kind": k.kind,
        "verbs": VERBS, "shortNames": k.short_names, "categories": k.categories,
    })];
    for sub in k.subresources {
        let mut e = json!({"name": format!("{}/{sub}", k.plural), "singularName": "", "namespaced": k.namespaced,
                           "kind": k.kind, "verbs": ["get", "patch", "update"]});
        if *sub == "log" {
            e["verbs"] = json!(["get"]);
        }
        if *sub == "portforward" {
            e["kind"] = json!("PodPortForwardOptions");
            e["verbs"] = json!(["create", "get"]);
        }
        if *sub == "scale" {
            e["group"] = json!("autoscaling");
            e["version"] = json!("v1");
            e["kind"] = json!("Scale");
        }
        out.push(e);
    }
    out
}

pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let kinds = resources::in_group_version(group, version);
    if kinds.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let list: Vec<Value> = kinds.into_iter().flat_map(resource_entries).collect();
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    )
}

/// `api/v1`, `apis/apps/v1`, ...: the OpenAPI v3 documents served.
fn openapi_paths() -> Vec<(String, &'static str, &'static str)> {
    let mut out: Vec<(String, &'static str, &'static str)> = Vec::new();
    for k in resources::KINDS {
        let p = if k.group.is_empty() {
            format!("api/{}", k.version)
        } else {
            format!("apis/{}/{}", k.group, k.version)
        };
        if !out.iter().any(|(x, _, _)| *x == p) {
            out.push((p, k.group, k.version));
        }
    }
    out
}

pub fn openapi_index() -> Value {
    let mut paths = serde_json::Map::new();
    for (p, _, _) in openapi_paths() {
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=testcluster1")}),
        );
    }
    json!({"paths": paths})
}

fn query_param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(k: &ResourceKind, action: &str, params: &[&str]) -> Value {
    let op_name = format!("{action}{}", k.kind);
    json!({
        "operationId": op_name,
        "parameters": params.iter().map(|p| query_param(p)).collect::<Vec<_>>(),
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": k.group, "version": k.version, "kind": k.kind},
    })
}

/// The document of one group-version, or None if it is not served.
pub fn openapi_doc(path: &str) -> Option<Value> {
    let (_, group, version) = openapi_paths().into_iter().find(|(p, _, _)| p == path)?;
    let mut paths = serde_json::Map::new();
    for k in resources::in_group_version(group, version) {
        let base = if k.namespaced {
            format!("/{path}/namespaces/{{namespace}}/{}", k.plural)
        } else {
            format!("/{path}/{}", k.plural)
        };
        let writes = ["dryRun", "fieldManager", "fieldValidation", "pretty"];
        paths.insert(
            base.clone(),
            json!({
                "get": operation(k, "list", &["labelSelector", "fieldSelector", "resourceVersion", "watch", "limit", "continue"]),
                "post": operation(k, "post", &writes),
                "delete": operation(k, "deletecollection", &["dryRun", "labelSelector", "fieldSelector"]),
            }),
        );
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "get": operation(k, "get", &["pretty"]),
                "put": operation(k, "put", &writes),
                "patch": operation(k, "patch", &["dryRun", "fieldManager", "fieldValidation", "force", "pretty"]),
                "delete": operation(k, "delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
