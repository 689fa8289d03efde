//! `update`: PUT of a whole object (or of its `status`/`scale` subresource).
use super::{Answer, Request};
use crate::errors::ApiError;
use crate::state::Cluster;
use crate::write;

pub fn update(cluster: &Cluster, req: &Request<'_>) -> Result<Answer, ApiError> {
    let obj = req.object()?;
    let ctx = req.write_ctx(req.dry_run());
    let (code, v) = write::update(
        &mut cluster.store(),
        req.info.kind,
        req.namespace(),
        req.name(),
        obj,
        &ctx,
    )?;
    Ok(Answer::Object(code, v))
}
