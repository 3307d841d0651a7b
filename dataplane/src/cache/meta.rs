//! Object metadata (size, ETag, Last-Modified and the headers S3 returns), cached per object
//! with a TTL; used to plan ranges and to answer HEAD and conditional requests.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use super::flight::Flight;
use super::range::ByteRange;
use super::registry::{Registry, Role};
use super::store::ObjectId;
use crate::error::Error;
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
    /// When the origin answered; the entry expires `ttl` later.
    pub fetched: Instant,
    /// True when learned from a HEAD that asked for checksums (`x-amz-checksum-mode`), so
    /// the `x-amz-checksum-*` headers in `headers` are complete; a ranged GET carries none.
    pub checksums_known: bool,
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
        Self::build(head, size, true)
    }

    /// Build metadata from a 206 answer to a ranged GET, with the byte range it carries;
    /// `None` when its `Content-Range` or ETag is unusable.
    pub fn from_partial_get(head: &ResponseHead) -> Option<(Self, ByteRange)> {
        let (first, last, size) = parse_content_range(head.header_str("content-range")?)?;
        let meta = Self::build(head, size, false)?;
        Some((meta, ByteRange { first, last }))
    }

    fn build(head: &ResponseHead, size: u64, checksums_known: bool) -> Option<Self> {
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
            checksums_known,
        })
    }

    /// True when the entry is older than `ttl`.
    pub fn is_expired(&self, ttl: Duration) -> bool {
        self.fetched.elapsed() >= ttl
    }
}

/// `bytes first-last/size` → (first, last, size), with first <= last < size.
pub fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, size) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, size) = (first.parse().ok()?, last.parse().ok()?, size.parse().ok()?);
    (first <= last && last < size).then_some((first, last, size))
}

/// The outcome of one metadata lookup: the metadata, or `None` when the origin's answer was
/// not a plain 200 (the request is then passed through for the origin's real answer).
pub type Lookup = Result<Option<Arc<ObjectMeta>>, Error>;

/// Metadata of recently used objects, bounded by entry count, shared by all workers, with the
/// origin lookups in flight so that concurrent misses of one object send one HEAD.
pub struct MetaCache {
    entries: quick_cache::sync::Cache<ObjectId, Arc<ObjectMeta>>,
    lookups: Registry<ObjectId, Flight<Lookup>>,
    /// Bumped by every invalidation. A lookup that overlapped one (its HEAD may have been
    /// answered before the write committed) is not cached. The lock makes "check the epoch,
    /// insert" and "bump, remove" exclusive; both are short and never span an await.
    epoch: std::sync::Mutex<u64>,
    ttl: Duration,
}

impl MetaCache {
    /// A cache of at most `max_entries` objects whose entries live `ttl`.
    pub fn new(max_entries: usize, ttl: Duration) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(max_entries.max(1)),
            lookups: Registry::new(),
            epoch: std::sync::Mutex::new(0),
            ttl,
        }
    }

    /// The unexpired metadata of `id`.
    /// An expired entry stays until a lookup replaces it or the cache's bound evicts it, so
    /// that [`MetaCache::knows`] still tells a revalidated object from a new one.
    pub fn get(&self, id: &ObjectId) -> Option<Arc<ObjectMeta>> {
        self.entries.get(id).filter(|m| !m.is_expired(self.ttl))
    }

    /// Whether `id` has metadata here, expired or not: its blocks may be cached, so its
    /// reads do not send early GETs (see `read::early`).
    pub fn knows(&self, id: &ObjectId) -> bool {
        self.entries.peek(id).is_some()
    }

    /// The caller's role in finding `id`'s metadata: it is cached now (`Ready`), another
    /// request is asking the origin (`Follow`: wait for its answer), or this caller must ask
    /// (`Lead`: insert what it learns, publish the outcome, then [`MetaCache::release`]).
    pub fn claim(&self, id: &ObjectId) -> Role<Flight<Lookup>, Arc<ObjectMeta>> {
        self.claim_with(id, || {})
    }

    /// [`MetaCache::claim`], calling `on_lead` when the caller leads, before any other caller
    /// can follow its lookup (under the lookup registry's lock: keep it short).
    pub fn claim_with(
        &self,
        id: &ObjectId,
        on_lead: impl FnOnce(),
    ) -> Role<Flight<Lookup>, Arc<ObjectMeta>> {
        self.lookups.claim(
            id,
            || self.get(id),
            || {
                on_lead();
                Flight::new()
            },
        )
    }

    /// End a lookup this caller led.
    pub fn release(&self, id: &ObjectId, flight: &Arc<Flight<Lookup>>) {
        self.lookups.release(id, flight);
    }

    fn epoch_lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.epoch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current invalidation epoch; take it before asking the origin.
    pub fn epoch(&self) -> u64 {
        *self.epoch_lock()
    }

    /// Remember `meta` for `id` unless an invalidation happened since `epoch` was taken.
    pub fn insert(&self, id: ObjectId, meta: Arc<ObjectMeta>, epoch: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let current = self.epoch_lock();
        if *current == epoch {
            self.entries.insert(id, meta);
        }
    }

    /// Forget `id` (a write through the proxy, or a 412 during a fill); lookups in flight
    /// will not cache what they learn.
    pub fn invalidate(&self, id: &ObjectId) {
        let mut current = self.epoch_lock();
        *current += 1;
        self.entries.remove(id);
    }

    /// Forget every object matching `pred`; returns how many were dropped.
    pub fn purge(&self, pred: impl Fn(&ObjectId) -> bool) -> u64 {
        let mut current = self.epoch_lock();
        *current += 1;
        let before = self.entries.len();
        self.entries.retain(|id, _| !pred(id));
        let purged = before.saturating_sub(self.entries.len()) as u64;
        drop(current);
        purged
    }

    /// Objects whose metadata is held (expired entries included until replaced or evicted).
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

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_range_values() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0, 9, 100)));
        assert_eq!(parse_content_range(" bytes 5-5/6 "), Some((5, 5, 6)));
        assert_eq!(parse_content_range("bytes 9-0/100"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}
