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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewers_hear_only_of_changes_to_the_page() {
        let hub = Hub::new(&[("minikube".to_string(), "minikube".to_string())]);
        let mut heard = hub.subscribe();
        let (start, main) = hub.main();
        assert!(main.contains("data-banner=\"connecting\""), "{main}");
        let live = EnvState {
            name: "minikube".into(),
            context: "minikube".into(),
            ..EnvState::default()
        };
        hub.publish(live.clone());
        assert_eq!(heard.try_recv().ok(), Some(start + 1));
        // The same snapshot again renders the same page: nobody is woken.
        hub.publish(live);
        hub.set_banner("minikube", None);
        assert!(heard.try_recv().is_err());
        hub.set_banner(
            "minikube",
            Some(Banner {
                kind: "unreachable",
                message: "cluster unreachable".into(),
            }),
        );
        assert_eq!(heard.try_recv().ok(), Some(start + 2));
        assert!(hub.main().1.contains("cluster unreachable"));
        assert_eq!(hub.snapshot().environments.len(), 1);
        // An environment the hub was not started with is ignored.
        hub.set_banner("other", None);
        assert!(heard.try_recv().is_err());
    }
}
