//! One sync at a time per environment: a `coordination.k8s.io/v1` Lease
//! beside the inventory, held while syncing, renewed in the background,
//! released at the end, and taken over once its holder stopped renewing it
//! (a crashed or killed sync) for longer than its duration.
//!
//! Every write carries the resourceVersion read, so two syncs racing for a
//! free lease cannot both win: the loser gets a conflict and reads again.

use super::cluster::Cluster;
use crate::ownership::Owner;
use anyhow::{Result, anyhow, bail};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long a lease stays valid without renewal.
const DURATION: Duration = Duration::from_secs(30);
/// Renewed this often, so two missed renewals still keep it.
const RENEW_EVERY: Duration = Duration::from_secs(10);

/// A held lease. Call [`Held::release`] when done; if the process dies
/// instead, the lease expires after [`DURATION`].
pub struct Held {
    api: Api<Lease>,
    name: String,
    holder: String,
    renewer: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

/// The lease cannot be created: its namespace does not exist yet (a first
/// sync). The caller creates the namespace and asks again.
#[derive(Debug)]
pub struct NamespaceMissing(pub String);

impl std::fmt::Display for NamespaceMissing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "namespace `{}` does not exist", self.0)
    }
}

impl std::error::Error for NamespaceMissing {}

/// `user@host pid N`: what a second sync prints about the first.
fn holder_identity() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{user}@{host} pid {}", std::process::id())
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// Who holds `lease` and until when, if it is held and not expired.
fn current_holder(lease: &Lease) -> Option<(String, Timestamp)> {
    let spec = lease.spec.as_ref()?;
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty())?;
    let renewed = spec.renew_time.as_ref().or(spec.acquire_time.as_ref())?.0;
    let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    let expires = renewed
        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds))
        .ok()?;
    (expires > Timestamp::now()).then_some((holder, expires))
}

/// Take the sync lease of `owner`, waiting up to `wait` while another sync holds it.
pub async fn acquire(cluster: &Cluster, owner: &Owner, wait: Duration) -> Result<Held> {
    let api: Api<Lease> = Api::namespaced(cluster.client.clone(), &owner.namespace);
    let name = owner.lease_name();
    let holder = holder_identity();
    let started = Instant::now();
    let mut announced = false;
    loop {
        let existing = api
            .get_opt(&name)
            .await
            .map_err(|e| cluster.explain(&format!("reading the sync lease Lease/{name}"), e))?;
        let attempt = match existing {
            None => match create(&api, owner, &name, &holder).await {
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    return Err(anyhow!(NamespaceMissing(owner.namespace.clone())));
                }
                other => other,
            },
            Some(lease) => match current_holder(&lease) {
                Some((other, expires)) if other != holder => {
                    let waited = started.elapsed();
                    if waited >= wait {
                        bail!(
                            "another sync of `{}` is running: {other} holds Lease {}/{name} (until {}, renewed while it runs); \
                             nothing was changed. Try again when it is done{}",
                            owner.env,
                            owner.namespace,
                            expires.strftime("%H:%M:%S UTC"),
                            if wait.is_zero() {
                                " or pass --lock-timeout 2m to wait"
                            } else {
                                ""
                            }
                        );
                    }
                    if !announced {
                        eprintln!(
                            "waiting for the sync lease of `{}`: held by {other}",
                            owner.env
                        );
                        announced = true;
                    }
                    tokio::time::sleep(Duration::from_millis(500).min(wait - waited)).await;
                    continue;
                }
                _ => take(&api, lease, &holder).await,
            },
        };
        match attempt {
            Ok(()) => break,
            // Someone else wrote it between our read and write: read again.
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => {
                return Err(cluster.explain(&format!("taking the sync lease Lease/{name}"), e));
            }
        }
    }
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = tokio::spawn(renew_loop(
        api.clone(),
        name.clone(),
        holder.clone(),
        lost.clone(),
    ));
    Ok(Held {
        api,
        name,
        holder,
        renewer,
        lost,
    })
}

/// Writes name sync's field manager, like every other write of sync.
fn write_params() -> PostParams {
    PostParams {
        field_manager: Some(crate::ownership::FIELD_MANAGER.to_string()),
        ..PostParams::default()
    }
}

fn spec(holder: &str, transitions: i32, acquired: Option<MicroTime>) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(DURATION.as_secs() as i32),
        acquire_time: Some(acquired.unwrap_or_else(now)),
        renew_time: Some(now()),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

async fn create(api: &Api<Lease>, owner: &Owner, name: &str, holder: &str) -> kube::Result<()> {
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(owner.namespace.clone()),
            labels: Some(
                [(
                    crate::ownership::INVENTORY_LABEL.to_string(),
                    owner.env.clone(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(spec(holder, 0, None)),
    };
    api.create(&write_params(), &lease).await.map(drop)
}

/// Take over a free or expired lease (or our own), conditional on its resourceVersion.
async fn take(api: &Api<Lease>, mut lease: Lease, holder: &str) -> kube::Result<()> {
    let previous = lease.spec.clone().unwrap_or_default();
    let same = previous.holder_identity.as_deref() == Some(holder);
    let transitions = previous.lease_transitions.unwrap_or(0) + i32::from(!same);
    lease.spec = Some(spec(holder, transitions, None));
    let name = lease.metadata.name.clone().unwrap_or_default();
    api.replace(&name, &write_params(), &lease).await.map(drop)
}

async fn renew_loop(api: Api<Lease>, name: String, holder: String, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let renewed = async {
            let mut lease = api.get(&name).await?;
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(holder.as_str()) {
                return Ok::<_, kube::Error>(false);
            }
            spec.renew_time = Some(now());
            api.replace(&name, &write_params(), &lease).await?;
            Ok(true)
        };
        match renewed.await {
            Ok(true) => {}
            Ok(false) => {
                lost.store(true, Ordering::SeqCst);
                return;
            }
            // A passing error: the lease lasts two more renewals.
            Err(e) => eprintln!("warning: renewing the sync lease Lease/{name}: {e}"),
        }
    }
}

impl Held {
    /// An error if another sync took the lease over (we stalled past its
    /// duration): stop before writing anything more.
    pub fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(anyhow!(
                "lost the sync lease Lease/{} to another sync; stopped before writing more",
                self.name
            ));
        }
        Ok(())
    }

    /// Give the lease up at once (holder cleared), so the next sync need not
    /// wait for it to expire. A failure only delays the next sync.
    pub async fn release(self) {
        self.renewer.abort();
        let released = async {
            let mut lease = self.api.get(&self.name).await?;
            if let Some(spec) = lease.spec.as_mut()
                && spec.holder_identity.as_deref() == Some(self.holder.as_str())
            {
                spec.holder_identity = None;
                spec.lease_duration_seconds = Some(1);
                spec.renew_time = Some(now());
                self.api
                    .replace(&self.name, &write_params(), &lease)
                    .await?;
            }
            Ok::<_, kube::Error>(())
        };
        if let Err(e) = released.await {
            eprintln!(
                "warning: releasing the sync lease Lease/{}: {e} (it expires in {}s)",
                self.name,
                DURATION.as_secs()
            );
        }
    }
}
