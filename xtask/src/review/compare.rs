//! Pair the objects of two revisions of one environment and diff each pair.
//!
//! Objects are matched by kind, namespace and name (not by file), compared as
//! values (formatting and key order do not count), and shown as YAML with
//! sorted keys so that a diff holds only what changed. Secret values are
//! masked before any text is made of them.

use super::snapshot::Manifests;
use crate::gitops::normalize::{mask_secrets, same};
use crate::gitops::yaml;
use anyhow::{Result, anyhow};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// Identity of one object within an environment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectId {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for ObjectId {
    /// `Deployment micro/adderservice`, `Namespace micro`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Changed,
    Added,
    Deleted,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Changed => "changed",
            ChangeKind::Added => "added",
            ChangeKind::Deleted => "deleted",
        }
    }
}

/// One object that differs between base and head.
#[derive(Debug, Clone)]
pub struct ObjectChange {
    pub id: ObjectId,
    pub change: ChangeKind,
    /// The file it is in at head (at base for a deleted object).
    pub file: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// Unified diff of the YAML, Secret values masked.
    pub diff: String,
}

/// What differs in one environment.
#[derive(Debug, Default)]
pub struct EnvChanges {
    pub env: String,
    pub changes: Vec<ObjectChange>,
    pub unchanged: usize,
}

impl EnvChanges {
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.change == kind).count()
    }

    /// `1 changed, 0 added, 0 deleted (23 unchanged)`
    pub fn summary(&self) -> String {
        format!(
            "{} changed, {} added, {} deleted ({} unchanged)",
            self.count(ChangeKind::Changed),
            self.count(ChangeKind::Added),
            self.count(ChangeKind::Deleted),
            self.unchanged
        )
    }
}

/// A side of the comparison: which revision, for error messages.
pub struct Side<'a> {
    pub spec: &'a str,
    pub manifests: &'a Manifests,
}

type Objects = BTreeMap<ObjectId, (String, Value)>;

/// Compare environment `env` between `base` and `head`.
pub fn compare(env: &str, base: Side, head: Side) -> Result<EnvChanges> {
    let mut unchanged = 0;
    let mut before = Objects::new();
    let mut after = Objects::new();
    for (name, (id, bytes)) in &base.manifests.files {
        let objects = parse(env, base.spec, name, bytes)?;
        if head.manifests.files.get(name).is_some_and(|(h, _)| h == id) {
            // The same blob on both sides: nothing in it can differ.
            unchanged += objects.len();
            continue;
        }
        insert(&mut before, objects, env, base.spec)?;
    }
    for (name, (id, bytes)) in &head.manifests.files {
        if base.manifests.files.get(name).is_some_and(|(b, _)| b == id) {
            continue;
        }
        insert(
            &mut after,
            parse(env, head.spec, name, bytes)?,
            env,
            head.spec,
        )?;
    }
    let mut changes = Vec::new();
    for (id, (file, old)) in &before {
        match after.remove(id) {
            Some((_, new)) if same(old, &new) => unchanged += 1,
            Some((file, new)) => {
                changes.push(change(id, ChangeKind::Changed, file, Some(old), Some(&new)))
            }
            None => changes.push(change(
                id,
                ChangeKind::Deleted,
                file.clone(),
                Some(old),
                None,
            )),
        }
    }
    for (id, (file, new)) in after {
        changes.push(change(&id, ChangeKind::Added, file, None, Some(&new)));
    }
    changes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(EnvChanges {
        env: env.to_string(),
        changes,
        unchanged,
    })
}

fn parse(
    env: &str,
    spec: &str,
    name: &str,
    bytes: &[u8],
) -> Result<Vec<(ObjectId, String, Value)>> {
    let path = format!("{}/{name}", super::snapshot::manifests_path(env));
    let text = std::str::from_utf8(bytes).map_err(|_| anyhow!("`{spec}`: {path} is not UTF-8"))?;
    let documents =
        yaml::documents(text).map_err(|e| anyhow!("`{spec}`: {path}: not valid YAML: {e}"))?;
    documents
        .into_iter()
        .map(|value| {
            let id = identity(&value).map_err(|e| anyhow!("`{spec}`: {path}: {e}"))?;
            Ok((id, path.clone(), value))
        })
        .collect()
}

fn identity(value: &Value) -> Result<ObjectId> {
    let text = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
    let kind = text("/kind").ok_or_else(|| anyhow!("no kind"))?;
    let name = text("/metadata/name").ok_or_else(|| anyhow!("no metadata.name"))?;
    Ok(ObjectId {
        kind: kind.to_string(),
        namespace: text("/metadata/namespace").unwrap_or_default().to_string(),
        name: name.to_string(),
    })
}

fn insert(
    objects: &mut Objects,
    parsed: Vec<(ObjectId, String, Value)>,
    env: &str,
    spec: &str,
) -> Result<()> {
    for (id, file, value) in parsed {
        if let Some((first, _)) = objects.get(&id) {
            return Err(anyhow!(
                "`{spec}`: {first} and {file} both define {id} (environment {env})"
            ));
        }
        objects.insert(id, (file, value));
    }
    Ok(())
}

fn change(
    id: &ObjectId,
    kind: ChangeKind,
    file: String,
    before: Option<&Value>,
    after: Option<&Value>,
) -> ObjectChange {
    let diff = unified_diff(&file, before, after);
    ObjectChange {
        id: id.clone(),
        change: kind,
        file,
        before: before.cloned(),
        after: after.cloned(),
        diff,
    }
}

/// The unified diff of one object, base -> head, Secret values masked.
pub fn unified_diff(file: &str, before: Option<&Value>, after: Option<&Value>) -> String {
    let mut old = before.cloned().unwrap_or(Value::Null);
    let mut new = after.cloned().unwrap_or(Value::Null);
    mask_secrets(&mut old, &mut new);
    let (old, new) = (to_yaml(&old), to_yaml(&new));
    similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("base/{file}"), &format!("head/{file}"))
        .to_string()
}

fn to_yaml(value: &Value) -> String {
    if value.is_null() {
        String::new()
    } else {
        serde_yaml::to_string(value).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Oid;

    fn manifests(files: &[(&str, &str)]) -> Manifests {
        Manifests {
            files: files
                .iter()
                .map(|(name, text)| {
                    let id = Oid::hash_object(git2::ObjectType::Blob, text.as_bytes()).unwrap();
                    (name.to_string(), (id, text.as_bytes().to_vec()))
                })
                .collect(),
        }
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: micro\ndata:\n  k: v\n";

    #[test]
    fn formatting_does_not_count_and_secret_values_never_show() {
        let base = manifests(&[
            ("configmap-a.yaml", CM),
            (
                "secret-s.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {pw: hunter2}\n",
            ),
        ]);
        let head = manifests(&[
            (
                "configmap-a.yaml",
                "# reformatted\nkind: ConfigMap\napiVersion: v1\nmetadata: {namespace: micro, name: a}\ndata: {k: v}\n",
            ),
            (
                "secret-s.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {pw: swordfish}\n",
            ),
        ]);
        let result = compare(
            "aws",
            Side {
                spec: "b",
                manifests: &base,
            },
            Side {
                spec: "h",
                manifests: &head,
            },
        )
        .unwrap();
        assert_eq!(
            result.summary(),
            "1 changed, 0 added, 0 deleted (1 unchanged)"
        );
        let diff = &result.changes[0].diff;
        assert!(
            diff.contains("*** (after)") && diff.contains("*** (before)"),
            "{diff}"
        );
        assert!(
            !diff.contains("hunter2") && !diff.contains("swordfish"),
            "{diff}"
        );
    }

    #[test]
    fn bad_yaml_names_the_revision_and_the_file() {
        let bad = manifests(&[("x.yaml", "kind: [\n")]);
        let good = manifests(&[]);
        let err = compare(
            "aws",
            Side {
                spec: "base",
                manifests: &good,
            },
            Side {
                spec: "feature",
                manifests: &bad,
            },
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`feature`: environments/aws/manifests/x.yaml: not valid YAML"),
            "{err}"
        );
    }
}
