//! YAML documents to JSON values, strictly: a key given twice in one mapping
//! is an error (serde's own map visitor would silently keep the last one, and
//! a reviewer reading the first would be misled).

use anyhow::{Result, anyhow};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Every non-empty document of `text`, in order.
pub fn documents(text: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let StrictValue(value) = StrictValue::deserialize(document).map_err(|e| anyhow!("{e}"))?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a YAML value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a number JSON can hold")))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<Key>()? {
            let StrictValue(value) = map.next_value()?;
            if out.contains_key(&key.0) {
                return Err(de::Error::custom(format!(
                    "duplicate key `{}` in one mapping",
                    key.0
                )));
            }
            out.insert(key.0, value);
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key. Scalars become strings, as Kubernetes' YAML reader makes them.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match StrictValue::deserialize(deserializer)?.0 {
            Value::String(s) => Ok(Key(s)),
            Value::Number(n) => Ok(Key(n.to_string())),
            Value::Bool(b) => Ok(Key(b.to_string())),
            other => Err(de::Error::custom(format!(
                "a mapping key must be a scalar, not {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_become_json_values() {
        let docs = documents("a: 1\nb: [x, 2.5, true, null]\n---\n---\n\"3\": {c: d}\n").unwrap();
        assert_eq!(
            docs,
            [
                json!({"a": 1, "b": ["x", 2.5, true, null]}),
                json!({"3": {"c": "d"}})
            ]
        );
    }

    #[test]
    fn a_duplicate_key_is_an_error_naming_the_mapping_and_its_line() {
        let err = documents("kind: ConfigMap\nmetadata:\n  name: a\n  name: b\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("metadata: duplicate key `name`"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }
}
