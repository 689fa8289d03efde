//! One handler per verb. The verb was decided once (`request_info`); this module
//! holds what several verbs read from the request: the write context, the
//! selectors and the decoded body.
mod create;
mod delete;
mod get;
mod list;
mod log;
mod patch;
mod update;

use super::header;
use super::request_info::{RequestInfo, Verb};
use super::{portforward, protobuf, response};
use crate::audit::AuditEvent;
use crate::errors::ApiError;
use crate::state::Cluster;
use crate::store::selectors::{FieldSelector, LabelSelector};
use crate::write::WriteCtx;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A resource request with everything a handler reads.
pub struct Request<'a> {
    pub info: RequestInfo,
    pub query: &'a HashMap<String, String>,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
    /// The WebSocket upgrade, when the request asks for one.
    pub ws: Option<WebSocketUpgrade>,
}

/// What a handler answers: an object with its code, or a ready response (lists, watches).
pub enum Answer {
    Object(u16, Value),
    Response(Response),
}

pub fn handle(cluster: &Arc<Cluster>, mut req: Request<'_>, audit: &mut AuditEvent) -> Response {
    let Some(verb) = req.info.verb else {
        return response::error(&ApiError::method_not_allowed());
    };
    let answer = match verb {
        Verb::Get if req.info.subresource.as_deref() == Some("log") => log::log(cluster, &req),
        Verb::Get => get::get(cluster, &req),
        Verb::Connect => {
            let ws = req.ws.take();
            portforward::connect(cluster, req.namespace(), req.name(), req.query, ws)
                .map(Answer::Response)
        }
        Verb::List => list::list(cluster, &req),
        Verb::Watch => list::watch(cluster, &req),
        Verb::Create => create::create(cluster, &req),
        Verb::Update => update::update(cluster, &req),
        Verb::Patch => patch::patch(cluster, &req),
        Verb::Delete => delete::delete(cluster, &req, audit),
        Verb::DeleteCollection => delete::delete_collection(cluster, &req, audit),
    };
    match answer {
        Ok(Answer::Object(code, v)) if req.wants_protobuf() => response::object_protobuf(code, &v),
        Ok(Answer::Object(code, v)) => response::json(code, &v),
        Ok(Answer::Response(r)) => r,
        Err(e) => response::error(&e),
    }
}

impl Request<'_> {
    pub fn namespace(&self) -> &str {
        self.info.namespace.as_deref().unwrap_or("")
    }

    /// The name; every verb that reads it was decided on a named path.
    pub fn name(&self) -> &str {
        self.info.name.as_deref().unwrap_or("")
    }

    pub fn content_type(&self) -> &str {
        header(self.headers, "content-type").unwrap_or("")
    }

    /// Does the client prefer protobuf (client-go's typed clients: `application/vnd.kubernetes.protobuf, */*`)?
    pub fn wants_protobuf(&self) -> bool {
        let first = header(self.headers, "accept").and_then(|a| a.split(',').next());
        first.is_some_and(|m| m.trim() == protobuf::MEDIA_TYPE)
    }

    pub fn wants_table(&self) -> bool {
        header(self.headers, "accept").is_some_and(|a| a.contains("as=Table"))
    }

    /// How to write: manager, dryRun, fieldValidation, force, subresource.
    pub fn write_ctx(&self, dry_run: bool) -> WriteCtx<'_> {
        let user_agent = header(self.headers, "user-agent").unwrap_or("");
        let is_apply = self.content_type().starts_with("application/apply-patch");
        let manager = match self.query.get("fieldManager") {
            Some(m) => m.clone(),
            // Apply names its manager; otherwise kube-apiserver's default: the user agent up to its first '/'.
            None if is_apply => String::new(),
            None => user_agent.split('/').next().unwrap_or("").to_string(),
        };
        WriteCtx {
            manager,
            dry_run,
            strict: self
                .query
                .get("fieldValidation")
                .is_some_and(|v| v == "Strict"),
            force: self.query.get("force").is_some_and(|v| v == "true"),
            subresource: self.info.subresource.as_deref(),
            now: crate::store::meta::now(),
        }
    }

    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }

    pub fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels =
            LabelSelector::parse(self.query.get("labelSelector").map_or("", String::as_str))
                .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(
            self.query.get("fieldSelector").map_or("", String::as_str),
            self.info.kind.kind,
        )
        .map_err(ApiError::bad_request)?;
        Ok((labels, fields))
    }

    /// The request's object (create, update).
    pub fn object(&self) -> Result<Value, ApiError> {
        let ct = header(self.headers, "content-type").unwrap_or("application/json");
        if ct.starts_with(protobuf::MEDIA_TYPE) {
            return protobuf::decode(self.body).map_err(|e| {
                ApiError::bad_request(format!("error decoding the protobuf request body: {e}"))
            });
        }
        if ct.contains("protobuf") || ct.contains("cbor") {
            return Err(ApiError::unsupported_media_type(ct));
        }
        serde_json::from_slice(self.body)
            .map_err(|e| ApiError::bad_request(format!("error decoding the request body: {e}")))
    }
}
