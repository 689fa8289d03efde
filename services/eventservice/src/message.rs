//! The queue protocol: what a message on the event queue may say.
//!
//! Parsing is pure and total: every input becomes either a [`Message`] or a
//! reason string for the dead-letter list, so a bad message can never crash
//! or stall the worker.

use micro_common::queue::SUMMARY_RETURN_PREFIX;
use serde::Deserialize;
use serde_json::Value;

/// Messages larger than this are dead-lettered unparsed (a URL is short; a
/// megabyte "event" is a bug or an attack).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;
/// Longest URL / event type / return path we store.
pub const MAX_FIELD_CHARS: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Store one event.
    Record(Event),
    /// Push the per-URL counts onto the list `return_path`.
    Summary { return_path: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Producer-chosen id; a second message with the same id is not stored
    /// again (redelivery after a crash between commit and acknowledgement).
    pub id: Option<String>,
    pub kind: String,
    pub url: String,
}

/// Loose shape: every field optional so that we can name the missing one.
#[derive(Deserialize)]
struct Raw {
    action: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    url: Option<Value>,
    id: Option<Value>,
    #[serde(rename = "returnPath")]
    return_path: Option<Value>,
}

/// Parses one raw queue entry. `Err` carries the dead-letter reason.
pub fn parse(raw: &[u8]) -> Result<Message, String> {
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(format!(
            "message too large: {} bytes (limit {MAX_MESSAGE_BYTES})",
            raw.len()
        ));
    }
    let text = std::str::from_utf8(raw).map_err(|_| "message is not valid UTF-8".to_string())?;
    let value: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    if !value.is_object() {
        return Err("message is not a JSON object".into());
    }
    let msg: Raw = serde_json::from_value(value).map_err(|e| format!("malformed message: {e}"))?;
    let action = required_string(msg.action.as_ref(), "action")?;
    match action.as_str() {
        "record" => Ok(Message::Record(Event {
            id: optional_string(msg.id.as_ref(), "id")?,
            kind: required_string(msg.kind.as_ref(), "type")?,
            url: required_string(msg.url.as_ref(), "url")?,
        })),
        "summary" => Ok(Message::Summary {
            return_path: return_path(msg.return_path.as_ref())?,
        }),
        other => Err(format!("unknown action {other:?}")),
    }
}

/// The summary's return path: only a `report:` list (see [`SUMMARY_RETURN_PREFIX`]).
fn return_path(value: Option<&Value>) -> Result<String, String> {
    let path = required_string(value, "returnPath")?;
    if !path.starts_with(SUMMARY_RETURN_PREFIX) {
        return Err(format!(
            "returnPath {path:?} does not start with {SUMMARY_RETURN_PREFIX:?}"
        ));
    }
    Ok(path)
}

fn required_string(value: Option<&Value>, name: &str) -> Result<String, String> {
    optional_string(value, name)?.ok_or_else(|| format!("missing field {name:?}"))
}

fn optional_string(value: Option<&Value>, name: &str) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Err(format!("field {name:?} is empty")),
        // PostgreSQL text cannot hold NUL; say so instead of failing at insert.
        Some(Value::String(s)) if s.contains('\0') => {
            Err(format!("field {name:?} contains a NUL character"))
        }
        Some(Value::String(s)) if s.chars().count() > MAX_FIELD_CHARS => Err(format!(
            "field {name:?} is longer than {MAX_FIELD_CHARS} characters"
        )),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("field {name:?} is not a string")),
    }
}

/// The dead-letter entry: the reason and the original message, verbatim
/// (lossy only if it was not UTF-8).
pub fn dead_letter(reason: &str, raw: &[u8]) -> String {
    serde_json::json!({ "reason": reason, "message": String::from_utf8_lossy(raw) }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_summary_parse() {
        assert_eq!(
            parse(br#"{"action":"record","type":"page","url":"/add"}"#),
            Ok(Message::Record(Event {
                id: None,
                kind: "page".into(),
                url: "/add".into()
            }))
        );
        assert_eq!(
            parse(br#"{"action":"record","type":"page","url":"/a","id":"x1"}"#),
            Ok(Message::Record(Event {
                id: Some("x1".into()),
                kind: "page".into(),
                url: "/a".into()
            }))
        );
        assert_eq!(
            parse(br#"{"action":"summary","returnPath":"report:1"}"#),
            Ok(Message::Summary {
                return_path: "report:1".into()
            })
        );
    }

    #[test]
    fn bad_input_names_the_problem() {
        let reason = |raw: &[u8]| parse(raw).unwrap_err();
        assert!(reason(b"{nope").starts_with("malformed JSON"));
        assert!(reason(b"[1,2]").contains("not a JSON object"));
        assert!(reason(b"\xff\xfe").contains("UTF-8"));
        assert_eq!(
            reason(br#"{"action":"explode"}"#),
            r#"unknown action "explode""#
        );
        assert_eq!(reason(br#"{"type":"page"}"#), r#"missing field "action""#);
        assert_eq!(
            reason(br#"{"action":"record","type":"page"}"#),
            r#"missing field "url""#
        );
        assert_eq!(
            reason(br#"{"action":"record","url":"/"}"#),
            r#"missing field "type""#
        );
        assert_eq!(
            reason(br#"{"action":"record","type":"page","url":7}"#),
            r#"field "url" is not a string"#
        );
        assert_eq!(
            reason(br#"{"action":"summary","returnPath":"eventservice"}"#),
            r#"returnPath "eventservice" does not start with "report:""#
        );
        assert_eq!(
            reason(br#"{"action":"summary"}"#),
            r#"missing field "returnPath""#
        );
        assert_eq!(
            reason(br#"{"action":"record","type":"page","url":"a\u0000b"}"#),
            r#"field "url" contains a NUL character"#
        );
        assert!(reason(&vec![b' '; MAX_MESSAGE_BYTES + 1]).starts_with("message too large"));
    }

    #[test]
    fn dead_letter_keeps_the_original() {
        let entry: Value = serde_json::from_str(&dead_letter("why", b"{nope")).unwrap();
        assert_eq!(entry["reason"], "why");
        assert_eq!(entry["message"], "{nope");
    }
}
