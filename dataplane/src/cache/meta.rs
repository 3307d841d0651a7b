//! Object metadata (size, ETag, Last-Modified and the headers S3 returns), cached per object
//! with a TTL; used to plan ranges and to answer HEAD and conditional requests.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::store::ObjectId;
use crate::http::ResponseHead;

/// What the origin said about one object version, from a HEAD response.
#[derive(Debug, Clone)]
pub struct ObjectMeta {
    /// Object size in bytes.
    pub size: u64,
    /// The ETag as S3 sends it (with quotes).
    pub etag: Arc<str>,
    /// Last-Modified, if present and parseable.
    pub last_modified: Option<SystemTime>,
    /// Headers a GET or HEAD response replays, in the origin's order and case: everything but
    /// framing, per-request and per-range headers (see [`replayed_header`]).
    pub headers: Vec<(Bytes, Bytes)>,
    /// When the HEAD was answered; the entry expires `ttl` later.
    pub fetched: Instant,
}

/// True when a HEAD response header describes the object (and so is replayed on every
/// response served from the cache), false for framing and per-request headers.
pub fn replayed_header(name: &str) -> bool {
    const NOT_REPLAYED: &[&str] = &[
        "content-length",
        "content-range",
        "date",
        "x-amz-request-id",
        "x-amz-id-2",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ];
    !NOT_REPLAYED.iter().any(|h| name.eq_ignore_ascii_case(h))
}

impl ObjectMeta {
    /// Build metadata from a 200 HEAD response; `None` when it lacks a usable size or ETag
    /// (such objects are not cached).
    pub fn from_head(head: &ResponseHead) -> Option<Self> {
        let size = head.header_str("content-length")?.trim().parse().ok()?;
        let etag: Arc<str> = Arc::from(head.header_str("etag")?.trim());
        if etag.is_empty() {
            return None;
        }
        let last_modified = head
            .header_str("last-modified")
            .and_then(|v| httpdate::parse_http_date(v.trim()).ok());
        let headers = head
            .headers()
            .iter()
            .filter(|h| replayed_header(h.name_str()))
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        Some(Self {
            size,
            etag,
            last_modified,
            headers,
            fetched: Instant::now(),
        })
    }

    /// True when the entry is older than `ttl`.
    pub fn is_expired(&self, ttl: Duration) -> bool {
        self.fetched.elapsed() >= ttl
    }
}

/// Metadata of recently used objects, bounded by entry count, shared by all workers.
pub struct MetaCache {
    entries: quick_cache::sync::Cache<ObjectId, Arc<ObjectMeta>>,
    ttl: Duration,
}

impl MetaCache {
    /// A cache of at most `max_entries` objects whose entries live `ttl`.
    pub fn new(max_entries: usize, ttl: Duration) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(max_entries.max(1)),
            ttl,
        }
    }

    /// The unexpired metadata of `id`.
    pub fn get(&self, id: &ObjectId) -> Option<Arc<ObjectMeta>> {
        let meta = self.entries.get(id)?;
        if meta.is_expired(self.ttl) {
            self.entries.remove(id);
            return None;
        }
        Some(meta)
    }

    /// Remember `meta` for `id`, replacing what was there.
    pub fn insert(&self, id: ObjectId, meta: Arc<ObjectMeta>) {
        if !self.ttl.is_zero() {
            self.entries.insert(id, meta);
        }
    }

    /// Forget `id` (a write through the proxy, or a 412 during a fill).
    pub fn invalidate(&self, id: &ObjectId) {
        self.entries.remove(id);
    }

    /// Forget every object matching `pred`; returns how many were dropped.
    pub fn purge(&self, pred: impl Fn(&ObjectId) -> bool) -> u64 {
        let before = self.entries.len();
        self.entries.retain(|id, _| !pred(id));
        before.saturating_sub(self.entries.len()) as u64
    }

    /// Objects whose metadata is held (expired entries included until touched).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configured TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}
