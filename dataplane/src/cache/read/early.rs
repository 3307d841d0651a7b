//! Early GETs: origin requests for a cold object's blocks sent while its metadata is still
//! being looked up, so that the bytes come one origin first-byte latency sooner.
//!
//! A cold object's blocks are keyed by its ETag, which only the lookup's answer tells. Without
//! early GETs, every read of a cold object other than the lookup's own first fetch waits for
//! that answer (20-30 ms from S3) and only then sends its GETs (another 20-30 ms to their
//! first byte). A scan reaching a new file pays that at every file.
//!
//! So a read of an object the cache knows nothing about sends the GETs of its first window
//! at once, without `If-Match`, beside the lookup (a reader that leads the lookup sends them
//! beside its first fetch). Each is used only by the filler of a run that starts at the same
//! byte, and only if its answer is a `206` for that byte of the version the lookup found
//! (same ETag, same size); an answer of another version is a change of the object, handled
//! as a fill's `412` is. An early GET that no run starts with, or whose answer does not fit,
//! is dropped unread (its connection closed) and counted in
//! `rangecache_early_fetches_unused_total`.
//!
//! Only reads with both ends of their range given send early GETs (an open-ended read of a
//! small object would ask past its end), and only for objects of which the cache knows
//! nothing: not for a revalidation (expired metadata: the blocks may be cached) nor for an
//! object with blocks on the disk tier.
//!
//! Bounds: a read sends at most its first window's runs (`cache.readahead_window`, in runs
//! of at least 2 MiB: 4 GETs with the defaults); bytes are read from an early GET only by
//! the filler that adopts it, into blocks it claimed and charged to the in-flight budget, so
//! an unread early GET holds only its socket's buffers. Every early GET, and a leader's first
//! fetch, reserves its bytes in [`EarlyRanges`] until it is dropped: readers of the same
//! bytes (a herd) share one set of GETs instead of sending one each, and sequential
//! read-ahead leaves those bytes to the reads that asked for them.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::ops::Range;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use monoio::task::JoinHandle;

use super::fetch::OriginFetch;
use super::stream::run_blocks;
use super::ReadEnv;
use crate::cache::range::{ByteRange, RangeSpec};
use crate::cache::ObjectId;
use crate::error::Error;
use crate::http::ResponseHead;
use crate::WorkerMetrics;

/// An origin GET sent before the object's ETag was known.
pub(crate) struct EarlyGet<B> {
    /// When it was sent.
    sent: Instant,
    /// Its answer, once its head arrives; `None` once taken.
    answer: Option<JoinHandle<Result<(ResponseHead, B), Error>>>,
    /// The bytes it asked for (the origin may clamp the end), reserved until it is dropped
    /// (adopted or not).
    reserved: Reservation,
}

impl<B: 'static> EarlyGet<B> {
    /// Object offset of its first byte.
    pub(crate) fn first(&self) -> u64 {
        self.reserved.range.start
    }

    /// Object offset of the last byte it asked for.
    pub(crate) fn last(&self) -> u64 {
        self.reserved.range.end - 1
    }

    /// Its answer (waiting for the head if it has not arrived), and when it was sent. The
    /// caller judges the answer; one it cannot use it reports with [`unused`].
    pub(crate) async fn answer(mut self) -> (Result<(ResponseHead, B), Error>, Instant) {
        let answer = self.answer.take().expect("an early GET is answered once");
        (answer.await, self.sent)
    }
}

/// Count an early GET whose answer could not be used.
pub(crate) fn unused(env: &ReadEnv) {
    WorkerMetrics::add(&env.metrics().early_fetches_unused, 1);
}

impl<B> Drop for EarlyGet<B> {
    /// Untaken: its task goes on until the answer's head arrives, then drops the answer,
    /// closing its connection.
    fn drop(&mut self) {
        if self.answer.is_some() {
            unused(&self.reserved.env);
        }
    }
}

/// The runs a read of `want` fetches first, as `BodyStream` plans them when none of its
/// blocks is cached: the first from the read's first byte to the end of its run's last
/// block, each further one from a block's start; all within the first `window_blocks`
/// blocks of the read and its last block. Ranges may end past the object (the origin clamps).
pub(crate) fn first_window_runs(want: ByteRange, bs: u64, window_blocks: u64) -> Vec<ByteRange> {
    let first_block = want.first / bs;
    let last_block = (want.last / bs).min(first_block + window_blocks.max(1) - 1);
    let mut runs = Vec::new();
    let mut index = first_block;
    while index <= last_block {
        let missing = want.last / bs - index + 1;
        let n = run_blocks(
            missing.min(super::stream::MAX_RUN_BLOCKS),
            window_blocks,
            bs,
        );
        let last = (index + n - 1).min(last_block);
        let first = if index == first_block {
            want.first
        } else {
            index * bs
        };
        runs.push(ByteRange::new(first, (last + 1) * bs - 1));
        index = last + 1;
    }
    runs
}

/// The byte ranges of cold objects that early GETs are out for, shared by all workers: a read
/// sends no early GET for bytes another read already asked for (readers of one range share
/// one set of GETs), and prefetches leave those bytes to the reads that asked for them.
pub struct EarlyRanges {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
    /// Objects with ranges reserved: when 0, [`EarlyRanges::covers`] takes no lock.
    objects: AtomicUsize,
}

const SHARDS: usize = 16;

/// The objects of one shard, each with its reserved byte ranges (never empty).
type Shard = HashMap<ObjectId, Vec<Range<u64>>>;

impl Default for EarlyRanges {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
            objects: AtomicUsize::new(0),
        }
    }
}

impl EarlyRanges {
    fn shard(&self, object: &ObjectId) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(object) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Of `runs`, those overlapping no range reserved for `object`; they are reserved now.
    fn reserve(&self, object: &ObjectId, runs: Vec<ByteRange>) -> Vec<ByteRange> {
        let mut shard = self.shard(object);
        let ranges = shard.entry(object.clone()).or_default();
        let was_empty = ranges.is_empty();
        let mut free = Vec::with_capacity(runs.len());
        for r in runs {
            let span = r.first..r.last + 1;
            if ranges
                .iter()
                .all(|o| o.end <= span.start || span.end <= o.start)
            {
                ranges.push(span);
                free.push(r);
            }
        }
        match (was_empty, ranges.is_empty()) {
            (true, false) => {
                self.objects.fetch_add(1, Relaxed);
            }
            (true, true) => {
                shard.remove(object);
            }
            _ => {}
        }
        free
    }

    fn release(&self, object: &ObjectId, range: &Range<u64>) {
        let mut shard = self.shard(object);
        let Some(ranges) = shard.get_mut(object) else {
            return;
        };
        if let Some(i) = ranges.iter().position(|r| r == range) {
            ranges.swap_remove(i);
        }
        if ranges.is_empty() {
            shard.remove(object);
            self.objects.fetch_sub(1, Relaxed);
        }
    }

    /// Whether an early GET is out for any of bytes `first..=last` of `object`.
    pub fn covers(&self, object: &ObjectId, first: u64, last: u64) -> bool {
        if self.objects.load(Relaxed) == 0 {
            return false;
        }
        self.shard(object)
            .get(object)
            .is_some_and(|rs| rs.iter().any(|r| r.start <= last && first < r.end))
    }
}

/// Bytes of an object reserved in [`EarlyRanges`] until dropped.
pub(crate) struct Reservation {
    env: Rc<ReadEnv>,
    object: ObjectId,
    range: Range<u64>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.env.cache.early.release(&self.object, &self.range);
    }
}

/// Reserve those of `runs` of `object` that overlap no range reserved before, each until its
/// [`Reservation`] is dropped.
pub(crate) fn reserve(
    env: &Rc<ReadEnv>,
    object: &ObjectId,
    runs: Vec<ByteRange>,
) -> Vec<Reservation> {
    env.cache
        .early
        .reserve(object, runs)
        .into_iter()
        .map(|r| Reservation {
            env: env.clone(),
            object: object.clone(),
            range: r.first..r.last + 1,
        })
        .collect()
}

/// Send a GET without `If-Match` for each of `reserved`, each on a task of its own; returns
/// them in the order given.
pub(crate) fn send<F: OriginFetch>(
    env: &Rc<ReadEnv>,
    fetch: &Rc<F>,
    reserved: Vec<Reservation>,
) -> Vec<EarlyGet<F::Body>> {
    let m = env.metrics();
    reserved
        .into_iter()
        .map(|r| {
            WorkerMetrics::add(&m.fill_requests, 1);
            WorkerMetrics::add(&m.early_fetches, 1);
            let fetch = fetch.clone();
            let range = RangeSpec::FromTo {
                first: r.range.start,
                last: r.range.end - 1,
            };
            EarlyGet {
                sent: Instant::now(),
                answer: Some(monoio::spawn(async move { fetch.get(range, None).await })),
                reserved: r,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn r(a: u64, b: u64) -> ByteRange {
        ByteRange::new(a, b)
    }

    #[test]
    fn a_long_read_is_planned_as_its_first_window_in_split_runs() {
        assert_eq!(
            first_window_runs(r(8 * MB, 16 * MB - 1), MB, 8),
            vec![
                r(8 * MB, 10 * MB - 1),
                r(10 * MB, 12 * MB - 1),
                r(12 * MB, 14 * MB - 1),
                r(14 * MB, 16 * MB - 1)
            ]
        );
        // Only the first window of a longer read; an unaligned first byte starts the first run.
        let runs = first_window_runs(r(5, 100 * MB), MB, 8);
        assert_eq!(runs.len(), 4);
        assert_eq!(runs[0], r(5, 2 * MB - 1));
        assert_eq!(runs[3], r(6 * MB, 8 * MB - 1));
    }

    #[test]
    fn a_short_read_is_one_run_to_the_end_of_its_block() {
        assert_eq!(first_window_runs(r(100, 200), MB, 8), vec![r(100, MB - 1)]);
        assert_eq!(
            first_window_runs(r(MB, 3 * MB - 1), MB, 8),
            vec![r(MB, 3 * MB - 1)]
        );
    }

    #[test]
    fn overlapping_runs_are_reserved_once_and_released() {
        let set = EarlyRanges::default();
        let o = ObjectId::new("o", "b", "k");
        assert!(!set.covers(&o, 0, 10));
        assert_eq!(
            set.reserve(&o, vec![r(0, 99), r(100, 199)]),
            vec![r(0, 99), r(100, 199)]
        );
        assert_eq!(
            set.reserve(&o, vec![r(50, 60), r(200, 299)]),
            vec![r(200, 299)],
            "a herd's second reader sends nothing twice"
        );
        assert!(set.covers(&o, 150, 150));
        assert!(!set.covers(&o, 300, 400));
        assert!(!set.covers(&ObjectId::new("o", "b", "other"), 0, 10));
        for range in [0..100, 100..200, 200..300] {
            set.release(&o, &range);
        }
        assert!(!set.covers(&o, 0, 300));
        assert_eq!(set.objects.load(Relaxed), 0);
    }
}
