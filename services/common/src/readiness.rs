//! Readiness: each dependency registers a flag; `/readyz` is 200 only when all flags are up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The set of readiness checks of one service. Cheap to clone (shared state).
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<(String, ReadyFlag)>>>,
}

/// One dependency's state, flipped by the background task that connects to it.
#[derive(Clone, Default)]
pub struct ReadyFlag(Arc<AtomicBool>);

impl ReadyFlag {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a dependency named `name`; it starts not ready.
    pub fn register(&self, name: &str) -> ReadyFlag {
        let flag = ReadyFlag::default();
        self.checks
            .lock()
            .expect("readiness lock")
            .push((name.to_string(), flag.clone()));
        flag
    }

    /// Names of the dependencies that are not ready (empty = ready).
    pub fn not_ready(&self) -> Vec<String> {
        self.checks
            .lock()
            .expect("readiness lock")
            .iter()
            .filter(|(_, flag)| !flag.is_ready())
            .map(|(name, _)| name.clone())
            .collect()
    }

    pub fn is_ready(&self) -> bool {
        self.not_ready().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_flag_is_up() {
        let readiness = Readiness::new();
        assert!(readiness.is_ready(), "no checks: ready");
        let db = readiness.register("postgres");
        let queue = readiness.clone().register("redis");
        assert_eq!(readiness.not_ready(), vec!["postgres", "redis"]);
        db.set(true);
        assert_eq!(readiness.not_ready(), vec!["redis"]);
        queue.set(true);
        assert!(readiness.is_ready());
        db.set(false);
        assert_eq!(readiness.not_ready(), vec!["postgres"]);
    }
}
