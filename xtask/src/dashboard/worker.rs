//! One environment's loop: read HEAD, connect (with the context guard),
//! start the watchers, and recompute the snapshot whenever a watcher or git
//! says something changed. Git and the kubeconfig are polled locally (no
//! request); the cluster is only watched. Any failure becomes the
//! environment's banner and the loop tries again.

use super::compute::{self, ConfirmCache};
use super::hub::Hub;
use super::state::Banner;
use super::watch::{self, Shared, Watchers};
use crate::gitops::cluster::{self, Cluster};
use crate::gitops::source::{self, Desired};
use crate::image::record::ImageRecord;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// How often HEAD and the kubeconfig's current context are looked at.
const POLL: Duration = Duration::from_secs(1);
/// Events arriving together (a sync writes many objects) make one recompute.
const SETTLE: Duration = Duration::from_millis(50);
/// Wait before connecting again after a failure to connect.
const RECONNECT: Duration = Duration::from_secs(2);

/// What a look at git and the kubeconfig found.
enum Poll {
    Same,
    Moved,
    Reconnect,
}

pub struct Worker {
    pub env: String,
    pub root: PathBuf,
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub images: PathBuf,
    pub hub: Arc<Hub>,
}

fn banner(kind: &'static str, message: String) -> Option<Banner> {
    Some(Banner { kind, message })
}

impl Worker {
    /// Runs until the process ends.
    pub async fn run(self) {
        loop {
            match self.connect().await {
                Ok((cluster, desired)) => self.follow(cluster, desired).await,
                Err(why) => {
                    self.hub.set_banner(&self.env, Some(why));
                    tokio::time::sleep(RECONNECT).await;
                }
            }
        }
    }

    /// HEAD's env.yaml and manifests, and a client for its context.
    async fn connect(&self) -> Result<(Cluster, Desired), Banner> {
        let error = |kind, e: anyhow::Error| Banner {
            kind,
            message: crate::cli::one_line(&e),
        };
        let desired = source::read(&self.root, &self.env, None).map_err(|e| error("error", e))?;
        if let Some(why) = self.wrong_context(&desired) {
            return Err(why);
        }
        let cluster = cluster::connect(
            self.kubeconfig.as_deref(),
            self.context.as_deref(),
            &desired.env,
        )
        .await
        .map_err(|e| error("error", e))?;
        Ok((cluster, desired))
    }

    /// The banner when the kubeconfig's current context is not env.yaml's
    /// (and `--context` does not override it).
    fn wrong_context(&self, desired: &Desired) -> Option<Banner> {
        if self.context.is_some() {
            return None;
        }
        match cluster::current_context(self.kubeconfig.as_deref()) {
            Ok(current) if current.as_deref() == Some(desired.env.context.as_str()) => None,
            Ok(current) => banner(
                "wrong-context",
                format!(
                    "wrong context: the kubeconfig's current context is `{}` but `{}` deploys to `{}` \
                     (kubectl config use-context {}); not showing another cluster",
                    current.unwrap_or_default(),
                    desired.env.name,
                    desired.env.context,
                    desired.env.context
                ),
            ),
            Err(e) => banner("error", crate::cli::one_line(&e)),
        }
    }

    /// Watch and recompute until the context or env.yaml's target changes
    /// (then the caller connects again).
    async fn follow(&self, cluster: Cluster, mut desired: Desired) {
        let store = Shared::default();
        let changed = Arc::new(Notify::new());
        let mut watchers = Watchers::new(cluster.clone(), store.clone(), changed.clone());
        let (scopes, inventory) = watch::scopes(&desired, None);
        watchers.follow(&scopes, &inventory);
        let mut cache = ConfirmCache::default();
        let mut poll = tokio::time::interval(POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = changed.notified() => tokio::time::sleep(SETTLE).await,
                _ = poll.tick() => match self.poll_git(&mut desired) {
                    Poll::Same => continue,
                    Poll::Moved => {}
                    Poll::Reconnect => return,
                },
            }
            self.recompute(&cluster, &desired, &store, &mut watchers, &mut cache)
                .await;
        }
    }

    /// The local checks of every tick: the kubeconfig's context, then HEAD.
    /// No request is made.
    fn poll_git(&self, desired: &mut Desired) -> Poll {
        if let Some(why) = self.wrong_context(desired) {
            self.hub.set_banner(&self.env, Some(why));
            return Poll::Reconnect;
        }
        let next = match source::resolve(&self.root, None) {
            Ok(head) if head == desired.commit => return Poll::Same,
            Ok(_) => source::read(&self.root, &self.env, None),
            Err(e) => Err(e),
        };
        match next {
            // Another context or namespace: other watches, another client.
            Ok(next)
                if next.env.context != desired.env.context
                    || next.env.namespace != desired.env.namespace =>
            {
                Poll::Reconnect
            }
            Ok(next) => {
                *desired = next;
                Poll::Moved
            }
            Err(e) => {
                let why = banner("error", crate::cli::one_line(&e));
                self.hub.set_banner(&self.env, why);
                Poll::Same
            }
        }
    }

    async fn recompute(
        &self,
        cluster: &Cluster,
        desired: &Desired,
        store: &Shared,
        watchers: &mut Watchers,
        cache: &mut ConfirmCache,
    ) {
        let (complete, error, live) = {
            let store = watch::lock(store);
            (
                store.live_and_complete(),
                store.error(),
                store.live(&desired.owner()),
            )
        };
        if let Some(error) = error {
            let message = format!("cluster unreachable: {error}; showing what was last seen");
            self.hub
                .set_banner(&self.env, banner("unreachable", message));
            return;
        }
        // Kinds only the inventory names (removed from git) are watched too.
        let (scopes, inventory) = watch::scopes(desired, live.inventory.as_ref());
        watchers.follow(&scopes, &inventory);
        if !complete || !watch::lock(store).live_and_complete() {
            return;
        }
        let record = ImageRecord::load_from(&self.images).unwrap_or_default();
        match compute::snapshot(cluster, &self.root, desired, live, cache, &record).await {
            Ok(state) => self.hub.publish(state),
            Err(e) => {
                let message = format!("cluster unreachable: {}", crate::cli::one_line(&e));
                self.hub
                    .set_banner(&self.env, banner("unreachable", message));
            }
        }
    }
}
