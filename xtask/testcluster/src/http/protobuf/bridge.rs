//! Between k8s-pb's prost messages and the JSON objects the store keeps.
//!
//! Each message type is one table (`message!`) of its Rust fields and their JSON
//! names. Go writes every non-pointer field to protobuf, zeros included, while its
//! JSON leaves empty ones out, so zeros, empty strings and empty lists or maps are
//! left out of the JSON, except for fields marked `keep` (pointers in Go, where
//! zero is a value: `replicas: 0`).
//!
//! Nothing is dropped silently: `covered` says whether a decoded message uses only
//! fields the tables name, and `from_json` fails on a JSON key they do not name.
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1::{FieldsV1, MicroTime, Time};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A field the tables do not know, named by its message type (or JSON key).
#[derive(Debug, PartialEq, Eq)]
pub struct Uncovered(pub String);

pub trait Bridge: Sized {
    /// The JSON value; `None` leaves the field out.
    fn to_json(&self, keep_zero: bool) -> Option<Value>;
    fn from_json(v: &Value) -> Result<Self, Uncovered>;
    /// Does this value use only fields the tables name?
    fn covered(&self) -> Result<(), Uncovered> {
        Ok(())
    }
    /// A message's JSON keys (with those of messages inlined into it).
    fn keys(_out: &mut Vec<&'static str>) {}
}

fn wrong(what: &str, v: &Value) -> Uncovered {
    Uncovered(format!("{what} expected, got {v}"))
}

impl Bridge for String {
    fn to_json(&self, keep_zero: bool) -> Option<Value> {
        (keep_zero || !self.is_empty()).then(|| json!(self))
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| wrong("a string", v))
    }
}

impl Bridge for bool {
    fn to_json(&self, keep_zero: bool) -> Option<Value> {
        (keep_zero || *self).then(|| json!(self))
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        v.as_bool().ok_or_else(|| wrong("a boolean", v))
    }
}

macro_rules! integer {
    ($($t:ty),*) => {$(
        impl Bridge for $t {
            fn to_json(&self, keep_zero: bool) -> Option<Value> {
                (keep_zero || *self != 0).then(|| json!(self))
            }
            fn from_json(v: &Value) -> Result<Self, Uncovered> {
                v.as_i64()
                    .and_then(|n| <$t>::try_from(n).ok())
                    .ok_or_else(|| wrong("an integer", v))
            }
        }
    )*};
}
integer!(i32, i64);

/// `bytes` fields: base64 in JSON (Secret data).
impl Bridge for Vec<u8> {
    fn to_json(&self, _keep_zero: bool) -> Option<Value> {
        Some(json!(crate::store::meta::base64(self)))
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        use base64::Engine;
        let text = v.as_str().ok_or_else(|| wrong("base64 text", v))?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| wrong("base64 text", v))
    }
}

impl<T: Bridge> Bridge for Option<T> {
    fn to_json(&self, keep_zero: bool) -> Option<Value> {
        // Present in protobuf: a pointer in Go, so zero is a value.
        self.as_ref().and_then(|x| x.to_json(keep_zero))
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        match v {
            Value::Null => Ok(None),
            v => T::from_json(v).map(Some),
        }
    }
    fn covered(&self) -> Result<(), Uncovered> {
        self.as_ref().map_or(Ok(()), T::covered)
    }
}

impl<T: Bridge> Bridge for Vec<T> {
    fn to_json(&self, _keep_zero: bool) -> Option<Value> {
        (!self.is_empty()).then(|| {
            Value::Array(
                self.iter()
                    .map(|x| x.to_json(true).unwrap_or(Value::Null))
                    .collect(),
            )
        })
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items.iter().map(T::from_json).collect(),
            v => Err(wrong("a list", v)),
        }
    }
    fn covered(&self) -> Result<(), Uncovered> {
        self.iter().try_for_each(T::covered)
    }
}

impl<T: Bridge> Bridge for BTreeMap<String, T> {
    fn to_json(&self, _keep_zero: bool) -> Option<Value> {
        (!self.is_empty()).then(|| {
            Value::Object(
                self.iter()
                    .map(|(k, x)| (k.clone(), x.to_json(true).unwrap_or(Value::Null)))
                    .collect(),
            )
        })
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        match v {
            Value::Null => Ok(BTreeMap::new()),
            Value::Object(m) => m
                .iter()
                .map(|(k, x)| Ok((k.clone(), T::from_json(x)?)))
                .collect(),
            v => Err(wrong("an object", v)),
        }
    }
    fn covered(&self) -> Result<(), Uncovered> {
        self.values().try_for_each(T::covered)
    }
}

/// `Time`: RFC 3339 in JSON, seconds since the epoch in protobuf.
impl Bridge for Time {
    fn to_json(&self, _keep_zero: bool) -> Option<Value> {
        time_to_json(self.seconds, self.nanos, false)
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        let (seconds, nanos) = time_from_json(v)?;
        Ok(Time { seconds, nanos })
    }
}

impl Bridge for MicroTime {
    fn to_json(&self, _keep_zero: bool) -> Option<Value> {
        time_to_json(self.seconds, self.nanos, true)
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        let (seconds, nanos) = time_from_json(v)?;
        Ok(MicroTime { seconds, nanos })
    }
}

fn time_to_json(seconds: Option<i64>, nanos: Option<i32>, micro: bool) -> Option<Value> {
    // Go writes a zero (unset) time too: year 1, or the epoch from other encoders.
    if matches!(seconds.unwrap_or(0), 0 | -62_135_596_800) && nanos.unwrap_or(0) == 0 {
        return None;
    }
    let t = k8s_openapi::jiff::Timestamp::new(seconds.unwrap_or(0), nanos.unwrap_or(0)).ok()?;
    let format = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Some(json!(t.strftime(format).to_string()))
}

fn time_from_json(v: &Value) -> Result<(Option<i64>, Option<i32>), Uncovered> {
    let t: k8s_openapi::jiff::Timestamp = v
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| wrong("an RFC 3339 time", v))?;
    Ok((Some(t.as_second()), Some(t.subsec_nanosecond())))
}

/// `IntOrString`: a number or a string in JSON; type 0 is int, 1 is string.
impl Bridge for IntOrString {
    fn to_json(&self, _keep_zero: bool) -> Option<Value> {
        match self.r#type {
            Some(1) => Some(json!(self.str_val.clone().unwrap_or_default())),
            // Go writes an unset IntOrString as the number 0.
            _ => self.int_val.filter(|n| *n != 0).map(|n| json!(n)),
        }
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        match v {
            Value::String(s) => Ok(IntOrString {
                r#type: Some(1),
                int_val: None,
                str_val: Some(s.clone()),
            }),
            v => Ok(IntOrString {
                r#type: Some(0),
                int_val: Some(i32::from_json(v)?),
                str_val: None,
            }),
        }
    }
}

/// `Quantity`: its canonical string.
impl Bridge for Quantity {
    fn to_json(&self, _keep_zero: bool) -> Option<Value> {
        Some(json!(self.string.clone().unwrap_or_default()))
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        Ok(Quantity {
            string: Some(String::from_json(v)?),
        })
    }
}

/// `FieldsV1` (managedFields): the raw JSON object in both.
impl Bridge for FieldsV1 {
    fn to_json(&self, _keep_zero: bool) -> Option<Value> {
        self.raw
            .as_deref()
            .and_then(|raw| serde_json::from_slice(raw).ok())
    }
    fn from_json(v: &Value) -> Result<Self, Uncovered> {
        Ok(FieldsV1 {
            raw: Some(serde_json::to_vec(v).unwrap_or_default()),
        })
    }
}

/// Fails on a JSON key outside a message's table.
pub fn known_keys(v: &Value, keys: &[&str], message: &str) -> Result<(), Uncovered> {
    match v.as_object() {
        Some(m) => match m.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => Err(Uncovered(format!("{message}.{k}"))),
            None => Ok(()),
        },
        None => Err(wrong("an object", v)),
    }
}

pub fn insert(m: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        m.insert(key.to_string(), v);
    }
}

/// One message type's table: `Type { rust_field: "jsonName", other: "name" keep,
/// embedded: inline }`. An `inline` field's keys sit in the parent's JSON object
/// (Go's embedded structs: `LocalObjectReference`, `VolumeSource`, `ProbeHandler`).
/// Top-level `apiVersion`/`kind` are the envelope's, not the message's.
macro_rules! message {
    ($t:path { $($field:ident : $json:tt $($keep:ident)?),* $(,)? }) => {
        impl $crate::http::protobuf::bridge::Bridge for $t {
            fn to_json(&self, _keep_zero: bool) -> Option<serde_json::Value> {
                #[allow(unused_imports)]
                use $crate::http::protobuf::bridge::Bridge as _;
                let mut m = serde_json::Map::new();
                $( message!(@put m, self.$field, $json $($keep)?); )*
                Some(serde_json::Value::Object(m))
            }
            fn from_json(v: &serde_json::Value) -> Result<Self, $crate::http::protobuf::bridge::Uncovered> {
                if v.is_null() {
                    return Ok(Self::default());
                }
                let mut keys = vec!["apiVersion", "kind"];
                <Self as $crate::http::protobuf::bridge::Bridge>::keys(&mut keys);
                $crate::http::protobuf::bridge::known_keys(v, &keys, stringify!($t))?;
                let mut out = Self::default();
                $( out.$field = message!(@get v, $json); )*
                Ok(out)
            }
            fn covered(&self) -> Result<(), $crate::http::protobuf::bridge::Uncovered> {
                let mut named = Self::default();
                $( named.$field = self.$field.clone(); )*
                if named != *self {
                    return Err($crate::http::protobuf::bridge::Uncovered(format!(
                        "{}: a field the test cluster does not know ({})",
                        stringify!($t),
                        $crate::http::protobuf::bridge::first_difference(&named, self),
                    )));
                }
                $( $crate::http::protobuf::bridge::Bridge::covered(&self.$field)?; )*
                Ok(())
            }
            fn keys(out: &mut Vec<&'static str>) {
                $( message!(@key out, $json, $field); )*
                let _ = out;
            }
        }
    };
    (@put $m:ident, $value:expr, inline) => {
        if let Some(serde_json::Value::Object(inner)) =
            $crate::http::protobuf::bridge::Bridge::to_json(&$value, false)
        {
            $m.extend(inner);
        }
    };
    (@put $m:ident, $value:expr, $json:literal keep) => {
        $crate::http::protobuf::bridge::insert(&mut $m, $json, $crate::http::protobuf::bridge::Bridge::to_json(&$value, true))
    };
    (@put $m:ident, $value:expr, $json:literal) => {
        $crate::http::protobuf::bridge::insert(&mut $m, $json, $crate::http::protobuf::bridge::Bridge::to_json(&$value, false))
    };
    (@get $v:ident, inline) => {
        $crate::http::protobuf::bridge::inline_from_json($v)?
    };
    (@get $v:ident, $json:literal) => {
        $crate::http::protobuf::bridge::Bridge::from_json(&$v[$json])?
    };
    (@key $out:ident, inline, $field:ident) => {
        $crate::http::protobuf::bridge::inline_keys(&Self::default().$field, $out)
    };
    (@key $out:ident, $json:literal, $field:ident) => {
        $out.push($json)
    };
}
pub(crate) use message;

/// An inlined message read from its parent's object, which holds the parent's keys too.
pub fn inline_from_json<T: Bridge + Default>(v: &Value) -> Result<Option<T>, Uncovered> {
    let mut keys = Vec::new();
    T::keys(&mut keys);
    let own: Map<String, Value> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .map(|(k, x)| (k.clone(), x.clone()))
        .collect();
    if own.is_empty() {
        return Ok(None);
    }
    T::from_json(&Value::Object(own)).map(Some)
}

/// The keys of an inlined (optional) message, for its parent's key check.
pub fn inline_keys<T: Bridge>(_field: &Option<T>, out: &mut Vec<&'static str>) {
    T::keys(out)
}

/// The first field where two messages' Debug texts differ (`name: value…`), to
/// name an unknown field in an error.
pub fn first_difference(known: &impl std::fmt::Debug, whole: &impl std::fmt::Debug) -> String {
    let (a, b) = (format!("{known:?}"), format!("{whole:?}"));
    let at = a
        .bytes()
        .zip(b.bytes())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let start = b[..at].rfind(", ").map_or(0, |i| i + 2);
    b[start..].chars().take(60).collect()
}
