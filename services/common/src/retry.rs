//! Exponential backoff with jitter, for connecting to dependencies that may not be up yet.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio_util::sync::CancellationToken;

/// Delays 100 ms, 200 ms, ... capped at `max`, each with ±25% jitter so replicas that
/// failed together do not retry together.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Duration::from_millis(100), Duration::from_secs(5))
    }
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self { next: first, max }
    }

    /// The delay to wait now; doubles the next one.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::rng().random_range(0.75..1.25);
        base.mul_f64(jitter)
    }

    pub fn reset(&mut self, first: Duration) {
        self.next = first;
    }
}

/// Runs `f` until it succeeds, sleeping with [`Backoff`] between failures and logging each
/// failure as a warning naming `what`. Returns `None` if `shutdown` is cancelled first.
pub async fn with_backoff<T, E, F, Fut>(
    what: &str,
    shutdown: &CancellationToken,
    mut f: F,
) -> Option<T>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::default();
    let mut attempt = 1u32;
    loop {
        let result = tokio::select! {
            r = f() => r,
            _ = shutdown.cancelled() => return None,
        };
        match result {
            Ok(v) => {
                if attempt > 1 {
                    tracing::info!(what, attempt, "succeeded after retrying");
                }
                return Some(v);
            }
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(what, attempt, error = %e, retry_in_ms = delay.as_millis() as u64, "failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return None,
                }
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let d: Vec<Duration> = (0..5).map(|_| b.next_delay()).collect();
        assert!(d[0] >= Duration::from_millis(75) && d[0] <= Duration::from_millis(125));
        assert!(d[1] >= Duration::from_millis(150) && d[1] <= Duration::from_millis(250));
        for late in &d[2..] {
            assert!(*late >= Duration::from_millis(300) && *late <= Duration::from_millis(500));
        }
    }

    #[tokio::test]
    async fn retries_until_success_and_stops_on_shutdown() {
        let token = CancellationToken::new();
        let mut calls = 0;
        let got = with_backoff("flaky", &token, || {
            calls += 1;
            let n = calls;
            async move { if n < 3 { Err("not yet") } else { Ok(n) } }
        })
        .await;
        assert_eq!(got, Some(3));

        token.cancel();
        let never: Option<()> =
            with_backoff("down", &token, || async { Err::<(), _>("down") }).await;
        assert_eq!(never, None);
    }
}
