//! The read pipeline: from (object, range, conditions) to an answer and a stream of `Bytes`.
//!
//! The pipeline owns everything between a client's GET or HEAD and the bytes of the answer:
//! metadata lookup and its coalescing ([`lookup`]), the plan (conditionals, ranges, what the
//! cache cannot answer), block claims within a bounded window ([`stream`]), fills with retries
//! and resumption ([`filler`]), the ETag re-plan, and the accounting of all of it. The origin is
//! reached only through [`OriginFetch`], so the whole path runs against an in-process fake in
//! tests. The server only speaks HTTP around it.
//!
//! Guarantees, whatever the caller does:
//! - the bytes of one answer come from one object version (blocks are keyed by ETag, fills
//!   send `If-Match`; a change seen before the first byte re-plans once, after it cuts);
//! - a response holds at most `cache.readahead_window` of blocks ahead of its consumer, and
//!   bytes of fills in flight are charged to `cache.inflight_memory`;
//! - dropping a [`BodyStream`] releases everything it claimed; fills other requests read
//!   still complete.

pub mod early;
pub mod fetch;
mod filler;
mod lookup;
mod prefetch;
mod retry;
mod stream;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

pub use fetch::{FetchBody, OriginFetch};
pub use lookup::first_fetch_range;
pub use retry::MAX_ATTEMPTS;
pub use stream::BodyStream;

use super::conditional::{evaluate, Condition, Preconditions};
use super::range::{resolve, ByteRange, RangeSpec, Resolved};
use super::{Cache, ObjectId, ObjectMeta};
use crate::error::Error;
use crate::{Metrics, WorkerMetrics};
use filler::Target;
use lookup::Ask;

/// What the pipeline uses on one worker: the shared cache and that worker's metrics block.
pub struct ReadEnv {
    /// The cache shared by all workers.
    pub cache: Arc<Cache>,
    metrics: Arc<Metrics>,
    worker: usize,
}

impl ReadEnv {
    /// The pipeline of worker `worker`, which writes its counters into `metrics.worker(worker)`.
    pub fn new(cache: Arc<Cache>, metrics: Arc<Metrics>, worker: usize) -> Rc<Self> {
        Rc::new(Self {
            cache,
            metrics,
            worker,
        })
    }

    /// This worker's metrics block.
    pub fn metrics(&self) -> &WorkerMetrics {
        self.metrics.worker(self.worker)
    }
}

/// One cacheable read (GET or HEAD of an object).
#[derive(Debug, Clone)]
pub struct ReadRequest<'a> {
    /// The object, as the cache keys it.
    pub object: ObjectId,
    /// The client's single byte range, `None` for the whole object.
    pub range: Option<RangeSpec>,
    /// `If-Match` and friends.
    pub preconditions: Preconditions<'a>,
    /// A HEAD: the answer has no body.
    pub head_only: bool,
    /// The client asked for the object's checksums (`x-amz-checksum-mode: ENABLED`).
    pub wants_checksums: bool,
    /// Longest wait for in-flight budget before the read fails as busy.
    pub budget_wait: Duration,
}

/// The pipeline's answer to a read.
// Returned once per request and matched at once: boxing the body would cost an allocation
// per response for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Answer<F: OriginFetch> {
    /// The cache cannot answer exactly as the origin would (the origin's metadata answer was
    /// not a plain 200, or checksums are due that the cached metadata lacks): pass the request
    /// through. Nothing was written.
    PassThrough,
    /// `304 Not Modified`.
    NotModified(Arc<ObjectMeta>),
    /// `412 Precondition Failed`.
    PreconditionFailed,
    /// `416`: the range cannot be satisfied for an object of this metadata.
    Unsatisfiable(Arc<ObjectMeta>),
    /// `200` (whole object) or `206` (a range): the metadata, the bytes answered (`None` for
    /// an empty object), and for GETs with bytes to send, the body, primed with its first
    /// bytes.
    Object {
        /// The object's metadata.
        meta: Arc<ObjectMeta>,
        /// The bytes answered.
        range: Option<ByteRange>,
        /// `206` when true.
        partial: bool,
        /// The body; `None` for HEAD and for empty answers.
        body: Option<BodyStream<F>>,
    },
}

/// Plan and open `req`, asking `fetch` for what the cache lacks. Returns once the first bytes
/// of the body are here (or it failed), so that a changed object is re-planned once and a
/// failed first fill is an error the caller can still answer cleanly.
pub async fn open<F: OriginFetch>(
    env: &Rc<ReadEnv>,
    fetch: Rc<F>,
    req: &ReadRequest<'_>,
) -> Result<Answer<F>, Error> {
    let bs = env.cache.config().block_size;
    let ask = match req.range {
        _ if req.head_only => Ask::Head,
        // Whole-object checksums come only with a HEAD's metadata.
        None if req.wants_checksums => Ask::Head,
        Some(spec) => Ask::FirstFetch(lookup::first_fetch_range(spec, bs)),
        None => Ask::FirstFetch(lookup::first_fetch_range(RangeSpec::From { first: 0 }, bs)),
    };
    // Early GETs (see `early`) only for ranges with both ends: an open-ended read of a small
    // object would send GETs past its end.
    let want = match (ask, req.range) {
        (Ask::FirstFetch(_), Some(RangeSpec::FromTo { first, last })) if first <= last => {
            Some(ByteRange::new(first, last))
        }
        _ => None,
    };
    let mut replanned = false;
    loop {
        let Some(found) = lookup::find(env, &fetch, &req.object, ask, want).await? else {
            return Ok(Answer::PassThrough);
        };
        let meta = found.meta;
        match evaluate(&req.preconditions, &meta.etag, meta.last_modified) {
            Condition::Proceed => {}
            Condition::NotModified => return Ok(Answer::NotModified(meta)),
            Condition::PreconditionFailed => return Ok(Answer::PreconditionFailed),
        }
        let (range, partial) = match resolve(req.range, meta.size) {
            Resolved::Unsatisfiable => return Ok(Answer::Unsatisfiable(meta)),
            Resolved::Full => (
                (meta.size > 0).then(|| ByteRange::new(0, meta.size - 1)),
                false,
            ),
            Resolved::Partial(r) => (Some(r), true),
        };
        if !partial && req.wants_checksums && !meta.checksums_known {
            // The whole object's checksum is due and this metadata came from a ranged GET,
            // which carries none: the origin answers this one.
            return Ok(Answer::PassThrough);
        }
        let body_range = match range {
            Some(r) if !req.head_only => r,
            _ => {
                return Ok(Answer::Object {
                    meta,
                    range,
                    partial,
                    body: None,
                })
            }
        };
        let target = Rc::new(Target {
            object: req.object.clone(),
            etag: meta.etag.clone(),
            size: meta.size,
            block_size: bs,
        });
        let mut body = BodyStream::new(
            env.clone(),
            fetch.clone(),
            target.clone(),
            body_range,
            found.opened,
            found.early,
            req.budget_wait,
        );
        // Claim the blocks this read fills before other requests for the object (waiting on
        // its metadata) go on: they join these fills instead of racing them.
        let claimed = body.claim().await;
        drop(found.lead);
        claimed?;
        // Prefetches start now, beside this read's own fills rather than after its first
        // byte: a reader that keeps up finds them further along. (A re-plan is the same read
        // again: it is not reported twice.)
        if !replanned {
            prefetch::after_read(env, &fetch, &target, body_range);
        }
        match body.prime().await {
            Ok(()) => {
                return Ok(Answer::Object {
                    meta,
                    range,
                    partial,
                    body: Some(body),
                });
            }
            Err(e) if e.kind() == crate::ErrorKind::Changed && !replanned => {
                replanned = true;
                WorkerMetrics::add(&env.metrics().replans, 1);
                env.cache.meta.invalidate(&req.object);
            }
            Err(e) => return Err(e),
        }
    }
}
