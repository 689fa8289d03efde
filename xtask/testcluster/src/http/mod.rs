//! The HTTP side: the listener, the request's RequestInfo, one handler per verb,
//! watches, tables, discovery, protobuf bodies and port-forward. Every request is
//! recorded as an audit event.
pub mod discovery;
mod handlers;
mod portforward;
mod protobuf;
mod request_info;
mod response;
pub mod server;
pub mod table;
pub mod watch;

use crate::audit::AuditEvent;
use crate::errors::ApiError;
use crate::state::Cluster;
use axum::body::Bytes;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use request_info::Route;
use std::collections::HashMap;
use std::sync::Arc;

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub async fn handle(
    State(cluster): State<Arc<Cluster>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = Query::try_from_uri(&uri).map(|q| q.0).unwrap_or_default();
    let host = header(&headers, "host").unwrap_or("127.0.0.1").to_string();
    let mut audit = audit_event(&method, &uri, &headers, &query);
    let response = match request_info::route(&method, uri.path(), &query, &host) {
        Route::Json(v) if method == Method::GET => {
            audit.verb = "get".into();
            response::json(200, &v)
        }
        Route::Text(t) if method == Method::GET => {
            audit.verb = "get".into();
            response::text(200, t)
        }
        Route::Json(_) | Route::Text(_) => response::error(&ApiError::method_not_allowed()),
        Route::NotFound => response::error(&ApiError::no_such_path()),
        Route::Resource(info) => {
            audit.resource = info.kind.plural.into();
            audit.api_group = info.kind.group.into();
            audit.subresource = info.subresource.clone();
            audit.namespace = info.namespace.clone();
            audit.name = info.name.clone();
            if let Some(verb) = info.verb {
                audit.verb = verb.as_str().into();
            }
            let req = handlers::Request {
                info,
                query: &query,
                headers: &headers,
                body: &body,
                ws: ws.ok(),
            };
            handlers::handle(&cluster, req, &mut audit)
        }
    };
    audit.code = response.status().as_u16();
    cluster.audit.record(audit);
    response
}

/// The audit event before the route is known; the handlers fill in the rest.
fn audit_event(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> AuditEvent {
    AuditEvent {
        time: crate::store::meta::now(),
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
        patch_type: (*method == Method::PATCH)
            .then(|| header(headers, "content-type").unwrap_or("").to_string()),
        user_agent: header(headers, "user-agent").map(str::to_string),
    }
}
