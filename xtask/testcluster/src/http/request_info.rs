//! What a request asks for, decided once from its method, path and query, as
//! kube-apiserver's RequestInfo does: discovery, or a resource request with its
//! group, version, namespace, resource, name, subresource and verb.
use super::discovery;
use crate::store::resources::{self, ResourceKind};
use axum::http::Method;
use serde_json::Value;
use std::collections::HashMap;

/// The Kubernetes verb of a resource request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
    /// A streaming subresource (`pods/portforward`): GET (WebSocket) or POST (SPDY).
    Connect,
}

impl Verb {
    /// The name the audit log and RBAC use.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::Connect => "create",
        }
    }
}

/// A request for a resource (as opposed to discovery).
pub struct RequestInfo {
    pub kind: &'static ResourceKind,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// `None`: no verb serves this method on this path (405).
    pub verb: Option<Verb>,
}

pub enum Route {
    Json(Value),
    Text(&'static str),
    Resource(RequestInfo),
    NotFound,
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...`.
pub fn route(method: &Method, path: &str, query: &HashMap<String, String>, host: &str) -> Route {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (group, version, rest) = match parts.as_slice() {
        ["version"] => return Route::Json(discovery::version()),
        ["healthz"] | ["livez"] | ["readyz"] => return Route::Text("ok"),
        ["api"] => return Route::Json(discovery::api_versions(host)),
        ["apis"] => return Route::Json(discovery::api_group_list()),
        ["openapi", "v3"] => return Route::Json(discovery::openapi_index()),
        ["openapi", "v3", doc @ ..] => {
            return discovery::openapi_doc(&doc.join("/")).map_or(Route::NotFound, Route::Json);
        }
        ["apis", g] => return discovery::api_group(g).map_or(Route::NotFound, Route::Json),
        ["api", v] => return discovery::resource_list("", v).map_or(Route::NotFound, Route::Json),
        ["apis", g, v] => {
            return discovery::resource_list(g, v).map_or(Route::NotFound, Route::Json);
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Route::NotFound,
    };
    // namespaces/<ns>/<resource>/... unless it is the namespace itself (namespaces/<name>/status).
    let (namespace, rest): (Option<String>, Vec<&str>) = match rest {
        ["namespaces", ns, resource, tail @ ..]
            if *resource != "status" && *resource != "finalize" =>
        {
            let mut r = vec![*resource];
            r.extend_from_slice(tail);
            (Some(ns.to_string()), r)
        }
        other => (None, other.to_vec()),
    };
    match resource_info(group, version, namespace, &rest) {
        Some(mut info) => {
            info.verb = verb(method, &info, query);
            Route::Resource(info)
        }
        None => Route::NotFound,
    }
}

fn resource_info(
    group: &str,
    version: &str,
    namespace: Option<String>,
    rest: &[&str],
) -> Option<RequestInfo> {
    let (plural, tail) = rest.split_first()?;
    let kind = resources::find(group, version, plural)?;
    if kind.namespaced != namespace.is_some() && !(kind.namespaced && tail.is_empty()) {
        return None;
    }
    let (name, subresource) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] if kind.has_subresource(sub) => (Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    Some(RequestInfo {
        kind,
        namespace,
        name,
        subresource,
        verb: None,
    })
}

/// The verb: the method, whether a name is given, and `watch=true`.
fn verb(method: &Method, info: &RequestInfo, query: &HashMap<String, String>) -> Option<Verb> {
    let named = info.name.is_some();
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    if info.subresource.as_deref() == Some("portforward") {
        return matches!(*method, Method::GET | Method::POST).then_some(Verb::Connect);
    }
    if info.subresource.as_deref() == Some("log") {
        return (*method == Method::GET).then_some(Verb::Get);
    }
    Some(match *method {
        Method::GET if !named && watch => Verb::Watch,
        Method::GET if !named => Verb::List,
        Method::GET => Verb::Get,
        Method::POST if !named => Verb::Create,
        Method::PUT if named => Verb::Update,
        Method::PATCH if named => Verb::Patch,
        Method::DELETE if named && info.subresource.is_none() => Verb::Delete,
        Method::DELETE if !named => Verb::DeleteCollection,
        _ => return None,
    })
}
