//! The object store: every object by (resource, namespace, name), the global
//! resourceVersion counter, and the ordered event history watches replay and
//! follow.
pub mod meta;
pub mod resources;
pub mod selectors;

use resources::ResourceKind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, in resourceVersion order.
#[derive(Debug)]
pub struct WatchEvent {
    pub rv: u64,
    pub kind: &'static ResourceKind,
    pub etype: EventType,
    pub object: Value,
    /// The object before the change (for watches with a selector: an object that
    /// stops matching is reported DELETED).
    pub previous: Option<Value>,
}

type Key = (&'static str, &'static str, String, String);

pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: Vec<Arc<WatchEvent>>,
    tx: broadcast::Sender<Arc<WatchEvent>>,
    next_cluster_ip: u32,
    next_node_port: u32,
}

fn key(kind: &'static ResourceKind, ns: &str, name: &str) -> Key {
    (kind.group, kind.plural, ns.to_string(), name.to_string())
}

pub fn name_of(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or("")
}

pub fn namespace_of(obj: &Value) -> &str {
    obj["metadata"]["namespace"].as_str().unwrap_or("")
}

impl Store {
    pub fn new() -> Store {
        let (tx, _) = broadcast::channel(4096);
        Store {
            objects: BTreeMap::new(),
            rv: 1000,
            history: Vec::new(),
            tx,
            next_cluster_ip: 10,
            next_node_port: 30000,
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, kind: &'static ResourceKind, ns: &str, name: &str) -> Option<&Value> {
        self.objects.get(&key(kind, ns, name))
    }

    /// Objects of a kind, in one namespace or all, ordered by namespace and name.
    pub fn list(&self, kind: &'static ResourceKind, ns: Option<&str>) -> Vec<&Value> {
        // Keys sort by kind, then namespace: read only the kind's (or the
        // namespace's) range, not the whole store.
        let start = key(kind, ns.unwrap_or(""), "");
        self.objects
            .range(start..)
            .take_while(|((g, p, n, _), _)| {
                *g == kind.group && *p == kind.plural && ns.is_none_or(|ns| ns == n)
            })
            .map(|(_, v)| v)
            .collect()
    }

    /// Stores a new or changed object under the next resourceVersion; returns it as stored.
    pub fn put(&mut self, kind: &'static ResourceKind, mut obj: Value) -> Value {
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        let k = key(kind, namespace_of(&obj), name_of(&obj));
        let previous = self.objects.insert(k, obj.clone());
        let etype = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.emit(kind, etype, obj.clone(), previous);
        obj
    }

    /// Removes an object; the DELETED event carries it with a new resourceVersion.
    pub fn remove(&mut self, kind: &'static ResourceKind, ns: &str, name: &str) -> Option<Value> {
        let mut obj = self.objects.remove(&key(kind, ns, name))?;
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = Value::String(self.rv.to_string());
        self.emit(kind, EventType::Deleted, obj.clone(), None);
        Some(obj)
    }

    fn emit(
        &mut self,
        kind: &'static ResourceKind,
        etype: EventType,
        object: Value,
        previous: Option<Value>,
    ) {
        let event = Arc::new(WatchEvent {
            rv: self.rv,
            kind,
            etype,
            object,
            previous,
        });
        self.history.push(event.clone());
        let _ = self.tx.send(event);
    }

    /// Events after `rv` (already happened) plus a receiver for the ones to come;
    /// taken under the store lock, so nothing falls between the two.
    pub fn subscribe(
        &self,
        after_rv: u64,
    ) -> (Vec<Arc<WatchEvent>>, broadcast::Receiver<Arc<WatchEvent>>) {
        let start = self.history.partition_point(|e| e.rv <= after_rv);
        (self.history[start..].to_vec(), self.tx.subscribe())
    }

    pub fn subscribe_live(&self) -> broadcast::Receiver<Arc<WatchEvent>> {
        self.tx.subscribe()
    }

    /// The next free ClusterIP in 10.96.0.0/12.
    pub fn allocate_cluster_ip(&mut self) -> String {
        let n = self.next_cluster_ip;
        self.next_cluster_ip += 1;
        format!("10.96.{}.{}", n / 256, n % 256)
    }

    /// The next free port of the NodePort range 30000-32767.
    pub fn allocate_node_port(&mut self) -> u32 {
        let used: Vec<u64> = self
            .objects
            .iter()
            .filter(|((g, p, _, _), _)| g.is_empty() && *p == "services")
            .flat_map(|(_, svc)| {
                svc["spec"]["ports"]
                    .as_array()
                    .map(|ports| {
                        ports
                            .iter()
                            .filter_map(|p| p["nodePort"].as_u64())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect();
        loop {
            let port = self.next_node_port;
            self.next_node_port = if port >= 32767 { 30000 } else { port + 1 };
            if !used.contains(&(port as u64)) {
                return port;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::resources::find;
    use serde_json::json;

    #[test]
    fn list_returns_one_kind_in_one_namespace_or_all() {
        let configmaps = find("", "v1", "configmaps").unwrap();
        let secrets = find("", "v1", "secrets").unwrap();
        let services = find("", "v1", "services").unwrap();
        let mut store = Store::new();
        for (kind, ns, name) in [
            (configmaps, "a", "x"),
            (configmaps, "b", "y"),
            (configmaps, "b", "z"),
            (secrets, "a", "s"),
            (services, "b", "svc"),
        ] {
            store.put(kind, json!({"metadata": {"namespace": ns, "name": name}}));
        }
        let names =
            |kind, ns| -> Vec<&str> { store.list(kind, ns).into_iter().map(name_of).collect() };
        assert_eq!(names(configmaps, None), ["x", "y", "z"]);
        assert_eq!(names(configmaps, Some("b")), ["y", "z"]);
        assert_eq!(names(configmaps, Some("c")), Vec::<&str>::new());
        assert_eq!(names(secrets, None), ["s"]);
        assert_eq!(names(services, Some("a")), Vec::<&str>::new());
    }
}
