//! The worker's heartbeat: a key with a TTL that says "this worker is alive,
//! leave its processing list alone", plus the periodic reclaim of lists whose
//! owner stopped beating (pods that crashed and came back under a new name).

use std::time::Duration;

use micro_common::CancellationToken;
use micro_common::metrics::Counter;
use micro_common::redis::Redis;
use micro_common::retry::with_backoff;

use crate::queue::{self, Keys};

pub struct Heartbeat {
    pub keys: Keys,
    pub redis: Redis,
    pub ttl: Duration,
    pub requeued: Counter,
}

impl Heartbeat {
    async fn beat(&self) -> anyhow::Result<()> {
        let mut con = self.redis.connection()?;
        redis::cmd("SET")
            .arg(&self.keys.heartbeat)
            .arg("alive")
            .arg("EX")
            .arg(self.ttl.as_secs())
            .query_async::<()>(&mut con)
            .await?;
        Ok(())
    }

    async fn reclaim(&self) -> anyhow::Result<usize> {
        let mut con = self.redis.connection()?;
        let n = queue::reclaim_orphans(&mut con, &self.keys).await?;
        self.requeued.add(n as u64);
        Ok(n)
    }

    /// Before consuming: announce ourselves, put back what we (under this
    /// name) had taken before a crash, and what dead workers left behind.
    /// False if shut down meanwhile.
    pub async fn start_up(&self, shutdown: &CancellationToken) -> bool {
        with_backoff("recover unfinished messages", shutdown, || async {
            self.beat().await?;
            let mut con = self.redis.connection()?;
            let own = queue::requeue_all(&mut con, &self.keys.processing, &self.keys.queue).await?;
            if own > 0 {
                tracing::warn!(
                    entries = own,
                    "requeued messages left unfinished by this worker's previous run"
                );
                self.requeued.add(own as u64);
            }
            self.reclaim().await?;
            anyhow::Ok(())
        })
        .await
        .is_some()
    }

    /// Beats every third of the TTL and reclaims dead workers' lists once per
    /// TTL, until shutdown.
    pub async fn run(&self, shutdown: CancellationToken) {
        let period = self.ttl / 3;
        let mut ticks: u32 = 0;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.cancelled() => return,
            }
            if let Err(e) = self.beat().await {
                tracing::warn!(error = %format!("{e:#}"), "heartbeat failed");
            }
            ticks += 1;
            if ticks.is_multiple_of(3)
                && let Err(e) = self.reclaim().await
            {
                tracing::warn!(error = %format!("{e:#}"), "reclaiming dead workers' messages failed");
            }
        }
    }

    /// After the worker stopped: hand back anything it left unfinished and
    /// say we are gone. Best effort (a crash skips this; recovery covers it).
    pub async fn sign_off(&self) {
        let Ok(mut con) = self.redis.connection() else {
            return;
        };
        match queue::requeue_all(&mut con, &self.keys.processing, &self.keys.queue).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                entries = n,
                "requeued unfinished messages for another worker"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "could not requeue unfinished messages; the next start-up will")
            }
        }
        let _: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(&self.keys.heartbeat)
            .query_async(&mut con)
            .await;
    }
}
