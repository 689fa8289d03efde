//! The shared state between the environment workers and the HTTP side: the
//! latest snapshot of each environment, the page's `<main>` rendered once
//! per change (not once per viewer), and a broadcast that wakes every open
//! `/events` stream.

use super::html;
use super::state::{Banner, EnvState, Snapshot};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

pub struct Hub {
    inner: Mutex<Inner>,
    changed: broadcast::Sender<u64>,
}

struct Inner {
    /// Environment names in `--env` order.
    order: Vec<String>,
    envs: HashMap<String, EnvState>,
    main: Arc<str>,
    version: u64,
}

impl Hub {
    /// Every environment starts as "connecting" until its worker reports.
    pub fn new(envs: &[(String, String)]) -> Arc<Hub> {
        let mut inner = Inner {
            order: envs.iter().map(|(name, _)| name.clone()).collect(),
            envs: HashMap::new(),
            main: Arc::from(""),
            version: 0,
        };
        for (name, context) in envs {
            inner.envs.insert(
                name.clone(),
                EnvState {
                    name: name.clone(),
                    context: context.clone(),
                    banner: Some(Banner {
                        kind: "connecting",
                        message: format!("connecting to context `{context}`…"),
                    }),
                    ..EnvState::default()
                },
            );
        }
        inner.main = Arc::from(html::main(&inner.snapshot()));
        Arc::new(Hub {
            inner: Mutex::new(inner),
            changed: broadcast::channel(16).0,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new snapshot of one environment; viewers hear of it only when the
    /// page it renders differs.
    pub fn publish(&self, state: EnvState) {
        let mut inner = self.lock();
        inner.envs.insert(state.name.clone(), state);
        self.rerender(&mut inner);
    }

    /// Show (or clear) the banner of `env`, keeping the rest as last seen.
    pub fn set_banner(&self, env: &str, banner: Option<Banner>) {
        let mut inner = self.lock();
        let Some(state) = inner.envs.get_mut(env) else {
            return;
        };
        if state.banner == banner {
            return;
        }
        state.banner = banner;
        self.rerender(&mut inner);
    }

    fn rerender(&self, inner: &mut Inner) {
        let main = html::main(&inner.snapshot());
        if *inner.main == *main {
            return;
        }
        inner.main = Arc::from(main);
        inner.version += 1;
        // No receiver (no viewer) is not an error.
        let _ = self.changed.send(inner.version);
    }

    pub fn snapshot(&self) -> Snapshot {
        self.lock().snapshot()
    }

    /// The rendered `<main>` and its version.
    pub fn main(&self) -> (u64, Arc<str>) {
        let inner = self.lock();
        (inner.version, inner.main.clone())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<u64> {
        self.changed.subscribe()
    }
}

impl Inner {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            environments: self
                .order
                .iter()
                .filter_map(|name| self.envs.get(name).cloned())
                .collect(),
        }
    }
}
