//! The audit log: one record per request, kept in memory for tests and
//! optionally appended as JSON lines to a file (like kube-apiserver's own log,
//! flattened to the fields tests count on).
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// One answered request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// When it was answered (RFC 3339).
    pub time: String,
    /// get, list, watch, create, update, patch, delete, deletecollection; `get`
    /// for non-resource paths such as `/version`.
    pub verb: String,
    /// The resource (plural, e.g. `deployments`); empty for non-resource paths.
    pub resource: String,
    /// API group (`apps`, empty for the core group).
    pub api_group: String,
    /// `status`, `scale`, or none.
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The request asked for `dryRun=All`.
    pub dry_run: bool,
    /// HTTP status code of the answer.
    pub code: u16,
    /// Method and path with query, e.g. `PATCH /apis/apps/v1/...?...`.
    pub method: String,
    pub request_uri: String,
    /// `fieldManager` query parameter, if any.
    pub field_manager: Option<String>,
    /// `Content-Type` of the request body for patches (tells apply from merge patch).
    pub patch_type: Option<String>,
    pub user_agent: Option<String>,
}

impl AuditEvent {
    /// create, update, patch, delete or deletecollection.
    pub fn is_write(&self) -> bool {
        matches!(
            self.verb.as_str(),
            "create" | "update" | "patch" | "delete" | "deletecollection"
        )
    }
}

pub(crate) struct AuditLog {
    events: Mutex<Vec<AuditEvent>>,
    file: Option<Mutex<std::fs::File>>,
}

impl AuditLog {
    pub fn new(path: Option<&PathBuf>) -> anyhow::Result<AuditLog> {
        let file = match path {
            Some(p) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| anyhow::anyhow!("cannot open audit log {}: {e}", p.display()))?,
            )),
            None => None,
        };
        Ok(AuditLog {
            events: Mutex::new(Vec::new()),
            file,
        })
    }

    pub fn record(&self, event: AuditEvent) {
        if let Some(file) = &self.file {
            let mut line = serde_json::to_string(&event).unwrap_or_default();
            line.push('\n');
            let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = f.write_all(line.as_bytes()) {
                tracing::warn!("audit log write failed: {e}");
            }
        }
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }

    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn clear(&self) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}
