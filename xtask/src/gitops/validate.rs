//! Manifest checks before anything is sent: the identity fields are strings,
//! names and namespaces follow Kubernetes' rules for their kind, labels and
//! annotations are well-formed, and every field has the type the Kubernetes
//! API declares (through the k8s-openapi types). Each error names the field.
//!
//! Without this, `namespace: 5` silently became the default namespace and a
//! name `a/b` became a 404 and an inventory line nobody can parse.

use super::kinds::KindInfo;
use anyhow::{Result, anyhow, bail};
use k8s_openapi::api::{
    apps::v1 as apps, core::v1 as core, networking::v1 as networking, policy::v1 as policy,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The rule a kind's names follow in kube-apiserver's validation.
#[derive(Clone, Copy)]
enum NameRule {
    /// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
    Label,
    /// RFC 1035 label: as a 1123 label, but starting with a letter (Services).
    Label1035,
    /// RFC 1123 subdomain: labels joined by `.`, at most 253.
    Subdomain,
}

fn name_rule(kind: &str) -> NameRule {
    match kind {
        "Namespace" => NameRule::Label,
        "Service" => NameRule::Label1035,
        _ => NameRule::Subdomain,
    }
}

impl NameRule {
    fn check(self, name: &str) -> Result<(), &'static str> {
        let ok = match self {
            NameRule::Label => is_label(name),
            NameRule::Label1035 => {
                is_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase())
            }
            NameRule::Subdomain => name.len() <= 253 && name.split('.').all(is_label),
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            NameRule::Label => {
                "a DNS-1123 label: lower-case letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters"
            }
            NameRule::Label1035 => {
                "a DNS-1035 label: lower-case letters, digits and `-`, starting with a letter, at most 63 characters"
            }
            NameRule::Subdomain => {
                "a DNS-1123 subdomain: lower-case letters, digits, `-` and `.`, at most 253 characters"
            }
        })
    }
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A label or annotation key: `[prefix/]name`, prefix a DNS subdomain, name
/// at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(|p| NameRule::Subdomain.check(p).is_ok());
    prefix_ok && is_label_value(name) && !name.is_empty()
}

/// A label value: empty, or at most 63 of `[A-Za-z0-9_.-]`, alphanumeric at both ends.
fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && v.starts_with(|c: char| c.is_ascii_alphanumeric())
            && v.ends_with(|c: char| c.is_ascii_alphanumeric()))
}

/// `metadata.<field>` as a string, if present; an error when it is another type.
pub fn metadata_string<'v>(object: &'v Value, field: &str) -> Result<Option<&'v str>> {
    match object.pointer(&format!("/metadata/{field}")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => bail!("metadata.{field} must be a string, not {other}"),
    }
}

/// Check one object of `kind` (namespace already filled in where it applies).
pub fn check(kind: &KindInfo, object: &Value) -> Result<()> {
    let name = metadata_string(object, "name")?.ok_or_else(|| anyhow!("no metadata.name"))?;
    name_rule(kind.kind).check(name).map_err(|rule| {
        anyhow!(
            "metadata.name `{name}` is not a valid {} name: it must be {rule}",
            kind.kind
        )
    })?;
    if let Some(namespace) = metadata_string(object, "namespace")? {
        if !kind.namespaced {
            bail!(
                "metadata.namespace: {} is cluster-scoped and takes no namespace",
                kind.kind
            );
        }
        NameRule::Label.check(namespace).map_err(|rule| {
            anyhow!("metadata.namespace `{namespace}` is not a valid namespace: it must be {rule}")
        })?;
    }
    check_string_map(object, "labels", true)?;
    check_string_map(object, "annotations", false)?;
    check_types(kind, object)
}

fn check_string_map(object: &Value, field: &str, label_values: bool) -> Result<()> {
    let Some(map) = object.pointer(&format!("/metadata/{field}")) else {
        return Ok(());
    };
    let map = map
        .as_object()
        .ok_or_else(|| anyhow!("metadata.{field} must be a mapping"))?;
    for (key, value) in map {
        if !is_qualified_name(key) {
            bail!(
                "metadata.{field}: `{key}` is not a valid key ([prefix/]name, name at most 63 of A-Z a-z 0-9 - _ .)"
            );
        }
        let Value::String(text) = value else {
            bail!("metadata.{field}.{key} must be a string, not {value} (quote it)");
        };
        if label_values && !is_label_value(text) {
            bail!(
                "metadata.{field}.{key}: `{text}` is not a valid label value (at most 63 of A-Z a-z 0-9 - _ ., alphanumeric at both ends)"
            );
        }
    }
    Ok(())
}

/// Every field has the type the API declares: deserialize into the
/// k8s-openapi type and name the first field that does not fit.
fn check_types(kind: &KindInfo, object: &Value) -> Result<()> {
    match kind.kind {
        "Namespace" => typed::<core::Namespace>(object),
        "ServiceAccount" => typed::<core::ServiceAccount>(object),
        "ConfigMap" => typed::<core::ConfigMap>(object),
        "Secret" => typed::<core::Secret>(object),
        "PersistentVolumeClaim" => typed::<core::PersistentVolumeClaim>(object),
        "Service" => typed::<core::Service>(object),
        "StatefulSet" => typed::<apps::StatefulSet>(object),
        "Deployment" => typed::<apps::Deployment>(object),
        "PodDisruptionBudget" => typed::<policy::PodDisruptionBudget>(object),
        "NetworkPolicy" => typed::<networking::NetworkPolicy>(object),
        other => bail!("no type check for kind {other}"),
    }
}

fn typed<T: DeserializeOwned>(object: &Value) -> Result<()> {
    serde_path_to_error::deserialize::<_, T>(object)
        .map(drop)
        .map_err(|e| anyhow!("{}: {}", e.path(), e.inner()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gitops::kinds;
    use serde_json::json;

    fn error(api_version: &str, kind: &str, object: Value) -> String {
        let info = kinds::lookup(api_version, kind).unwrap();
        check(info, &object).unwrap_err().to_string()
    }

    #[test]
    fn names_and_namespaces_follow_the_kinds_rules() {
        let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "micro"}});
        assert!(check(kinds::lookup("v1", "ConfigMap").unwrap(), &cm("a.b-c")).is_ok());
        assert!(error("v1", "ConfigMap", cm("a/b")).contains("metadata.name `a/b`"));
        assert!(error("v1", "ConfigMap", cm("Upper")).contains("DNS-1123 subdomain"));
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web", "namespace": "m"}});
        assert!(error("v1", "Service", svc).contains("DNS-1035"));
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a.b"}});
        assert!(error("v1", "Namespace", ns).contains("DNS-1123 label"));
        let numeric = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": 5}});
        assert!(error("v1", "ConfigMap", numeric).contains("metadata.namespace must be a string"));
    }

    #[test]
    fn labels_must_be_string_valued_and_well_formed() {
        let with = |labels: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": labels}});
        assert!(
            error("v1", "ConfigMap", with(json!({"n": 1})))
                .contains("metadata.labels.n must be a string")
        );
        assert!(error("v1", "ConfigMap", with(json!({"bad key!": "x"}))).contains("`bad key!`"));
        assert!(
            error("v1", "ConfigMap", with(json!({"k": "-x"}))).contains("not a valid label value")
        );
    }

    #[test]
    fn field_types_are_checked_with_the_field_path() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},
            "spec": {"replicas": "three", "selector": {}, "template": {}}});
        let err = error("apps/v1", "Deployment", deployment);
        assert!(err.starts_with("spec.replicas:"), "{err}");
    }
}
