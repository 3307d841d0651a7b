//! One refresher task: fetch, publish into the cell, sleep until the next refresh is due.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rangecache_dataplane::credentials::EXPIRY_MARGIN;
use rangecache_dataplane::{CredentialCell, TimedCredentials};
use tracing::{error, info, warn};

use super::provider::Provider;
use super::CredentialSource;

/// The most credentials are refreshed ahead of their expiry.
pub const MAX_REFRESH_AHEAD: Duration = Duration::from_secs(300);

/// How often credentials without an expiry are fetched again (a profile file may change).
pub const NO_EXPIRY_REFRESH: Duration = Duration::from_secs(900);

/// First wait after a failed refresh; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Shortest wait between two fetches, whatever the credentials' lifetime.
const MIN_WAIT: Duration = Duration::from_secs(1);

/// Longest wait between failed refreshes.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// What a refresher counts (read by `/metrics`).
#[derive(Debug, Default)]
pub struct RefreshStats {
    /// Fetches that returned usable credentials.
    pub successes: AtomicU64,
    /// Fetches that failed (or returned credentials already expired).
    pub failures: AtomicU64,
    /// Total time spent in fetches, microseconds.
    pub fetch_micros: AtomicU64,
    /// Time of the last fetch, microseconds.
    pub last_fetch_micros: AtomicU64,
    /// OIDC tokens minted.
    pub tokens_minted: AtomicU64,
    /// The last failure, for logs and `/readyz`.
    pub last_error: Mutex<Option<String>>,
}

/// When to refresh credentials fetched at `now` that expire at `expires`: a third of their
/// remaining lifetime before, at most [`MAX_REFRESH_AHEAD`] before (AWS's own SDKs refresh 5
/// minutes ahead), and never later than [`EXPIRY_MARGIN`] before, when workers stop using
/// them.
pub fn refresh_delay(now: SystemTime, expires: Option<SystemTime>) -> Duration {
    let Some(expires) = expires else {
        return NO_EXPIRY_REFRESH;
    };
    let left = expires.duration_since(now).unwrap_or_default();
    let ahead = (left / 3).min(MAX_REFRESH_AHEAD);
    left.saturating_sub(ahead.max(EXPIRY_MARGIN * 2))
}

/// Run the refresher of `cell` until the task is aborted.
pub async fn run(
    origin: String,
    region: String,
    source: CredentialSource,
    cell: Arc<CredentialCell>,
    stats: Arc<RefreshStats>,
) {
    let provider = Provider::new(&source, &origin, &region).await;
    let mut retry = FIRST_RETRY;
    loop {
        let started = Instant::now();
        let result = provider.fetch().await;
        let took = started.elapsed();
        stats.tokens_minted.store(provider.tokens_minted(), Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        stats.fetch_micros.fetch_add(micros, Relaxed);
        stats.last_fetch_micros.store(micros, Relaxed);
        let now = SystemTime::now();
        let wait = match result {
            Ok(fresh) if fresh.usable_at(now) => {
                let delay = refresh_delay(now, fresh.expires);
                log_success(&origin, &source, &fresh, took, delay);
                cell.store(fresh);
                stats.successes.fetch_add(1, Relaxed);
                *lock(&stats.last_error) = None;
                retry = FIRST_RETRY;
                delay
            }
            other => {
                let detail = match other {
                    Ok(_) => "the credentials returned are already expired".to_owned(),
                    Err(e) => e.to_string(),
                };
                stats.failures.fetch_add(1, Relaxed);
                let held = cell.usable(now).and_then(|c| c.expires);
                match held {
                    Some(expires) => warn!(
                        origin = %origin,
                        "credential refresh ({}) failed: {detail}; keeping the current \
                         credentials until they expire in {}s; retrying in {}s",
                        source.name(),
                        expires.duration_since(now).unwrap_or_default().as_secs(),
                        retry.as_secs()
                    ),
                    None => error!(
                        origin = %origin,
                        "credential refresh ({}) failed: {detail}; no valid credentials: \
                         requests to this origin fail with 503 until a refresh succeeds; \
                         retrying in {}s",
                        source.name(),
                        retry.as_secs()
                    ),
                }
                *lock(&stats.last_error) = Some(detail);
                let wait = retry;
                retry = (retry * 2).min(MAX_RETRY);
                wait
            }
        };
        tokio::time::sleep(wait.max(MIN_WAIT)).await;
    }
}

fn log_success(
    origin: &str,
    source: &CredentialSource,
    fresh: &TimedCredentials,
    took: Duration,
    next: Duration,
) {
    let expiry = match fresh.expires {
        Some(e) => format!(
            "expiring in {}s",
            e.duration_since(SystemTime::now())
                .unwrap_or_default()
                .as_secs()
        ),
        None => "without expiry".to_owned(),
    };
    info!(
        origin = %origin,
        "credentials refreshed ({}, key {}, {expiry}) in {} ms; next refresh in {}s",
        source.name(),
        fresh.credentials.access_key_id,
        took.as_millis(),
        next.as_secs()
    );
}

/// The guarded value even if a panicking holder poisoned the lock (it holds plain data).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshes_ahead_of_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |secs| Some(now + Duration::from_secs(secs));
        // One hour: five minutes ahead.
        assert_eq!(refresh_delay(now, at(3600)), Duration::from_secs(3300));
        // Thirty seconds: a third ahead.
        assert_eq!(refresh_delay(now, at(30)), Duration::from_secs(20));
        // Short lives still leave twice the signing margin.
        assert_eq!(refresh_delay(now, at(12)), Duration::from_secs(2));
        assert_eq!(refresh_delay(now, at(5)), Duration::ZERO);
        assert_eq!(refresh_delay(now, None), NO_EXPIRY_REFRESH);
    }
}
