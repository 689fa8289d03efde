//! The review for machines: one JSON document.

use super::Review;
use serde_json::{Value, json};

pub fn render(review: &Review) -> Value {
    let environments: Vec<Value> = review
        .environments
        .iter()
        .map(|env| {
            let c = &env.changes;
            let objects: Vec<Value> = c
                .changes
                .iter()
                .map(|o| {
                    json!({
                        "kind": o.id.kind, "namespace": o.id.namespace, "name": o.id.name,
                        "file": o.file, "state": o.change, "diff": o.diff,
                    })
                })
                .collect();
            json!({
                "env": c.env,
                "summary": {
                    "changed": c.count(super::compare::ChangeKind::Changed),
                    "added": c.count(super::compare::ChangeKind::Added),
                    "deleted": c.count(super::compare::ChangeKind::Deleted),
                    "unchanged": c.unchanged,
                },
                "integrity": env.integrity,
                "objects": objects,
            })
        })
        .collect();
    json!({
        "base": {"spec": review.base.spec, "commit": review.base.commit},
        "head": {"spec": review.head.spec, "commit": review.head.commit},
        "differs": review.differs(),
        "environments": environments,
        "callouts": review.callouts,
        "images": review.images,
        "live": review.live,
    })
}
