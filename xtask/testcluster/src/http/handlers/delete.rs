//! `delete` and `deletecollection`. kubectl sends DeleteOptions in the body, and
//! `dryRun` may be there rather than in the query.
use super::{Answer, Request};
use crate::audit::AuditEvent;
use crate::errors::ApiError;
use crate::state::Cluster;
use crate::write;
use serde_json::Value;

/// `dryRun=All` in the query or `{"dryRun": ["All"]}` in the body.
fn dry_run(req: &Request<'_>, audit: &mut AuditEvent) -> bool {
    let options: Value = serde_json::from_slice(req.body).unwrap_or(Value::Null);
    if options["dryRun"]
        .as_array()
        .is_some_and(|d| d.iter().any(|x| x == "All"))
    {
        audit.dry_run = true;
    }
    audit.dry_run
}

pub fn delete(
    cluster: &Cluster,
    req: &Request<'_>,
    audit: &mut AuditEvent,
) -> Result<Answer, ApiError> {
    let ctx = req.write_ctx(dry_run(req, audit));
    let (code, v) = write::delete(
        &mut cluster.store(),
        req.info.kind,
        req.namespace(),
        req.name(),
        &ctx,
    )?;
    Ok(Answer::Object(code, v))
}

pub fn delete_collection(
    cluster: &Cluster,
    req: &Request<'_>,
    audit: &mut AuditEvent,
) -> Result<Answer, ApiError> {
    let ctx = req.write_ctx(dry_run(req, audit));
    let (labels, fields) = req.selectors()?;
    let mut store = cluster.store();
    let selected: Vec<Value> = store
        .list(req.info.kind, req.info.namespace.as_deref())
        .into_iter()
        .filter(|o| labels.matches(o) && fields.matches(o))
        .cloned()
        .collect();
    let (code, v) = write::delete_collection(
        &mut store,
        req.info.kind,
        req.info.namespace.as_deref(),
        selected,
        &ctx,
    )?;
    Ok(Answer::Object(code, v))
}
