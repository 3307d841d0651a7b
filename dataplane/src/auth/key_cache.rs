//! SigV4 signing keys, derived once per (secret, date, region, service) and shared by all
//! workers.
//!
//! Deriving a signing key is a chain of four HMACs (eight SHA-256 compressions plus the key
//! setup), several times the cost of checking one signature. A key changes only when the
//! date, the region, the service or the secret does, so the cache holds one entry per
//! credential and day in practice.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;
use quick_cache::Equivalent;
use ring::hmac;

/// Entries a [`KeyCache::default`] holds: room for a thousand keys signing in a few regions
/// across a date change.
pub const DEFAULT_KEY_CACHE_ENTRIES: usize = 4096;

/// The owned key of one cache entry. The secret is held so that a rotated secret under the
/// same access key id never reuses the old signing key.
#[derive(Debug, PartialEq, Eq)]
struct Owned {
    secret: Box<[u8]>,
    date: Box<str>,
    region: Box<str>,
    service: Box<str>,
}

/// A borrowed view of a cache key, for lookups without allocating.
struct Borrowed<'a> {
    secret: &'a [u8],
    date: &'a str,
    region: &'a str,
    service: &'a str,
}

/// Both forms hash the same fields the same way (length-prefixed, so fields cannot run into
/// each other), which quick_cache's `Equivalent` lookups require.
fn hash_fields<H: Hasher>(state: &mut H, secret: &[u8], date: &str, region: &str, service: &str) {
    state.write_usize(secret.len());
    state.write(secret);
    date.hash(state);
    region.hash(state);
    service.hash(state);
}

impl Hash for Owned {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_fields(state, &self.secret, &self.date, &self.region, &self.service);
    }
}

impl Hash for Borrowed<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_fields(state, self.secret, self.date, self.region, self.service);
    }
}

impl Equivalent<Owned> for Borrowed<'_> {
    fn equivalent(&self, key: &Owned) -> bool {
        *self.secret == *key.secret
            && self.date == &*key.date
            && self.region == &*key.region
            && self.service == &*key.service
    }
}

/// A bounded, thread-safe cache of SigV4 signing keys.
///
/// `Send + Sync`: one instance is shared by every worker (in an `Arc` or a static). Lookups
/// take a shard's read lock briefly and never allocate; a miss derives the key, inserts it
/// (one allocation) and evicts by quick_cache's policy when full. Two workers missing the same
/// entry at once may both derive it; that costs a few microseconds and is never wrong.
#[derive(Debug)]
pub struct KeyCache {
    cache: Cache<Owned, hmac::Key>,
    derivations: AtomicU64,
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new(DEFAULT_KEY_CACHE_ENTRIES)
    }
}

impl KeyCache {
    /// A cache holding at most about `entries` signing keys (at least one).
    pub fn new(entries: usize) -> Self {
        Self {
            cache: Cache::new(entries.max(1)),
            derivations: AtomicU64::new(0),
        }
    }

    /// The signing key for `secret` (the secret access key) on `date` (`YYYYMMDD`) in
    /// `region` for `service`, from the cache or derived (and cached) now.
    pub fn get_or_derive(
        &self,
        secret: &[u8],
        date: &str,
        region: &str,
        service: &str,
    ) -> hmac::Key {
        let probe = Borrowed {
            secret,
            date,
            region,
            service,
        };
        if let Some(key) = self.cache.get(&probe) {
            return key;
        }
        let key = derive_signing_key(secret, date, region, service);
        self.derivations.fetch_add(1, Ordering::Relaxed);
        self.cache.insert(
            Owned {
                secret: secret.into(),
                date: date.into(),
                region: region.into(),
                service: service.into(),
            },
            key.clone(),
        );
        key
    }

    /// How many keys this cache has derived since it was made: a counter for metrics and
    /// tests (a steady state derives about one key per credential, region and day).
    pub fn derivations(&self) -> u64 {
        self.derivations.load(Ordering::Relaxed)
    }

    /// Signing keys held now.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache holds no key.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Drops every key, e.g. after a reload removed or rotated secrets.
    pub fn clear(&self) {
        self.cache.clear();
    }
}

/// The SigV4 signing key: `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
/// "aws4_request")`, ready to sign strings to sign.
pub fn derive_signing_key(secret: &[u8], date: &str, region: &str, service: &str) -> hmac::Key {
    let mut k_secret = Vec::with_capacity(4 + secret.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret);
    let step = |key: &[u8], data: &[u8]| hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let k_date = step(&k_secret, date.as_bytes());
    let k_region = step(k_date.as_ref(), region.as_bytes());
    let k_service = step(k_region.as_ref(), service.as_bytes());
    let k_signing = step(k_service.as_ref(), b"aws4_request");
    hmac::Key::new(hmac::HMAC_SHA256, k_signing.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn derives_once_per_secret_date_region_service() {
        let cache = KeyCache::new(64);
        let tag = |k: &hmac::Key| hmac::sign(k, b"x").as_ref().to_vec();
        let first = cache.get_or_derive(SECRET, "20130524", "us-east-1", "s3");
        for _ in 0..100 {
            let again = cache.get_or_derive(SECRET, "20130524", "us-east-1", "s3");
            assert_eq!(tag(&again), tag(&first));
        }
        assert_eq!(cache.derivations(), 1);
        cache.get_or_derive(SECRET, "20130525", "us-east-1", "s3");
        cache.get_or_derive(SECRET, "20130524", "eu-west-1", "s3");
        cache.get_or_derive(SECRET, "20130524", "us-east-1", "s3x");
        cache.get_or_derive(b"other", "20130524", "us-east-1", "s3");
        assert_eq!(cache.derivations(), 5);
        for _ in 0..10 {
            cache.get_or_derive(b"other", "20130524", "us-east-1", "s3");
            cache.get_or_derive(SECRET, "20130525", "us-east-1", "s3");
        }
        assert_eq!(cache.derivations(), 5);
        assert_eq!(cache.len(), 5);
        // Fields do not run into each other.
        cache.get_or_derive(SECRET, "20130524", "us-east-1s", "3");
        assert_eq!(cache.derivations(), 6);
        cache.clear();
        assert!(cache.is_empty());
        cache.get_or_derive(SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(cache.derivations(), 7);
    }

    #[test]
    fn stays_bounded() {
        let cache = KeyCache::new(16);
        for day in 0..1000 {
            cache.get_or_derive(SECRET, &format!("{day:08}"), "r", "s3");
        }
        assert!(cache.len() <= 32, "{}", cache.len());
    }

    #[test]
    fn is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<KeyCache>();
    }
}
