//! Which value of a service setting render uses: env.yaml's (per service,
//! then environment-wide) or the definition's, and a note when env.yaml's
//! differs from what the definition says, so `replicas: 3` in
//! `deployment/webapp.yaml` never silently renders as 1.

use super::definition::ServiceDefinition;
use crate::environment::{Environment, Override};
use std::collections::BTreeMap;

/// env.yaml's `setting` replaced `defined` in the definition `file`.
pub struct Note {
    setting: String,
    defined: String,
    file: String,
}

/// The replicas of `def` and, when env.yaml changes the definition's value,
/// a note naming the env.yaml setting.
pub fn replicas(
    env: &Environment,
    over: &Override,
    def: &ServiceDefinition,
) -> (u32, Option<Note>) {
    let (value, setting) = match (over.replicas, env.replicas) {
        (Some(n), _) => (n, format!("services.{}.replicas: {n}", def.name)),
        (None, Some(n)) => (n, format!("replicas: {n}")),
        (None, None) => return (def.replicas, None),
    };
    let note =
        (value != def.replicas).then(|| note(setting, format!("replicas: {}", def.replicas), def));
    (value, note)
}

/// The size name of `def` (empty: none) and, when env.yaml's differs from
/// the definition's, a note.
pub fn size(over: &Override, def: &ServiceDefinition) -> (String, Option<Note>) {
    match (&over.size, &def.size) {
        (Some(chosen), Some(defined)) if chosen != defined => {
            let setting = format!("services.{}.size: {chosen}", def.name);
            let note = note(setting, format!("size: {defined}"), def);
            (chosen.clone(), Some(note))
        }
        (Some(chosen), _) => (chosen.clone(), None),
        (None, defined) => (defined.clone().unwrap_or_default(), None),
    }
}

fn note(setting: String, defined: String, def: &ServiceDefinition) -> Note {
    Note {
        setting,
        defined,
        file: def.file.display().to_string(),
    }
}

/// One line per env.yaml setting and replaced value, naming every
/// definition it applies to: `env.yaml `replicas: 2` overrides `replicas: 1`
/// in deployment/a.yaml, deployment/b.yaml`.
pub fn lines(env: &Environment, notes: Vec<Note>) -> Vec<String> {
    let mut grouped: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for n in notes {
        grouped
            .entry((n.setting, n.defined))
            .or_default()
            .push(n.file);
    }
    grouped
        .into_iter()
        .map(|((setting, defined), files)| {
            format!(
                "{} `{setting}` overrides `{defined}` in {}",
                env.file.display(),
                files.join(", ")
            )
        })
        .collect()
}
