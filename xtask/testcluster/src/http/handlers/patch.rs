//! `patch`: JSON, merge, strategic merge patch and server-side apply.
use super::{Answer, Request};
use crate::errors::ApiError;
use crate::state::Cluster;
use crate::write;

pub fn patch(cluster: &Cluster, req: &Request<'_>) -> Result<Answer, ApiError> {
    let ctx = req.write_ctx(req.dry_run());
    let (code, v) = write::patch(
        &mut cluster.store(),
        req.info.kind,
        req.namespace(),
        req.name(),
        req.content_type(),
        req.body,
        &ctx,
    )?;
    Ok(Answer::Object(code, v))
}
