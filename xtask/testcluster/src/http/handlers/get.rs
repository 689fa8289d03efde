//! `get`: one object, its `scale` subresource, or a one-row Table.
use super::{Answer, Request};
use crate::errors::ApiError;
use crate::http::table;
use crate::state::Cluster;
use crate::write;

pub fn get(cluster: &Cluster, req: &Request<'_>) -> Result<Answer, ApiError> {
    let kind = req.info.kind;
    let store = cluster.store();
    let obj = store
        .get(kind, req.namespace(), req.name())
        .ok_or_else(|| ApiError::not_found(kind, req.name()))?;
    let value = if req.info.subresource.as_deref() == Some("scale") {
        write::scale_of(obj)
    } else if req.wants_table() {
        let rv = store.resource_version().to_string();
        table::table(kind, std::slice::from_ref(obj), &rv)
    } else {
        obj.clone()
    };
    Ok(Answer::Object(200, value))
}
