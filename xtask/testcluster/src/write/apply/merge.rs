//! Merging an applied configuration into the live object: maps merge field by
//! field, keyed lists item by item, everything else is replaced.
use super::fieldset::{item_key, list_keys};
use serde_json::Value;

pub fn merge(live: &mut Value, applied: &Value, field: &str) {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            for (k, v) in a {
                match l.get_mut(k) {
                    Some(existing) => merge(existing, v, k),
                    None => {
                        l.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(l), Value::Array(a)) => match list_keys(field, a) {
            Some(keys) if l.is_empty() || list_keys(field, l) == Some(keys) => {
                for item in a {
                    let key = item_key(keys, item);
                    match l.iter_mut().find(|x| item_key(keys, x) == key) {
                        Some(existing) => merge(existing, item, ""),
                        None => l.push(item.clone()),
                    }
                }
            }
            _ => *l = a.clone(),
        },
        (live, applied) => *live = applied.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keyed_lists_merge_by_key_and_atomic_lists_are_replaced() {
        let mut live = json!({"containers": [
            {"name": "a", "image": "a:1", "args": ["x", "y"]},
            {"name": "b", "image": "b:1"}
        ], "labels": {"keep": "1"}});
        let applied = json!({"containers": [
            {"name": "b", "image": "b:2"},
            {"name": "c", "image": "c:1"},
            {"name": "a", "args": ["z"]}
        ], "labels": {"new": "2"}});
        merge(&mut live, &applied, "");
        assert_eq!(
            live,
            json!({"containers": [
            {"name": "a", "image": "a:1", "args": ["z"]},
            {"name": "b", "image": "b:2"},
            {"name": "c", "image": "c:1"}
        ], "labels": {"keep": "1", "new": "2"}})
        );
    }
}
