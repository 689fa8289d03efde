//! The live side, kept current by watches instead of polling: one kube
//! runtime watcher per (kind, namespace) the environment uses, selected by
//! its ApplySet label, plus one for its inventory ConfigMap. Each watcher
//! lists once, then follows the watch; on an error it backs off and starts
//! again with a list. Every change lands in
//! a shared [`Store`] and wakes the environment's worker through a
//! [`Notify`], so N viewers cost the API server nothing more.

use crate::gitops::cluster::Cluster;
use crate::gitops::inventory::Inventory;
use crate::gitops::kinds::{KindInfo, ObjectKey};
use crate::gitops::live::{self, Live};
use crate::gitops::source::Desired;
use crate::ownership::{self, Owner};
use futures::StreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// A watch asks the server to end it after this long, below the client's
/// 60 s read timeout (`cluster::connect`), so a quiet watch ends cleanly and
/// is resumed from its resourceVersion rather than failing.
const WATCH_TIMEOUT_SECS: u32 = 50;

/// What one watcher follows: a kind in a namespace ("" when cluster-scoped
/// or for every namespace) selected by a label selector.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope {
    pub kind: &'static str,
    pub group: &'static str,
    pub namespace: String,
    pub selector: String,
}

#[derive(Default)]
struct Followed {
    objects: HashMap<ObjectKey, Value>,
    /// Objects of a list in progress; replace `objects` at its end.
    listing: Option<HashMap<ObjectKey, Value>>,
    /// The first list has completed.
    listed: bool,
    error: Option<String>,
}

/// Everything the watchers know, by scope.
#[derive(Default)]
pub struct Store {
    scopes: BTreeMap<Scope, Followed>,
    inventory_scope: Option<Scope>,
}

pub type Shared = Arc<Mutex<Store>>;

pub fn lock(store: &Shared) -> std::sync::MutexGuard<'_, Store> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}

impl Store {
    /// Every watcher has listed and none is failing.
    pub fn live_and_complete(&self) -> bool {
        self.scopes.values().all(|f| f.listed && f.error.is_none())
    }

    /// The first failing watcher's error.
    pub fn error(&self) -> Option<String> {
        self.scopes.values().find_map(|f| f.error.clone())
    }

    /// The live state as `gitops::live::fetch` would have read it: the
    /// members of the ApplySet, and the environment's inventory.
    pub fn live(&self, owner: &Owner) -> Live {
        let name = owner.inventory_name();
        let mut objects = HashMap::new();
        let mut inventory = None;
        for (scope, followed) in &self.scopes {
            if Some(scope) == self.inventory_scope.as_ref() {
                inventory = followed
                    .objects
                    .values()
                    .find(|cm| cm.pointer("/metadata/name").and_then(Value::as_str) == Some(&name))
                    .map(Inventory::from_configmap);
            } else {
                objects.extend(followed.objects.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        Live {
            members: objects.keys().cloned().collect(),
            in_scope: objects.keys().cloned().collect(),
            objects,
            inventory,
            elsewhere: Vec::new(),
        }
    }
}

/// The scopes `desired` needs: its kinds in their namespaces, the kinds its
/// inventory lists (objects removed from git), and the inventory itself.
pub fn scopes(desired: &Desired, inventory: Option<&Inventory>) -> (BTreeSet<Scope>, Scope) {
    let owner = desired.owner();
    let selector = owner.member_selector();
    let scope = |info: &'static KindInfo, ns: &str| Scope {
        kind: info.kind,
        group: info.group,
        namespace: if info.namespaced { ns } else { "" }.to_string(),
        selector: selector.clone(),
    };
    let mut all: BTreeSet<Scope> = desired
        .objects
        .iter()
        .map(|o| scope(o.kind, &o.key.namespace))
        .collect();
    for key in inventory.iter().flat_map(|i| i.objects.iter()) {
        if let Some(info) = key.info() {
            all.insert(scope(info, &key.namespace));
        }
    }
    let inventory = Scope {
        kind: "ConfigMap",
        group: "",
        namespace: owner.namespace.clone(),
        selector: ownership::inventory_selector(&owner.env),
    };
    all.insert(inventory.clone());
    (all, inventory)
}

/// The running watchers of one environment; dropping it stops them.
pub struct Watchers {
    cluster: Cluster,
    store: Shared,
    changed: Arc<Notify>,
    running: BTreeMap<Scope, JoinHandle<()>>,
}

impl Watchers {
    pub fn new(cluster: Cluster, store: Shared, changed: Arc<Notify>) -> Watchers {
        Watchers {
            cluster,
            store,
            changed,
            running: BTreeMap::new(),
        }
    }

    /// Start the watchers `wanted` adds, stop those it no longer has.
    pub fn follow(&mut self, wanted: &BTreeSet<Scope>, inventory: &Scope) {
        self.running.retain(|scope, task| {
            let keep = wanted.contains(scope);
            if !keep {
                task.abort();
            }
            keep
        });
        {
            let mut store = lock(&self.store);
            store.scopes.retain(|scope, _| wanted.contains(scope));
            store.inventory_scope = Some(inventory.clone());
            for scope in wanted {
                store.scopes.entry(scope.clone()).or_default();
            }
        }
        for scope in wanted {
            if self.running.contains_key(scope) {
                continue;
            }
            let Some(info) = crate::gitops::kinds::by_group_kind(scope.group, scope.kind) else {
                continue;
            };
            let task = tokio::spawn(follow(
                self.cluster.clone(),
                info,
                scope.clone(),
                self.store.clone(),
                self.changed.clone(),
            ));
            self.running.insert(scope.clone(), task);
        }
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        for task in self.running.values() {
            task.abort();
        }
    }
}

/// One watcher, until aborted: its events update the store. A watch that
/// ends normally (the server's timeout) is resumed by kube's watcher from its
/// resourceVersion, without a list. After an error the watcher is started
/// afresh, after a backoff: its first list tells "reachable again" for sure,
/// also from a server that lost its history (a restarted test server, which
/// would accept an old resourceVersion and stay silent).
async fn follow(
    cluster: Cluster,
    info: &'static KindInfo,
    scope: Scope,
    store: Shared,
    changed: Arc<Notify>,
) {
    let mut backoff = Backoff::default();
    loop {
        let api = cluster.api(info, &scope.namespace);
        let config = watcher::Config::default()
            .labels(&scope.selector)
            .timeout(WATCH_TIMEOUT_SECS);
        let mut events = watcher::watcher(api, config).boxed();
        while let Some(event) = events.next().await {
            let failed = event.is_err();
            let wake = {
                let mut store = lock(&store);
                let Some(followed) = store.scopes.get_mut(&scope) else {
                    return;
                };
                let wake = apply(&cluster, info, followed, event);
                if followed.listed && followed.error.is_none() {
                    backoff.reset();
                }
                wake
            };
            if wake {
                changed.notify_one();
            }
            if failed {
                break;
            }
        }
        tokio::time::sleep(backoff.next().unwrap_or(LAST_RETRY)).await;
    }
}

/// Record one watcher event; true when the view may have changed.
fn apply(
    cluster: &Cluster,
    info: &'static KindInfo,
    followed: &mut Followed,
    event: Result<Event<kube::api::DynamicObject>, watcher::Error>,
) -> bool {
    let entry = |object: kube::api::DynamicObject| {
        let value = live::with_type(info, serde_json::to_value(object).ok()?);
        Some((live::key_of(info, &value)?, value))
    };
    match event {
        Ok(Event::Init) => {
            followed.listing = Some(HashMap::new());
            false
        }
        Ok(Event::InitApply(object)) => {
            if let (Some(listing), Some((key, value))) = (followed.listing.as_mut(), entry(object))
            {
                listing.insert(key, value);
            }
            false
        }
        Ok(Event::InitDone) => {
            followed.objects = followed.listing.take().unwrap_or_default();
            followed.listed = true;
            followed.error = None;
            true
        }
        Ok(Event::Apply(object)) => {
            if let Some((key, value)) = entry(object) {
                followed.objects.insert(key, value);
            }
            followed.error = None;
            true
        }
        Ok(Event::Delete(object)) => {
            if let Some((key, _)) = entry(object) {
                followed.objects.remove(&key);
            }
            true
        }
        Err(err) => {
            let message = describe(cluster, info, err);
            let changed = followed.error.as_ref() != Some(&message);
            followed.error = Some(message);
            changed
        }
    }
}

/// The watcher's error in `Cluster::explain`'s wording.
fn describe(cluster: &Cluster, info: &KindInfo, err: watcher::Error) -> String {
    let what = format!("watching {}", info.plural);
    let explained = match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => cluster.explain(&what, e),
        other => anyhow::anyhow!("{what}: {other}"),
    };
    crate::cli::one_line(&explained)
}

/// Restart a failed watch after 0.5 s, doubling up to 5 s: a dashboard should
/// notice a cluster that is back within seconds, and a failed request to a
/// down server costs it nothing.
struct Backoff {
    next: Duration,
}

const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(5);

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: FIRST_RETRY }
    }
}

impl Iterator for Backoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let now = self.next;
        self.next = (now * 2).min(LAST_RETRY);
        Some(now)
    }
}

impl Backoff {
    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u128> = (0..6)
            .map(|_| backoff.next().unwrap().as_millis())
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 5000, 5000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(FIRST_RETRY));
    }
}
