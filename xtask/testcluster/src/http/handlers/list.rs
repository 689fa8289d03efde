//! `list` and `watch`: the objects of a kind matching the selectors, now or as
//! they change.
use super::{Answer, Request};
use crate::errors::ApiError;
use crate::http::watch::{self, WatchRequest};
use crate::http::{response, table};
use crate::state::Cluster;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

pub fn list(cluster: &Cluster, req: &Request<'_>) -> Result<Answer, ApiError> {
    let kind = req.info.kind;
    let (labels, fields) = req.selectors()?;
    let store = cluster.store();
    let items: Vec<&Value> = store
        .list(kind, req.info.namespace.as_deref())
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .collect();
    let rv = store.resource_version().to_string();
    if req.wants_table() {
        let items: Vec<Value> = items.into_iter().cloned().collect();
        return Ok(Answer::Object(200, table::table(kind, &items, &rv)));
    }
    // Written straight from the store: a large list is not copied first.
    let body = response::list_body(kind, &rv, &items);
    drop(store);
    Ok(Answer::Response(response::bytes(200, body)))
}

pub fn watch(cluster: &Arc<Cluster>, req: &Request<'_>) -> Result<Answer, ApiError> {
    let (labels, fields) = req.selectors()?;
    let since = req
        .query
        .get("resourceVersion")
        .and_then(|rv| rv.parse::<u64>().ok())
        .filter(|rv| *rv != 0);
    let timeout = req
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .map(Duration::from_secs);
    let watch = WatchRequest {
        kind: req.info.kind,
        namespace: req.info.namespace.clone(),
        labels,
        fields,
        since,
        timeout,
        initial_events_bookmark: req
            .query
            .get("sendInitialEvents")
            .is_some_and(|v| v == "true"),
        table: req.wants_table(),
    };
    Ok(Answer::Response(watch::serve(cluster.clone(), watch)))
}
