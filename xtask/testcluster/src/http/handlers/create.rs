//! `create`: POST of a new object.
use super::{Answer, Request};
use crate::errors::ApiError;
use crate::state::Cluster;
use crate::write;

pub fn create(cluster: &Cluster, req: &Request<'_>) -> Result<Answer, ApiError> {
    let obj = req.object()?;
    let ctx = req.write_ctx(req.dry_run());
    let (code, v) = write::create(
        &mut cluster.store(),
        req.info.kind,
        req.namespace(),
        obj,
        &ctx,
    )?;
    Ok(Answer::Object(code, v))
}
