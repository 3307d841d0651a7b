//! GetObject and HeadObject served through the block cache: plan from cached metadata, answer
//! conditionals and unsatisfiable ranges locally, serve hits as `Bytes` slices, fill runs of
//! missing blocks with one origin GET each, and stream fills to the client as they arrive.

use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};

use super::fill_task::{spawn_fill, spawn_pump, FillRun};
use super::{respond, WorkerCtx};
use crate::cache::conditional::{evaluate, Condition, Preconditions};
use crate::cache::flight::Flight;
use crate::cache::range::{
    block_bytes, block_span, content_range, parse_range, resolve, runs, slice_in_block,
    unsatisfied_range, ByteRange, ParsedRange, RangeSpec, Resolved,
};
use crate::cache::registry::Role;
use crate::cache::{BlockKey, Claim, FillError, Lookup, LookupError, ObjectId, ObjectMeta};
use crate::error::ErrorKind;
use crate::http::{encode_response_head, RequestHead, ResponseHead};
use crate::net::ClientConn;
use crate::origin::{OriginExchange, OriginRequest, RequestBody};
use crate::s3::{uri, Operation, S3Error};
use crate::{Origin, WorkerMetrics};

/// Headers whose presence means the cache cannot answer exactly as S3 would.
const UNCACHEABLE_HEADERS: &[&str] = &[
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-request-payer",
    "x-amz-expected-bucket-owner",
];

/// True when the request can be answered from the cache: a plain GET or HEAD of an object,
/// with no query parameter that changes the answer (`versionId`, `partNumber`,
/// `response-*`, ...) and no header the cache cannot honour (SSE-C, requester pays, ...).
pub(crate) fn eligible(head: &RequestHead, op: Operation) -> bool {
    if !matches!(op, Operation::GetObject | Operation::HeadObject) {
        return false;
    }
    let query_ok = uri::query_pairs(head.query())
        .all(|(k, _)| k == "x-id" || k.len() > 6 && k[..6].eq_ignore_ascii_case("x-amz-"));
    query_ok && !UNCACHEABLE_HEADERS.iter().any(|h| head.header(h).is_some())
}

/// Everything a cached answer needs about the request.
pub(crate) struct CachedRequest<'a> {
    pub ctx: &'a Rc<WorkerCtx>,
    pub head: &'a RequestHead,
    pub origin: &'a Arc<Origin>,
    pub origin_bucket: &'a str,
    pub key: &'a str,
    pub request_id: &'a str,
    pub keep_alive: bool,
}

/// What serving from the cache came to.
pub(crate) enum Served {
    /// Answered; the connection may be reused when `true`.
    Done(bool),
    /// The cache cannot answer this one (the origin's HEAD was not a plain 200, an unusual
    /// Range header): pass it through. Nothing was written.
    PassThrough,
}

impl CachedRequest<'_> {
    fn metrics(&self) -> &WorkerMetrics {
        self.ctx.metrics()
    }

    /// Serve the request from the cache (re-planning once if the object changed mid-fill).
    pub(crate) async fn serve(&self, conn: &mut ClientConn) -> Served {
        let spec = match parse_range(self.head.header("range")) {
            ParsedRange::None => None,
            ParsedRange::Single(spec) => Some(spec),
            ParsedRange::PassThrough => return Served::PassThrough,
        };
        let object = ObjectId::new(&self.origin.name, self.origin_bucket, self.key);
        let mut replanned = false;
        loop {
            let meta = match self.metadata(&object, spec).await {
                Ok(Some(meta)) => meta,
                Ok(None) => return Served::PassThrough,
                Err(err) => return Served::Done(self.error(conn, &err, &[]).await),
            };
            let pre = Preconditions {
                if_match: self.head.header_str("if-match"),
                if_none_match: self.head.header_str("if-none-match"),
                if_modified_since: self.head.header_str("if-modified-since"),
                if_unmodified_since: self.head.header_str("if-unmodified-since"),
            };
            match evaluate(&pre, &meta.etag, meta.last_modified) {
                Condition::Proceed => {}
                Condition::NotModified => {
                    return Served::Done(self.not_modified(conn, &meta).await)
                }
                Condition::PreconditionFailed => {
                    let err = S3Error::new(
                        "PreconditionFailed",
                        412,
                        "At least one of the pre-conditions you specified did not hold",
                    );
                    return Served::Done(self.error(conn, &err, &[]).await);
                }
            }
            let resolved = resolve(spec, meta.size);
            let partial = matches!(resolved, Resolved::Partial(_));
            let range = match resolved {
                Resolved::Unsatisfiable => {
                    let cr = unsatisfied_range(meta.size);
                    let extra: [(&[u8], &[u8]); 1] = [(b"content-range", cr.as_bytes())];
                    return Served::Done(self.error(conn, &S3Error::invalid_range(), &extra).await);
                }
                Resolved::Full => (meta.size > 0).then(|| ByteRange {
                    first: 0,
                    last: meta.size - 1,
                }),
                Resolved::Partial(r) => Some(r),
            };
            if !partial && !meta.checksums_known && self.wants_checksums() {
                // The whole object's checksum is due and this metadata came from a ranged GET,
                // which carries none: the origin answers this one.
                return Served::PassThrough;
            }
            if self.head.method() == "HEAD" || range.is_none() {
                let head = self.response_head(&meta, partial, range);
                let ok = self.write_all(conn, vec![head]).await;
                return Served::Done(ok && self.keep_alive);
            }
            let range = range.unwrap_or(ByteRange { first: 0, last: 0 });
            match self.stream(conn, &object, &meta, range, partial).await {
                Streamed::Done(ok) => return Served::Done(ok && self.keep_alive),
                Streamed::Changed if !replanned => {
                    replanned = true;
                    WorkerMetrics::add(&self.metrics().replans, 1);
                    self.ctx.cache.meta.invalidate(&object);
                }
                Streamed::Changed => {
                    return Served::Done(self.error(conn, &S3Error::slow_down(), &[]).await)
                }
                Streamed::Failed(err) => {
                    return Served::Done(self.error(conn, &fill_error(&err), &[]).await)
                }
            }
        }
    }

    /// Cached metadata, or a HEAD to the origin (one for all concurrent misses of the object,
    /// on any worker). `Ok(None)`: the origin did not answer a plain 200 (missing object, no
    /// permission, ...): pass the request through for its real answer.
    async fn metadata(
        &self,
        object: &ObjectId,
        spec: Option<RangeSpec>,
    ) -> Result<Option<Arc<ObjectMeta>>, S3Error> {
        let cache = &self.ctx.cache;
        let lookup = match cache.meta.get(object) {
            Some(meta) => Ok(Some(meta)),
            None => match cache.meta.claim(object) {
                Role::Ready(meta) => Ok(Some(meta)),
                Role::Follow(flight) => {
                    WorkerMetrics::add(&self.metrics().meta_misses, 1);
                    flight.wait().await
                }
                Role::Lead(flight) => {
                    WorkerMetrics::add(&self.metrics().meta_misses, 1);
                    let lead = LeadGuard {
                        ctx: self.ctx,
                        object,
                        flight: &flight,
                    };
                    // A ranged GET learns the metadata from its first block fetch: one origin
                    // round trip for a cold object instead of a HEAD and then a GET.
                    let lookup = match spec {
                        Some(spec) if self.head.method() == "GET" => {
                            self.get_first(object, spec).await
                        }
                        _ => self.head_origin(object).await,
                    };
                    lead.flight.publish(lookup.clone());
                    drop(lead);
                    return lookup.map_err(lookup_error);
                }
            },
        };
        if matches!(lookup, Ok(Some(_))) {
            WorkerMetrics::add(&self.metrics().meta_hits, 1);
        }
        lookup.map_err(lookup_error)
    }

    /// Fetch the blocks around the client's range without knowing the object yet (no
    /// `If-Match`): the 206 answer tells size, ETag and headers, and its body fills the whole
    /// blocks it covers, which this request and its followers then read as fills in flight.
    /// Anything but a usable 206 falls back to a HEAD.
    async fn get_first(&self, object: &ObjectId, spec: RangeSpec) -> Lookup {
        let cache = &self.ctx.cache;
        let bs = cache.config().block_size;
        let range = first_fetch_range(spec, bs);
        WorkerMetrics::add(&self.metrics().fill_requests, 1);
        let epoch = cache.meta.epoch();
        let (up, resp) = self.ask_origin("GET", ("range", range)).await?;
        let parsed = (resp.status() == 206)
            .then(|| ObjectMeta::from_partial_get(&resp))
            .flatten();
        let Some((meta, got)) = parsed else {
            // 416 (empty object), 404, 403, an origin that ignores Range, ...: the HEAD path
            // decides. This exchange is dropped unread, so its connection is closed.
            drop(up);
            return self.head_origin(object).await;
        };
        let meta = Arc::new(meta);
        cache.meta.insert(object.clone(), meta.clone(), epoch);
        let mut fills = Vec::new();
        for index in whole_blocks_in(got, bs, meta.size) {
            let key = BlockKey::new(object.clone(), meta.etag.clone(), index);
            let len = block_bytes(index, bs, meta.size).len() as usize;
            if let Claim::Fill(fill) = cache.inflight.claim(&key, len, &cache.store) {
                fills.push((key, fill));
            }
        }
        if !fills.is_empty() {
            spawn_pump(self.ctx, up, got.first, bs, fills);
        }
        Ok(Some(meta))
    }

    /// Send a body-less `method` for this object with one extra header and read the response
    /// head; failures map to the lookup's errors and count in the metrics.
    async fn ask_origin(
        &self,
        method: &str,
        header: (&str, String),
    ) -> Result<(OriginExchange, ResponseHead), LookupError> {
        let req = OriginRequest {
            method: method.to_owned(),
            path_and_query: uri::origin_path(self.origin_bucket, Some(self.key)),
            headers: vec![(header.0.to_owned(), header.1)],
            body: RequestBody::None,
        };
        WorkerMetrics::add(&self.metrics().origin_requests, 1);
        let mut retried = false;
        let res = self
            .ctx
            .origin
            .send_bodyless(self.origin, &req, method == "HEAD", &mut retried)
            .await;
        res.map_err(|e| {
            WorkerMetrics::add(&self.metrics().origin_errors, 1);
            if e.kind() == ErrorKind::Timeout {
                LookupError::Timeout
            } else {
                LookupError::Unreachable
            }
        })
    }

    /// Ask the origin for the object's metadata and cache a usable answer.
    async fn head_origin(&self, object: &ObjectId) -> Lookup {
        let epoch = self.ctx.cache.meta.epoch();
        // Checksums are kept with the metadata and replayed only to clients that ask.
        let (mut up, resp) = self
            .ask_origin("HEAD", ("x-amz-checksum-mode", "ENABLED".to_owned()))
            .await?;
        let meta = (resp.status() == 200)
            .then(|| ObjectMeta::from_head(&resp))
            .flatten();
        // A HEAD response has no body: reading its end only settles the connection for reuse.
        let _ = up.next_body().await;
        up.finish(&self.ctx.origin);
        Ok(meta.map(|m| {
            let m = Arc::new(m);
            // Cached before the lookup is published and released: see `Registry::claim`.
            self.ctx.cache.meta.insert(object.clone(), m.clone(), epoch);
            m
        }))
    }

    /// The 200/206 (or HEAD) response head built from metadata.
    fn response_head(&self, meta: &ObjectMeta, partial: bool, range: Option<ByteRange>) -> Bytes {
        let len = range.map_or(0, |r| r.len()).to_string();
        let cr = range
            .filter(|_| partial)
            .map(|r| content_range(r, meta.size));
        let date = httpdate::fmt_http_date(SystemTime::now());
        let mut headers: Vec<(&[u8], &[u8])> = Vec::with_capacity(meta.headers.len() + 6);
        // S3 sends an object's checksum only to clients that ask, and only for the whole object.
        let checksums = !partial && self.wants_checksums();
        headers.extend(
            meta.headers
                .iter()
                .filter(|(k, _)| checksums || !is_checksum_header(k))
                .map(|(k, v)| (&k[..], &v[..])),
        );
        headers.push((b"content-length", len.as_bytes()));
        if let Some(cr) = &cr {
            headers.push((b"content-range", cr.as_bytes()));
        }
        headers.push((b"x-amz-request-id", self.request_id.as_bytes()));
        headers.push((b"date", date.as_bytes()));
        if !self.keep_alive {
            headers.push((b"connection", b"close"));
        }
        let mut out = BytesMut::with_capacity(512);
        encode_response_head(&mut out, if partial { 206 } else { 200 }, headers);
        self.metrics()
            .record_request(self.op(), if partial { 206 } else { 200 });
        out.freeze()
    }

    /// True when the client asked for the object's checksum (`x-amz-checksum-mode: ENABLED`).
    fn wants_checksums(&self) -> bool {
        self.head
            .header_str("x-amz-checksum-mode")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("enabled"))
    }

    fn op(&self) -> Operation {
        if self.head.method() == "HEAD" {
            Operation::HeadObject
        } else {
            Operation::GetObject
        }
    }

    async fn not_modified(&self, conn: &mut ClientConn, meta: &ObjectMeta) -> bool {
        let date = httpdate::fmt_http_date(SystemTime::now());
        let mut headers: Vec<(&[u8], &[u8])> = meta
            .headers
            .iter()
            .filter(|(k, _)| {
                let k = std::str::from_utf8(k).unwrap_or("");
                [
                    "etag",
                    "last-modified",
                    "server",
                    "cache-control",
                    "expires",
                ]
                .iter()
                .any(|h| k.eq_ignore_ascii_case(h))
            })
            .map(|(k, v)| (&k[..], &v[..]))
            .collect();
        headers.push((b"x-amz-request-id", self.request_id.as_bytes()));
        headers.push((b"date", date.as_bytes()));
        if !self.keep_alive {
            headers.push((b"connection", b"close"));
        }
        let mut out = BytesMut::with_capacity(256);
        encode_response_head(&mut out, 304, headers);
        self.metrics().record_request(self.op(), 304);
        self.write_all(conn, vec![out.freeze()]).await && self.keep_alive
    }

    async fn error(
        &self,
        conn: &mut ClientConn,
        err: &S3Error,
        extra: &[(&[u8], &[u8])],
    ) -> bool {
        let is_head = self.head.method() == "HEAD";
        let n = respond::write_error(
            conn,
            err,
            self.head.path(),
            self.request_id,
            is_head,
            !self.keep_alive,
            extra,
        )
        .await;
        WorkerMetrics::add(&self.metrics().bytes_out, n);
        self.metrics().record_request(self.op(), err.status());
        n > 0 && self.keep_alive
    }

    async fn write_all(&self, conn: &mut ClientConn, parts: Vec<Bytes>) -> bool {
        match conn.write_vectored(parts).await {
            Ok(n) => {
                WorkerMetrics::add(&self.metrics().bytes_out, n as u64);
                true
            }
            Err(_) => false,
        }
    }

    /// Claim every block of `range`, start fills for the runs this request must fetch, wait
    /// for the first bytes (so a changed object can still be re-planned before any header is
    /// sent), then write the head and stream the body.
    async fn stream(
        &self,
        conn: &mut ClientConn,
        object: &ObjectId,
        meta: &Arc<ObjectMeta>,
        range: ByteRange,
        partial: bool,
    ) -> Streamed {
        let cache = &self.ctx.cache;
        let bs = cache.config().block_size;
        let span = block_span(range, bs);
        let mut claims = Vec::with_capacity((span.last_block - span.first_block + 1) as usize);
        let mut to_fill = Vec::new();
        for index in span.first_block..=span.last_block {
            let key = BlockKey::new(object.clone(), meta.etag.clone(), index);
            let claim = match cache.store.get(&key) {
                Some(block) => Claim::Hit(block),
                None => cache.inflight.claim(
                    &key,
                    block_bytes(index, bs, meta.size).len() as usize,
                    &cache.store,
                ),
            };
            match &claim {
                Claim::Hit(_) => WorkerMetrics::add(&self.metrics().cache_block_hits, 1),
                Claim::Wait(_) => {
                    WorkerMetrics::add(&self.metrics().cache_block_misses, 1);
                    WorkerMetrics::add(&self.metrics().coalesced_waits, 1);
                }
                Claim::Fill(fill) => {
                    WorkerMetrics::add(&self.metrics().cache_block_misses, 1);
                    to_fill.push((index, key, fill.clone()));
                }
            }
            claims.push(claim);
        }
        self.start_fills(object, meta, to_fill);

        // Nothing is written until the first block has bytes: a fill that finds the object
        // changed (412) or fails here can still be answered with a clean error or a re-plan.
        let first_slice = slice_in_block(range, span.first_block, bs);
        let first_piece = match &claims[0] {
            Claim::Hit(block) => block.slice(first_slice.clone()),
            Claim::Wait(fill) | Claim::Fill(fill) => match fill.read(first_slice.start).await {
                Ok(Some(piece)) => piece.slice(..piece.len().min(first_slice.len())),
                Ok(None) => return Streamed::Failed(FillError::Truncated),
                Err(FillError::Changed) => return Streamed::Changed,
                Err(e) => return Streamed::Failed(e),
            },
        };
        let head = self.response_head(meta, partial, Some(range));
        let mut out = Out {
            pending: vec![head],
            pending_len: 0,
            sent: 0,
        };
        let mut first = Some(first_piece);
        for (i, claim) in claims.iter().enumerate() {
            let index = span.first_block + i as u64;
            let want = slice_in_block(range, index, bs);
            let mut offset = want.start;
            if let Some(p) = first.take() {
                offset += p.len();
                self.count_body(claim, p.len());
                out.push(p);
            }
            match claim {
                Claim::Hit(block) => {
                    if offset < want.end {
                        self.count_body(claim, want.end - offset);
                        out.push(block.slice(offset..want.end));
                    }
                }
                Claim::Wait(fill) | Claim::Fill(fill) => {
                    while offset < want.end {
                        if !out.pending.is_empty()
                            && fill.filled() <= offset
                            && !self.flush(conn, &mut out).await
                        {
                            return Streamed::Done(false);
                        }
                        match fill.read(offset).await {
                            Ok(Some(piece)) => {
                                let piece = piece.slice(..piece.len().min(want.end - offset));
                                offset += piece.len();
                                self.count_body(claim, piece.len());
                                out.push(piece);
                            }
                            // Headers are out: cutting the connection is the only honest
                            // signal left; the client sees a short body, never other bytes.
                            Ok(None) | Err(_) => {
                                let _ = self.flush(conn, &mut out).await;
                                return Streamed::Done(false);
                            }
                        }
                    }
                }
            }
            let full = out.pending_len >= 256 * 1024 || out.pending.len() >= 64;
            if full && !self.flush(conn, &mut out).await {
                return Streamed::Done(false);
            }
        }
        Streamed::Done(self.flush(conn, &mut out).await)
    }

    fn count_body(&self, claim: &Claim, n: usize) {
        let counter = match claim {
            Claim::Hit(_) => &self.metrics().cache_bytes_hit,
            _ => &self.metrics().cache_bytes_miss,
        };
        WorkerMetrics::add(counter, n as u64);
    }

    async fn flush(&self, conn: &mut ClientConn, out: &mut Out) -> bool {
        let parts = std::mem::take(&mut out.pending);
        out.pending_len = 0;
        match conn.write_vectored(parts).await {
            Ok(n) => {
                out.sent += n as u64;
                WorkerMetrics::add(&self.metrics().bytes_out, n as u64);
                true
            }
            Err(_) => false,
        }
    }

    /// One fill task per run of consecutive blocks this request claimed.
    fn start_fills(
        &self,
        object: &ObjectId,
        meta: &Arc<ObjectMeta>,
        to_fill: Vec<(u64, BlockKey, Arc<crate::cache::BlockFill>)>,
    ) {
        if to_fill.is_empty() {
            return;
        }
        let indices: Vec<u64> = to_fill.iter().map(|(i, _, _)| *i).collect();
        let mut claimed = to_fill.into_iter();
        for (first, last) in runs(&indices) {
            let blocks = claimed
                .by_ref()
                .take((last - first + 1) as usize)
                .map(|(_, k, f)| (k, f))
                .collect();
            spawn_fill(
                self.ctx,
                FillRun {
                    origin: self.origin.clone(),
                    path: uri::origin_path(self.origin_bucket, Some(self.key)),
                    object: object.clone(),
                    etag: meta.etag.clone(),
                    size: meta.size,
                    block_size: self.ctx.cache.config().block_size,
                    blocks,
                },
            );
        }
    }
}

/// Pending response slices, written with one vectored write when flushed.
struct Out {
    pending: Vec<Bytes>,
    pending_len: usize,
    sent: u64,
}

impl Out {
    fn push(&mut self, b: Bytes) {
        self.pending_len += b.len();
        self.pending.push(b);
    }
}

enum Streamed {
    Done(bool),
    Changed,
    Failed(FillError),
}

/// Most blocks one first fetch asks for, so an open-ended range does not turn into a scan.
const FIRST_FETCH_MAX_BLOCKS: u64 = 16;

/// The origin Range of a first fetch for `spec`: whole blocks around it (the size is not
/// known yet; the origin clamps past the end), or for a suffix one block more than asked, so
/// that the blocks holding the suffix are covered whole.
fn first_fetch_range(spec: RangeSpec, bs: u64) -> String {
    match spec {
        RangeSpec::FromTo { first, last } => {
            let a = first / bs;
            let b = (last / bs).min(a + FIRST_FETCH_MAX_BLOCKS - 1);
            format!("bytes={}-{}", a * bs, (b + 1) * bs - 1)
        }
        RangeSpec::From { first } => {
            let a = first / bs;
            format!("bytes={}-{}", a * bs, (a + FIRST_FETCH_MAX_BLOCKS) * bs - 1)
        }
        RangeSpec::Suffix { len } => format!("bytes=-{}", len.saturating_add(bs)),
    }
}

/// Indices of the blocks that lie wholly inside `got` in an object of `size` bytes.
fn whole_blocks_in(got: ByteRange, bs: u64, size: u64) -> std::ops::RangeInclusive<u64> {
    let first = got.first.div_ceil(bs);
    let end = if got.last + 1 == size {
        size.div_ceil(bs)
    } else {
        (got.last + 1) / bs
    };
    // `first..=end - 1`, empty when no block fits.
    if end > first {
        first..=end - 1
    } else {
        #[allow(clippy::reversed_empty_ranges)]
        let empty = 1..=0;
        empty
    }
}

/// Publishes a fallback outcome (if the leader published none) and ends the lookup, so
/// followers never wait forever on a leader that went away.
struct LeadGuard<'a> {
    ctx: &'a WorkerCtx,
    object: &'a ObjectId,
    flight: &'a Arc<Flight<Lookup>>,
}

impl Drop for LeadGuard<'_> {
    fn drop(&mut self) {
        self.flight.publish(Err(LookupError::Abandoned));
        self.ctx.cache.meta.release(self.object, self.flight);
    }
}

/// The S3 error for a failed metadata lookup.
fn lookup_error(e: LookupError) -> S3Error {
    match e {
        LookupError::Timeout => S3Error::gateway_timeout(),
        LookupError::Unreachable => {
            S3Error::bad_gateway("the origin could not be reached or failed to respond")
        }
        LookupError::Abandoned => S3Error::slow_down(),
    }
}

/// True for `x-amz-checksum-*` response headers.
fn is_checksum_header(name: &[u8]) -> bool {
    name.len() > 15 && name[..15].eq_ignore_ascii_case(b"x-amz-checksum-")
}

/// The S3 error a client sees when the fill for its first block failed.
fn fill_error(e: &FillError) -> S3Error {
    match e {
        FillError::Timeout => S3Error::gateway_timeout(),
        FillError::Status(503) => S3Error::slow_down(),
        FillError::Status(_) | FillError::Truncated | FillError::Unreachable => {
            S3Error::bad_gateway("the origin could not be reached or failed to respond")
        }
        FillError::Changed | FillError::Abandoned => S3Error::slow_down(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn first_fetch_covers_whole_blocks() {
        assert_eq!(
            first_fetch_range(
                RangeSpec::FromTo {
                    first: 10,
                    last: 20
                },
                MB
            ),
            "bytes=0-1048575"
        );
        assert_eq!(
            first_fetch_range(
                RangeSpec::FromTo {
                    first: MB + 5,
                    last: 3 * MB
                },
                MB
            ),
            format!("bytes={}-{}", MB, 4 * MB - 1)
        );
        assert_eq!(
            first_fetch_range(RangeSpec::From { first: 0 }, MB),
            format!("bytes=0-{}", 16 * MB - 1)
        );
        assert_eq!(
            first_fetch_range(RangeSpec::Suffix { len: 65536 }, MB),
            format!("bytes=-{}", MB + 65536)
        );
    }

    #[test]
    fn whole_blocks_only() {
        let r = |a, b| ByteRange { first: a, last: b };
        // got the whole first two blocks of a 3 MiB object
        assert_eq!(
            whole_blocks_in(r(0, 2 * MB - 1), MB, 3 * MB).collect::<Vec<_>>(),
            vec![0, 1]
        );
        // a suffix ending at the object's end covers its short last block
        assert_eq!(
            whole_blocks_in(r(MB + 10, 2 * MB + 99), MB, 2 * MB + 100).collect::<Vec<_>>(),
            vec![2]
        );
        // nothing whole
        assert_eq!(whole_blocks_in(r(10, MB - 1), MB, 3 * MB).count(), 0);
        // a small object fetched whole
        assert_eq!(
            whole_blocks_in(r(0, 99), MB, 100).collect::<Vec<_>>(),
            vec![0]
        );
    }
}
