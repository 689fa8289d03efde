//! API errors as kube-apiserver reports them: an HTTP code and a `Status` body.
use crate::store::resources::ResourceKind;
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    fn with(code: u16, reason: &'static str, message: String, details: Value) -> ApiError {
        ApiError {
            code,
            reason,
            message,
            details,
        }
    }

    fn details(kind: &ResourceKind, name: &str) -> Value {
        json!({"name": name, "group": kind.group, "kind": kind.plural})
    }

    pub fn not_found(kind: &ResourceKind, name: &str) -> ApiError {
        Self::with(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", kind.group_resource()),
            Self::details(kind, name),
        )
    }

    pub fn namespace_not_found(ns: &str) -> ApiError {
        Self::with(
            404,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
            json!({"name": ns, "kind": "namespaces"}),
        )
    }

    /// A path this server does not serve.
    pub fn no_such_path() -> ApiError {
        Self::with(
            404,
            "NotFound",
            "the server could not find the requested resource".to_string(),
            json!({}),
        )
    }

    pub fn already_exists(kind: &ResourceKind, name: &str) -> ApiError {
        Self::with(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", kind.group_resource()),
            Self::details(kind, name),
        )
    }

    /// Optimistic concurrency: the client's resourceVersion is stale.
    pub fn modified(kind: &ResourceKind, name: &str) -> ApiError {
        Self::with(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                kind.group_resource()
            ),
            Self::details(kind, name),
        )
    }

    /// A server-side apply conflict; `details` carries the causes.
    pub fn apply_conflict(
        kind: &ResourceKind,
        name: &str,
        message: String,
        causes: Value,
    ) -> ApiError {
        let mut details = Self::details(kind, name);
        details["causes"] = causes;
        Self::with(409, "Conflict", message, details)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        Self::with(400, "BadRequest", message.into(), Value::Null)
    }

    /// 422: the object is not valid.
    pub fn invalid(kind: &ResourceKind, name: &str, field: &str, message: &str) -> ApiError {
        let mut details = json!({"name": name, "group": kind.group, "kind": kind.kind});
        details["causes"] =
            json!([{"reason": "FieldValueInvalid", "message": message, "field": field}]);
        Self::with(
            422,
            "Invalid",
            format!("{} \"{name}\" is invalid: {field}: {message}", kind.kind),
            details,
        )
    }

    pub fn method_not_allowed() -> ApiError {
        Self::with(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".to_string(),
            json!({}),
        )
    }

    pub fn unsupported_media_type(ct: &str) -> ApiError {
        Self::with(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
            ),
            json!({}),
        )
    }

    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if !self.details.is_null() {
            status["details"] = self.details.clone();
        }
        status
    }
}
