//! Object metadata for a read: from the metadata cache, or from the origin once for all
//! concurrent misses of the object on any worker.
//!
//! A cold GET learns the metadata from its first fetch: a ranged GET from the client's first
//! byte, whose 206 tells size, ETag and headers, and whose body then fills the client's blocks.
//! One origin round trip for a cold object instead of a HEAD and then a GET; a HEAD is sent
//! only for HEAD requests, for whole-object reads that want checksums, and when the GET's
//! answer is not a usable 206.

use std::rc::Rc;
use std::sync::Arc;

use super::early::{self, EarlyGet};
use super::fetch::OriginFetch;
use super::filler::OpenBody;
use super::retry::{backoff, MAX_ATTEMPTS};
use super::ReadEnv;
use crate::cache::flight::Flight;
use crate::cache::range::{ByteRange, RangeSpec};
use crate::cache::registry::Role;
use crate::cache::{Lookup, ObjectId, ObjectMeta};
use crate::error::{Error, ErrorKind, Side};
use crate::http::ResponseHead;
use crate::WorkerMetrics;

/// How a lookup asks the origin when the metadata is not cached.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ask {
    /// `HEAD` the object (with checksums).
    Head,
    /// `GET` these bytes (see [`first_fetch_range`]) and learn the metadata from the answer.
    FirstFetch(RangeSpec),
}

/// Metadata found for a read, and, when this request's own first fetch found it, the body of
/// that fetch, positioned at the client's first byte, with the lookup still held: other
/// requests for the object wait until this one has claimed the blocks that body fills (see
/// [`MetaLead`]), so they join its fills instead of racing it with fills of their own. When
/// the object was cold, also the GETs this read sent for its first window while the lookup
/// was in flight ([`early`]).
pub(crate) struct Found<B> {
    pub meta: Arc<ObjectMeta>,
    pub opened: Option<OpenBody<B>>,
    pub lead: Option<MetaLead>,
    pub early: Vec<EarlyGet<B>>,
}

/// A metadata lookup this request leads. Dropping it publishes the outcome to the requests
/// waiting on it (or, if none was set, that the lead was abandoned) and ends the lookup, so
/// followers never wait forever on a leader that went away.
pub(crate) struct MetaLead {
    env: Rc<ReadEnv>,
    object: ObjectId,
    flight: Arc<Flight<Lookup>>,
    outcome: Option<Lookup>,
    /// The first fetch's bytes, reserved against early GETs of other reads until the blocks
    /// it fills are claimed.
    _first_fetch: Vec<early::Reservation>,
}

impl Drop for MetaLead {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or_else(|| {
            Err(Error::new(
                ErrorKind::Abandoned,
                Side::Internal,
                "metadata lookup abandoned",
            ))
        });
        self.flight.publish(outcome);
        self.env.cache.meta.release(&self.object, &self.flight);
    }
}

/// Most blocks a first fetch asks for, so an open-ended range does not turn into a scan.
const FIRST_FETCH_MAX_BLOCKS: u64 = 16;

/// The origin range of a first fetch for `spec`: from the client's first byte (unknown
/// object size: the origin clamps past the end) to the end of the block holding its last
/// byte, at most [`FIRST_FETCH_MAX_BLOCKS`] blocks; a suffix is asked as the same suffix.
///
/// A range long enough to be split over parallel runs (two of at least
/// [`MIN_SPLIT_BYTES`](super::stream::MIN_SPLIT_BYTES), or open-ended) asks for one such run:
/// the rest is fetched by parallel runs, sent as soon as this answer brings the ETag, instead
/// of waiting for one stream to deliver the whole first fetch (8 MiB at 80 MB/s: 100 ms).
pub fn first_fetch_range(spec: RangeSpec, bs: u64) -> RangeSpec {
    let split_run = super::stream::MIN_SPLIT_BYTES.div_ceil(bs).max(1);
    let end_of = |first: u64, last_block: u64| {
        let first_block = first / bs;
        let cap = if last_block.saturating_sub(first_block) >= 2 * split_run - 1 {
            split_run
        } else {
            FIRST_FETCH_MAX_BLOCKS
        };
        let last_block = last_block.min(first_block + cap - 1);
        RangeSpec::FromTo {
            first,
            last: (last_block + 1) * bs - 1,
        }
    };
    match spec {
        RangeSpec::FromTo { first, last } => end_of(first, last / bs),
        RangeSpec::From { first } => end_of(first, u64::MAX),
        RangeSpec::Suffix { .. } => spec,
    }
}

/// The metadata of `object`, asking the origin with `ask` on a miss. `Ok(None)`: the origin
/// did not answer a plain 200/206 (missing object, no permission, ...): the request is passed
/// through for the origin's real answer.
///
/// `want` is the read's byte range when it has one before the size is known (not a suffix):
/// when the object is cold (no metadata here, expired or not, and nothing on disk), the GETs
/// of its first window that no other read of this lookup sent yet go out at once (see
/// [`early`]), beside the lookup's own first fetch.
pub(crate) async fn find<F: OriginFetch>(
    env: &Rc<ReadEnv>,
    fetch: &Rc<F>,
    object: &ObjectId,
    ask: Ask,
    want: Option<ByteRange>,
) -> Result<Option<Found<F::Body>>, Error> {
    let meta = &env.cache.meta;
    let m = env.metrics();
    let found = |meta| Ok(Some(meta_only(meta)));
    let on_disk = || {
        env.cache
            .disk
            .as_ref()
            .is_some_and(|d| d.holds_object(object))
    };
    let cold = || !meta.knows(object) && !on_disk();
    let bs = env.cache.config().block_size;
    let window = (env.cache.config().readahead_window / bs).max(1);
    let plan = |want: ByteRange| early::first_window_runs(want, bs, window);
    if let Some(cached) = meta.get(object) {
        WorkerMetrics::add(&m.meta_hits, 1);
        return found(cached);
    }
    // A leader's first fetch and the rest of its first window, reserved against other reads'
    // early GETs before any of them can follow its lookup (under the lookup registry's lock).
    let mut lead_early = None;
    let on_lead = || {
        lead_early = match (want.filter(|_| cold()), ask) {
            (Some(want), Ask::FirstFetch(RangeSpec::FromTo { first, last })) => {
                let mut runs = plan(want);
                runs.retain(|r| r.first > last);
                Some((
                    early::reserve(env, object, vec![ByteRange::new(first, last)]),
                    early::reserve(env, object, runs),
                ))
            }
            _ => None,
        };
    };
    match meta.claim_with(object, on_lead) {
        Role::Ready(cached) => {
            WorkerMetrics::add(&m.meta_hits, 1);
            found(cached)
        }
        Role::Follow(flight) => {
            WorkerMetrics::add(&m.meta_misses, 1);
            let early = match want.filter(|_| cold()) {
                Some(want) => early::send(env, fetch, early::reserve(env, object, plan(want))),
                None => Vec::new(),
            };
            match flight.wait().await? {
                Some(meta) => Ok(Some(Found {
                    early,
                    ..meta_only(meta)
                })),
                None => Ok(None),
            }
        }
        Role::Lead(flight) => {
            WorkerMetrics::add(&m.meta_misses, 1);
            let (first_reserved, companions) = lead_early.unzip();
            let mut lead = MetaLead {
                env: env.clone(),
                object: object.clone(),
                flight,
                outcome: None,
                _first_fetch: first_reserved.unwrap_or_default(),
            };
            // Blocks of the object on disk (from before a restart, or evicted from RAM): learn
            // the current metadata with a HEAD, then read them, rather than GET them again.
            let ask = match ask {
                Ask::FirstFetch(_) if on_disk() => Ask::Head,
                ask => ask,
            };
            let result = match ask {
                Ask::FirstFetch(range) => {
                    // The rest of the first window goes out beside the first fetch.
                    let early = early::send(env, fetch, companions.unwrap_or_default());
                    first_fetch(env, &**fetch, object, range)
                        .await
                        .map(|f| f.map(|f| Found { early, ..f }))
                }
                Ask::Head => head_lookup(env, &**fetch, object)
                    .await
                    .map(|m| m.map(meta_only)),
            };
            lead.outcome = Some(match &result {
                Ok(found) => Ok(found.as_ref().map(|f| f.meta.clone())),
                Err(e) => Err(e.clone()),
            });
            match result {
                // Published once the caller has claimed what its open body fills.
                Ok(Some(mut found)) if found.opened.is_some() => {
                    found.lead = Some(lead);
                    Ok(Some(found))
                }
                other => other,
            }
        }
    }
}

/// GET `range` without `If-Match` (the ETag is not known yet), retrying transient failures;
/// a usable 206 gives the metadata and an open body, anything else falls back to a HEAD.
async fn first_fetch<F: OriginFetch>(
    env: &Rc<ReadEnv>,
    fetch: &F,
    object: &ObjectId,
    range: RangeSpec,
) -> Result<Option<Found<F::Body>>, Error> {
    let m = env.metrics();
    let mut attempt = 0;
    loop {
        let epoch = env.cache.meta.epoch();
        WorkerMetrics::add(&m.fill_requests, 1);
        let sent = std::time::Instant::now();
        let answer = fetch.get(range, None).await;
        let failure = match answer {
            Ok((resp, body)) => match ObjectMeta::from_partial_get(&resp) {
                Some((meta, got)) if resp.status() == 206 => {
                    let meta = Arc::new(meta);
                    env.cache.meta.insert(object.clone(), meta.clone(), epoch);
                    return Ok(Some(Found {
                        opened: Some(OpenBody::new(body, got.first, got.last, sent)),
                        ..meta_only(meta)
                    }));
                }
                _ if is_server_error(&resp) => {
                    Error::origin_status(resp.status(), "first fetch answered a server error")
                }
                // 416 (an empty object), 404, 403, an origin that ignores Range, ...: the
                // HEAD decides. The body is dropped unread, closing its connection.
                _ => {
                    return head_lookup(env, fetch, object)
                        .await
                        .map(|m| m.map(meta_only))
                }
            },
            Err(e) => e,
        };
        attempt += 1;
        if !failure.is_transient() || attempt >= MAX_ATTEMPTS {
            return Err(failure);
        }
        WorkerMetrics::add(&m.origin_retries, 1);
        monoio::time::sleep(backoff(attempt)).await;
    }
}

fn meta_only<B>(meta: Arc<ObjectMeta>) -> Found<B> {
    Found {
        meta,
        opened: None,
        lead: None,
        early: Vec::new(),
    }
}

fn is_server_error(head: &ResponseHead) -> bool {
    matches!(head.status(), 500 | 502 | 503 | 504)
}

/// HEAD the object, retrying transient failures, and cache a usable answer. Server errors
/// that outlast the retries are passed through (`Ok(None)`): the client gets the origin's
/// own answer.
async fn head_lookup<F: OriginFetch>(
    env: &Rc<ReadEnv>,
    fetch: &F,
    object: &ObjectId,
) -> Result<Option<Arc<ObjectMeta>>, Error> {
    let m = env.metrics();
    let mut attempt = 0;
    loop {
        let epoch = env.cache.meta.epoch();
        match fetch.head().await {
            Ok(resp) if resp.status() == 200 => {
                return Ok(ObjectMeta::from_head(&resp).map(|meta| {
                    let meta = Arc::new(meta);
                    // Cached before the lookup is published and released: see `Registry::claim`.
                    env.cache.meta.insert(object.clone(), meta.clone(), epoch);
                    meta
                }));
            }
            Ok(resp) if !is_server_error(&resp) || attempt + 1 >= MAX_ATTEMPTS => return Ok(None),
            Ok(_) => {}
            Err(e) if !e.is_transient() || attempt + 1 >= MAX_ATTEMPTS => return Err(e),
            Err(_) => {}
        }
        attempt += 1;
        WorkerMetrics::add(&m.origin_retries, 1);
        monoio::time::sleep(backoff(attempt)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn from_to(first: u64, last: u64) -> RangeSpec {
        RangeSpec::FromTo { first, last }
    }

    #[test]
    fn a_first_fetch_starts_at_the_clients_first_byte_and_ends_on_a_block_boundary() {
        assert_eq!(first_fetch_range(from_to(10, 20), MB), from_to(10, MB - 1));
        assert_eq!(
            first_fetch_range(from_to(MB + 5, 3 * MB), MB),
            from_to(MB + 5, 4 * MB - 1)
        );
        assert_eq!(
            first_fetch_range(from_to(0, 15 * MB), MB),
            from_to(0, 2 * MB - 1),
            "long enough for parallel runs: one run's worth"
        );
        assert_eq!(
            first_fetch_range(RangeSpec::From { first: 7 }, MB),
            from_to(7, 2 * MB - 1)
        );
        assert_eq!(
            first_fetch_range(from_to(0, 100 * MB), MB),
            from_to(0, 2 * MB - 1)
        );
        // Small blocks: at most the 16-block cap, or one run of at least 2 MiB.
        assert_eq!(
            first_fetch_range(from_to(0, 3 * MB), 64 << 10),
            from_to(0, MB - 1)
        );
        let suffix = RangeSpec::Suffix { len: 65536 };
        assert_eq!(first_fetch_range(suffix, MB), suffix);
    }
}
