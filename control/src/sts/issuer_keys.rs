//! Issuer keys fetched from `jwks_url`s, cached per URL.
//!
//! A fetched set is used for the role's `jwks_refresh`, then fetched again. A token naming a
//! key id the cached set lacks (the issuer rotated its keys) triggers one early fetch, at most
//! once per [`REFETCH_INTERVAL`] per URL, so tokens with made-up key ids cannot make
//! rangecache hammer the issuer. A failed fetch is remembered for as long, for the same
//! reason. Fetches for one URL are serialized: concurrent requests wait for one fetch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::error::{StsCode, StsError};
use super::fetch;
use super::jwks::JwkSet;
use crate::config::auth::JwksUrl;

/// Shortest time between two fetches of one URL that the cache does not require.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// The JWKS cache.
pub struct IssuerKeys {
    entries: Mutex<HashMap<String, Entry>>,
    refetch_interval: Duration,
}

struct Entry {
    /// The last set fetched, and when.
    keys: Option<(Arc<JwkSet>, Instant)>,
    /// The last fetch attempt, and its error if it failed.
    attempted: Instant,
    failure: Option<String>,
}

impl Default for IssuerKeys {
    fn default() -> Self {
        Self::with_refetch_interval(REFETCH_INTERVAL)
    }
}

impl IssuerKeys {
    /// A cache that fetches early (unknown kid) or again (after a failure) at most once per
    /// `interval`.
    pub fn with_refetch_interval(interval: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            refetch_interval: interval,
        }
    }

    /// The keys at `source` for a token naming `kid` (if any). Errors are
    /// `IDPCommunicationError`.
    pub async fn get(&self, source: &JwksUrl, kid: Option<&str>) -> Result<Arc<JwkSet>, StsError> {
        let mut entries = self.entries.lock().await;
        let now = Instant::now();
        if let Some(e) = entries.get(&source.url) {
            let may_retry = now.duration_since(e.attempted) >= self.refetch_interval;
            if let Some((keys, fetched)) = &e.keys {
                let fresh = now.duration_since(*fetched) < source.refresh;
                let knows_kid = kid.is_none_or(|k| keys.has_kid(k));
                if fresh && (knows_kid || !may_retry) {
                    return Ok(keys.clone());
                }
            } else if let Some(failure) = e.failure.as_ref().filter(|_| !may_retry) {
                return Err(idp_error(source, failure));
            }
        }
        let result = fetch_set(source).await;
        let entry = entries.entry(source.url.clone()).or_insert(Entry {
            keys: None,
            attempted: now,
            failure: None,
        });
        entry.attempted = now;
        match result {
            Ok(keys) => {
                tracing::info!(
                    "fetched JWKS {}: {} usable keys",
                    source.url,
                    keys.keys().len()
                );
                entry.keys = Some((keys.clone(), now));
                entry.failure = None;
                Ok(keys)
            }
            Err(failure) => {
                tracing::warn!("cannot fetch JWKS {}: {failure}", source.url);
                let err = idp_error(source, &failure);
                entry.failure = Some(failure);
                // A still fresh set (an early fetch for an unknown kid failed) stays usable.
                match &entry.keys {
                    Some((keys, fetched)) if now.duration_since(*fetched) < source.refresh => {
                        Ok(keys.clone())
                    }
                    _ => Err(err),
                }
            }
        }
    }
}

async fn fetch_set(source: &JwksUrl) -> Result<Arc<JwkSet>, String> {
    let body = fetch::get(&source.uri, source.tls.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    JwkSet::parse(&body)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

fn idp_error(source: &JwksUrl, failure: &str) -> StsError {
    StsError::new(
        StsCode::IdpCommunicationError,
        format!(
            "cannot fetch the issuer's keys from {}: {failure}",
            source.url
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;
    use crate::sts::fetch::tests::TestServer;
    use crate::sts::testkeys::TestKey;

    fn source(base: &str, refresh: Duration) -> JwksUrl {
        let url = format!("{base}/jwks.json");
        JwksUrl {
            uri: url.parse().unwrap(),
            url,
            refresh,
            tls: None,
        }
    }

    #[tokio::test]
    async fn caches_and_refetches_for_unknown_kids_at_most_once_per_interval() {
        let doc = Arc::new(StdMutex::new(TestKey::ec().jwks("k1")));
        let served = doc.clone();
        let server = TestServer::start(200, move || served.lock().unwrap().clone()).await;
        let src = source(&server.base, Duration::from_secs(300));

        let cache = IssuerKeys::default();
        assert!(cache.get(&src, Some("k1")).await.unwrap().has_kid("k1"));
        assert!(cache.get(&src, None).await.is_ok());
        assert_eq!(server.hits(), 1, "cached");
        // Unknown kid within the interval: no new fetch.
        *doc.lock().unwrap() = TestKey::ec().jwks("k2");
        assert!(!cache.get(&src, Some("k2")).await.unwrap().has_kid("k2"));
        assert_eq!(server.hits(), 1);

        // With no interval, an unknown kid fetches again and finds the rotated key.
        let eager = IssuerKeys::with_refetch_interval(Duration::ZERO);
        *doc.lock().unwrap() = TestKey::ec().jwks("k1");
        assert!(eager.get(&src, Some("k1")).await.is_ok());
        *doc.lock().unwrap() = TestKey::ec().jwks("k2");
        assert!(eager.get(&src, Some("k2")).await.unwrap().has_kid("k2"));
        assert_eq!(server.hits(), 3);

        // A stale set is fetched again.
        let stale = source(&server.base, Duration::ZERO);
        assert!(eager.get(&stale, None).await.is_ok());
        assert!(eager.get(&stale, None).await.is_ok());
        assert_eq!(server.hits(), 5);
    }

    #[tokio::test]
    async fn failures_are_idp_errors_and_are_not_retried_at_once() {
        let server = TestServer::start(500, String::new).await;
        let src = source(&server.base, Duration::from_secs(300));
        let cache = IssuerKeys::default();
        let err = cache.get(&src, None).await.unwrap_err();
        assert_eq!(err.code, StsCode::IdpCommunicationError);
        assert!(err.message.contains("500"), "{err}");
        let again = cache.get(&src, None).await.unwrap_err();
        assert_eq!(again, err);
        assert_eq!(server.hits(), 1);

        let garbage = TestServer::start(200, || "not json".into()).await;
        let err = cache
            .get(&source(&garbage.base, Duration::from_secs(1)), None)
            .await
            .unwrap_err();
        assert!(err.message.contains("not a JWKS document"), "{err}");
    }
}
