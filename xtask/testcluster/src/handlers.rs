//! HTTP entry point: reads the path like kube-apiserver's RequestInfo (group,
//! version, namespace, resource, name, subresource), dispatches to discovery,
//! reads, watches or writes, and records an audit event for every request.
use crate::audit::AuditEvent;
use crate::errors::ApiError;
use crate::resources::{self, ResourceKind};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Cluster;
use crate::watch::{self, WatchRequest};
use crate::writes::{self, WriteCtx};
use crate::{discovery, table};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// A request for a resource (as opposed to discovery).
struct ResourceRequest {
    kind: &'static ResourceKind,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

enum Route {
    Json(Value),
    Text(&'static str),
    Resource(ResourceRequest),
    NotFound,
}

fn json_response(code: u16, body: &Value) -> Response {
    bytes_response(code, serde_json::to_vec(body).unwrap_or_default())
}

fn bytes_response(code: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a valid response")
}

/// A `<Kind>List` body, fields in kube-apiserver's order.
fn list_body(kind: &ResourceKind, rv: &str, items: &[&Value]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ListMeta<'a> {
        resource_version: &'a str,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct List<'a> {
        kind: String,
        api_version: String,
        metadata: ListMeta<'a>,
        items: &'a [&'a Value],
    }
    serde_json::to_vec(&List {
        kind: format!("{}List", kind.kind),
        api_version: kind.api_version(),
        metadata: ListMeta {
            resource_version: rv,
        },
        items,
    })
    .unwrap_or_default()
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code, &e.status())
}

/// Parses `/api/v1/...` and `/apis/<group>/<version>/...`.
fn route(path: &str, host: &str) -> Route {
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
    let (namespace, rest): (Option<String>, &[&str]) = match rest {
        ["namespaces", ns, resource, tail @ ..]
            if *resource != "status" && *resource != "finalize" =>
        {
            let mut r = vec![*resource];
            r.extend_from_slice(tail);
            return resource_route(group, version, Some(ns.to_string()), &r);
        }
        other => (None, other),
    };
    resource_route(group, version, namespace, rest)
}

fn resource_route(group: &str, version: &str, namespace: Option<String>, rest: &[&str]) -> Route {
    let Some((plural, tail)) = rest.split_first() else {
        return Route::NotFound;
    };
    let Some(kind) = resources::find(group, version, plural) else {
        return Route::NotFound;
    };
    if kind.namespaced != namespace.is_some() && !(kind.namespaced && tail.is_empty()) {
        return Route::NotFound;
    }
    let (name, subresource) = match tail {
        [] => (None, None),
        [name] => (Some(name.to_string()), None),
        [name, sub] if kind.has_subresource(sub) => (Some(name.to_string()), Some(sub.to_string())),
        _ => return Route::NotFound,
    };
    Route::Resource(ResourceRequest {
        kind,
        namespace,
        name,
        subresource,
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn handle(
    State(cluster): State<Arc<Cluster>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = Query::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let host = header(&headers, "host").unwrap_or("127.0.0.1").to_string();
    let mut audit = AuditEvent {
        time: crate::meta::now(),
        verb: method.as_str().to_lowercase(),
        resource: String::new(),
        api_group: String::new(),
        subresource: None,
        namespace: None,
        name: None,
        dry_run: query.get("dryRun").is_some_and(|v| v == "All"),
        code: 0,
        method: method.to_string(),
        request_uri: uri.to_string(),
        field_manager: query.get("fieldManager").cloned(),
        patch_type: (method == Method::PATCH)
            .then(|| header(&headers, "content-type").unwrap_or("").to_string()),
        user_agent: header(&headers, "user-agent").map(str::to_string),
    };
    let response = match route(uri.path(), &host) {
        Route::Json(v) if method == Method::GET => {
            audit.verb = "get".into();
            json_response(200, &v)
        }
        Route::Text(t) if method == Method::GET => {
            audit.verb = "get".into();
            Response::builder()
                .status(200)
                .body(Body::from(t))
                .expect("a valid response")
        }
        Route::Json(_) | Route::Text(_) => error_response(&ApiError::method_not_allowed()),
        Route::NotFound => error_response(&ApiError::no_such_path()),
        Route::Resource(req) => {
            audit.resource = req.kind.plural.into();
            audit.api_group = req.kind.group.into();
            audit.subresource = req.subresource.clone();
            audit.namespace = req.namespace.clone();
            audit.name = req.name.clone();
            resource(&cluster, &method, req, &query, &headers, &body, &mut audit)
        }
    };
    audit.code = response.status().as_u16();
    cluster.audit.record(audit);
    response
}

fn wants_table(headers: &HeaderMap) -> bool {
    header(headers, "accept").is_some_and(|a| a.contains("as=Table"))
}

fn resource(
    cluster: &Arc<Cluster>,
    method: &Method,
    req: ResourceRequest,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
    audit: &mut AuditEvent,
) -> Response {
    let kind = req.kind;
    let ns = req.namespace.clone().unwrap_or_default();
    let name = req.name.as_deref();
    let sub = req.subresource.as_deref();
    let user_agent = header(headers, "user-agent").unwrap_or("");
    // kube-apiserver's default manager: the user agent up to its first '/'.
    let default_manager = user_agent.split('/').next().unwrap_or("").to_string();
    let manager = query
        .get("fieldManager")
        .cloned()
        .unwrap_or(default_manager);
    let is_apply =
        header(headers, "content-type").is_some_and(|c| c.starts_with("application/apply-patch"));
    if *method == Method::DELETE {
        // kubectl sends DeleteOptions in the body: {"dryRun": ["All"], ...}.
        let options: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        if options["dryRun"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "All"))
        {
            audit.dry_run = true;
        }
    }
    let ctx = WriteCtx {
        manager: if is_apply {
            query.get("fieldManager").map(String::as_str).unwrap_or("")
        } else {
            &manager
        },
        dry_run: audit.dry_run,
        strict: query.get("fieldValidation").is_some_and(|v| v == "Strict"),
        force: query.get("force").is_some_and(|v| v == "true"),
        subresource: sub,
        now: crate::meta::now(),
    };
    let selectors = || -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(
            query.get("fieldSelector").map_or("", String::as_str),
            kind.kind,
        )
        .map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    };
    let parse_body = || -> Result<Value, ApiError> {
        let ct = header(headers, "content-type").unwrap_or("application/json");
        if ct.contains("protobuf") || ct.contains("cbor") {
            // client-go answers a 415 by switching to JSON.
            return Err(ApiError::unsupported_media_type(ct));
        }
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding the request body: {e}")))
    };
    let result: Result<(u16, Value), ApiError> = match (method.clone(), name) {
        (Method::GET, None) => {
            let (labels, fields) = match selectors() {
                Ok(s) => s,
                Err(e) => return error_response(&e),
            };
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                audit.verb = "watch".into();
                let since = query
                    .get("resourceVersion")
                    .and_then(|rv| rv.parse::<u64>().ok())
                    .filter(|rv| *rv != 0);
                let timeout = query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse().ok())
                    .map(Duration::from_secs);
                return watch::serve(
                    cluster.clone(),
                    WatchRequest {
                        kind,
                        namespace: req.namespace.clone(),
                        labels,
                        fields,
                        since,
                        timeout,
                        initial_events_bookmark: query
                            .get("sendInitialEvents")
                            .is_some_and(|v| v == "true"),
                        table: wants_table(headers),
                    },
                );
            }
            audit.verb = "list".into();
            let store = cluster.store();
            let items: Vec<&Value> = store
                .list(kind, req.namespace.as_deref())
                .into_iter()
                .filter(|o| labels.matches(o) && fields.matches(o))
                .collect();
            let rv = store.resource_version().to_string();
            if wants_table(headers) {
                let items: Vec<Value> = items.into_iter().cloned().collect();
                Ok((200, table::table(kind, &items, &rv)))
            } else {
                // Written straight from the store: a large list is not copied first.
                let body = list_body(kind, &rv, &items);
                drop(store);
                return bytes_response(200, body);
            }
        }
        (Method::GET, Some(name)) => {
            audit.verb = "get".into();
            let store = cluster.store();
            match store.get(kind, &ns, name) {
                None => Err(ApiError::not_found(kind, name)),
                Some(obj) if sub == Some("scale") => Ok((200, writes::scale_of(obj))),
                Some(obj) if wants_table(headers) => Ok((
                    200,
                    table::table(
                        kind,
                        std::slice::from_ref(obj),
                        &store.resource_version().to_string(),
                    ),
                )),
                Some(obj) => Ok((200, obj.clone())),
            }
        }
        (Method::POST, None) => {
            audit.verb = "create".into();
            parse_body().and_then(|b| writes::create(&mut cluster.store(), kind, &ns, b, &ctx))
        }
        (Method::PUT, Some(name)) => {
            audit.verb = "update".into();
            parse_body()
                .and_then(|b| writes::update(&mut cluster.store(), kind, &ns, name, b, &ctx))
        }
        (Method::PATCH, Some(name)) => {
            audit.verb = "patch".into();
            let ct = header(headers, "content-type").unwrap_or("");
            writes::patch(&mut cluster.store(), kind, &ns, name, ct, body, &ctx)
        }
        (Method::DELETE, Some(name)) if sub.is_none() => {
            audit.verb = "delete".into();
            writes::delete(&mut cluster.store(), kind, &ns, name, &ctx)
        }
        (Method::DELETE, None) => {
            audit.verb = "deletecollection".into();
            selectors().and_then(|(labels, fields)| {
                let mut store = cluster.store();
                let selected: Vec<Value> = store
                    .list(kind, req.namespace.as_deref())
                    .into_iter()
                    .filter(|o| labels.matches(o) && fields.matches(o))
                    .cloned()
                    .collect();
                writes::delete_collection(
                    &mut store,
                    kind,
                    req.namespace.as_deref(),
                    selected,
                    &ctx,
                )
            })
        }
        _ => Err(ApiError::method_not_allowed()),
    };
    match result {
        Ok((code, v)) => json_response(code, &v),
        Err(e) => error_response(&e),
    }
}
