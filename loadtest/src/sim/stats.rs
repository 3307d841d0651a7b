//! What the simulator counts: requests by operation and outcome, bytes served, signatures
//! checked. Relaxed atomics; a [`StatsSnapshot`] is what reports and `/__stats` show.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Live counters.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) connections: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) get: AtomicU64,
    pub(crate) head: AtomicU64,
    pub(crate) put: AtomicU64,
    pub(crate) list: AtomicU64,
    pub(crate) other: AtomicU64,
    pub(crate) body_bytes: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
    pub(crate) signed: AtomicU64,
    pub(crate) anonymous: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
    pub(crate) injected_errors: AtomicU64,
    pub(crate) injected_resets: AtomicU64,
    pub(crate) status_2xx: AtomicU64,
    pub(crate) status_3xx: AtomicU64,
    pub(crate) status_4xx: AtomicU64,
    pub(crate) status_5xx: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// TCP connections accepted.
    pub connections: u64,
    /// Requests received (all operations).
    pub requests: u64,
    /// GetObject requests.
    pub get: u64,
    /// HeadObject (and HeadBucket) requests.
    pub head: u64,
    /// PutObject requests.
    pub put: u64,
    /// ListObjectsV2 requests.
    pub list: u64,
    /// Anything else.
    pub other: u64,
    /// Response body bytes sent (object data and error documents).
    pub body_bytes: u64,
    /// Request body bytes received.
    pub bytes_received: u64,
    /// Requests with a valid signature.
    pub signed: u64,
    /// Requests without a signature.
    pub anonymous: u64,
    /// Requests refused for a bad or missing signature.
    pub auth_failures: u64,
    /// 503 SlowDown answers injected.
    pub injected_errors: u64,
    /// Connections reset mid-body on purpose.
    pub injected_resets: u64,
    /// Responses by status class.
    pub status_2xx: u64,
    /// 3xx responses (304 Not Modified).
    pub status_3xx: u64,
    /// 4xx responses.
    pub status_4xx: u64,
    /// 5xx responses.
    pub status_5xx: u64,
}

impl Stats {
    /// Read every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            connections: self.connections.load(Relaxed),
            requests: self.requests.load(Relaxed),
            get: self.get.load(Relaxed),
            head: self.head.load(Relaxed),
            put: self.put.load(Relaxed),
            list: self.list.load(Relaxed),
            other: self.other.load(Relaxed),
            body_bytes: self.body_bytes.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            signed: self.signed.load(Relaxed),
            anonymous: self.anonymous.load(Relaxed),
            auth_failures: self.auth_failures.load(Relaxed),
            injected_errors: self.injected_errors.load(Relaxed),
            injected_resets: self.injected_resets.load(Relaxed),
            status_2xx: self.status_2xx.load(Relaxed),
            status_3xx: self.status_3xx.load(Relaxed),
            status_4xx: self.status_4xx.load(Relaxed),
            status_5xx: self.status_5xx.load(Relaxed),
        }
    }

    pub(crate) fn status(&self, code: u16) {
        let c = match code {
            200..=299 => &self.status_2xx,
            300..=399 => &self.status_3xx,
            400..=499 => &self.status_4xx,
            _ => &self.status_5xx,
        };
        c.fetch_add(1, Relaxed);
    }
}

impl StatsSnapshot {
    /// Counter-wise `self - earlier` (what happened between two snapshots).
    pub fn since(&self, earlier: &StatsSnapshot) -> StatsSnapshot {
        macro_rules! d {
            ($($f:ident),*) => { StatsSnapshot { $($f: self.$f.saturating_sub(earlier.$f)),* } };
        }
        d!(
            connections,
            requests,
            get,
            head,
            put,
            list,
            other,
            body_bytes,
            bytes_received,
            signed,
            anonymous,
            auth_failures,
            injected_errors,
            injected_resets,
            status_2xx,
            status_3xx,
            status_4xx,
            status_5xx
        )
    }
}
