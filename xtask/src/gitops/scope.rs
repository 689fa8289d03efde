//! `-n/--namespace` and `-l/--selector`: the part of an environment a diff,
//! sync or status looks at. A scoped sync applies, prunes and waits for only
//! the objects in scope; everything outside it is neither touched nor dropped
//! from the inventory (see `sync.rs::Run::inventory_objects`).

use super::kinds::ObjectKey;
use anyhow::{Result, bail};
use serde_json::Value;

/// One requirement of a label selector, as kubectl's `-l` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

impl Requirement {
    fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        match self {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        }
    }
}

/// Which objects a command covers. The default covers everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    namespace: Option<String>,
    selector: Vec<Requirement>,
    /// The selector as given, for messages.
    shown: Option<String>,
}

impl Scope {
    pub fn new(namespace: Option<&str>, selector: Option<&str>) -> Result<Scope> {
        let requirements = match selector {
            Some(text) => parse(text)?,
            None => Vec::new(),
        };
        Ok(Scope {
            namespace: namespace.map(str::to_string),
            selector: requirements,
            shown: selector.map(str::to_string),
        })
    }

    /// Does it cover the whole environment?
    pub fn is_everything(&self) -> bool {
        self.namespace.is_none() && self.selector.is_empty()
    }

    /// Is the object with this key and body in scope? A Namespace is in a
    /// namespace scope when it is that namespace.
    pub fn contains(&self, key: &ObjectKey, object: &Value) -> bool {
        let in_namespace = match &self.namespace {
            None => true,
            Some(ns) if key.kind == "Namespace" => &key.name == ns,
            Some(ns) => &key.namespace == ns,
        };
        let labels = object
            .pointer("/metadata/labels")
            .and_then(Value::as_object);
        in_namespace && self.selector.iter().all(|r| r.matches(labels))
    }

    /// `namespace micro, selector app.kubernetes.io/name=webapp`.
    pub fn describe(&self) -> String {
        let parts: Vec<String> = [
            self.namespace.as_ref().map(|n| format!("namespace {n}")),
            self.shown.as_ref().map(|s| format!("selector {s}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        parts.join(", ")
    }
}

/// `a=b,c!=d,e,!f` (also `a==b`): kubectl's equality-based selectors.
fn parse(text: &str) -> Result<Vec<Requirement>> {
    let requirement = |part: &str| -> Result<Requirement> {
        let part = part.trim();
        let valid_key = |k: &str| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        };
        let parsed = if let Some((k, v)) = part.split_once("!=") {
            Requirement::NotEquals(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            Requirement::Equals(k.trim().into(), v.trim().into())
        } else if let Some(k) = part.strip_prefix('!') {
            Requirement::NotExists(k.trim().into())
        } else {
            Requirement::Exists(part.into())
        };
        let key = match &parsed {
            Requirement::Equals(k, _)
            | Requirement::NotEquals(k, _)
            | Requirement::Exists(k)
            | Requirement::NotExists(k) => k,
        };
        if !valid_key(key) {
            bail!(
                "selector `{text}`: `{part}` is not `key=value`, `key!=value`, `key` or `!key` \
                 (set-based selectors like `key in (a,b)` are not supported)"
            );
        }
        Ok(parsed)
    };
    text.split(',').map(requirement).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(kind: &str, namespace: &str, name: &str) -> ObjectKey {
        ObjectKey {
            group: String::new(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn equality_inequality_and_existence_select_by_labels() {
        let scope = Scope::new(None, Some("app=web,tier!=db,team,!legacy")).unwrap();
        let object = |labels: Value| json!({"metadata": {"labels": labels}});
        let k = key("Service", "micro", "web");
        assert!(scope.contains(&k, &object(json!({"app": "web", "team": "a"}))));
        assert!(!scope.contains(
            &k,
            &object(json!({"app": "web", "team": "a", "tier": "db"}))
        ));
        assert!(!scope.contains(&k, &object(json!({"app": "web"}))));
        assert!(!scope.contains(
            &k,
            &object(json!({"app": "web", "team": "a", "legacy": "1"}))
        ));
    }

    #[test]
    fn a_namespace_scope_holds_its_objects_and_the_namespace_itself() {
        let scope = Scope::new(Some("micro"), None).unwrap();
        assert!(scope.contains(&key("Service", "micro", "a"), &json!({})));
        assert!(!scope.contains(&key("Service", "other", "a"), &json!({})));
        assert!(scope.contains(&key("Namespace", "", "micro"), &json!({})));
        assert!(!scope.contains(&key("Namespace", "", "other"), &json!({})));
    }

    #[test]
    fn a_malformed_selector_is_an_error_naming_it() {
        let err = Scope::new(None, Some("app in (a,b)"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`app in (a`"), "{err}");
        assert!(Scope::new(None, Some("a=b,")).is_err());
    }
}
