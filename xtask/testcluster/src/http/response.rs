//! Response bodies: JSON objects, `<Kind>List`s written straight from the store,
//! and `Status` errors.
use crate::errors::ApiError;
use crate::store::resources::ResourceKind;
use axum::body::Body;
use axum::response::Response;
use serde_json::Value;

pub fn json(code: u16, body: &Value) -> Response {
    bytes(code, serde_json::to_vec(body).unwrap_or_default())
}

pub fn bytes(code: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("a valid response")
}

/// One object in protobuf, or in JSON when a field of it has no protobuf table
/// (the client accepts both; it reads the content type).
pub fn object_protobuf(code: u16, body: &Value) -> Response {
    match super::protobuf::encode(body) {
        Some(bytes) => Response::builder()
            .status(code)
            .header("content-type", super::protobuf::MEDIA_TYPE)
            .body(Body::from(bytes))
            .expect("a valid response"),
        None => json(code, body),
    }
}

pub fn text(code: u16, body: &'static str) -> Response {
    Response::builder()
        .status(code)
        .body(Body::from(body))
        .expect("a valid response")
}

pub fn error(e: &ApiError) -> Response {
    json(e.code, &e.status())
}

/// A `<Kind>List` body, fields in kube-apiserver's order.
pub fn list_body(kind: &ResourceKind, rv: &str, items: &[&Value]) -> Vec<u8> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct ListMeta<'a> {
        resource_version: &'a str,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct List<'a> {
        kind: String,
        api_version: String,
        metadata: ListMeta<'a>,
        items: &'a [&'a Value],
    }
    serde_json::to_vec(&List {
        kind: format!("{}List", kind.kind),
        api_version: kind.api_version(),
        metadata: ListMeta {
            resource_version: rv,
        },
        items,
    })
    .unwrap_or_default()
}
