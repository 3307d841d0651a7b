//! Running prefetches: after each read, ask the prefetcher what comes next and start fills for
//! the blocks of it that are neither cached nor in flight, in a few parallel origin GETs.

use std::rc::Rc;
use std::sync::Arc;

use super::fetch::OriginFetch;
use super::filler::{Feed, Filler, Step, Target};
use super::ReadEnv;
use crate::cache::prefetch::parquet::{footer_len, Layout, MAX_FOOTER};
use crate::cache::range::{block_bytes, block_span, ByteRange};
use crate::cache::{BlockKey, Claim};

/// Origin GETs one prefetch spreads over: one S3 stream delivers 80-100 MB/s, so a reader
/// that outruns one stream is fed by several.
const STREAMS: u64 = 4;

/// Most bytes of sequential read-ahead one read starts: [`STREAMS`] runs of 4 MiB. A run fills
/// its blocks in order, so a reader (or another reader of the same scan) that lands on a
/// run's last block waits for the bytes before it; 4 MiB is 40-50 ms of one stream. The rest
/// of the window is asked for by the reader's next reads, so a steady reader's lead still
/// grows to `prefetch.max_window`.
const SEQUENTIAL_STEP: u64 = STREAMS * (4 << 20);

/// Share of the in-flight budget prefetches may hold: the rest is always left to reads that
/// clients wait on.
const BUDGET_SHARE: u64 = 2;

/// After a read of `range` of `target` (its body: hits and misses alike), start the
/// prefetches it calls for. Returns at once; the fills run on this worker.
pub(crate) fn after_read<F: OriginFetch>(
    env: &Rc<ReadEnv>,
    fetch: &Rc<F>,
    target: &Rc<Target>,
    range: ByteRange,
) {
    let cache = &env.cache;
    let config = *cache.prefetch.config();
    if !config.enabled || !cache.enabled() {
        return;
    }
    // A Parquet file's layout says exactly what a reader wants next; guessing from the order
    // of its reads would also fetch the columns between the ones it reads (column chunks of
    // a row group lie side by side, so a reader skipping some still looks sequential).
    if let Some(layout) = config.parquet.then(|| layout(env, target)).flatten() {
        let depth = cache.prefetch.depth(&target.object, &target.etag);
        for r in layout.follow(range, config.max_window, depth) {
            if start(env, fetch, target, r).is_some() {
                break;
            }
        }
        return;
    }
    let bs = target.block_size;
    if let Some(ahead) = cache
        .prefetch
        .sequential(&target.object, range, target.size, bs)
    {
        let step = ByteRange::new(
            ahead.first,
            ahead.last.min(ahead.first + SEQUENTIAL_STEP.max(bs) - 1),
        );
        let stopped =
            start(env, fetch, target, step).or((step.last < ahead.last).then_some(step.last + 1));
        if let Some(at) = stopped {
            cache.prefetch.fell_short(&target.object, at);
        }
    }
}

/// The Parquet layout of `target`: known, or decoded now from the footer's blocks when the
/// store holds them all. `None` when it is not Parquet, or its footer is not cached yet.
fn layout(env: &ReadEnv, target: &Target) -> Option<Arc<Layout>> {
    let prefetch = &env.cache.prefetch;
    if let Some(known) = prefetch.layout(&target.object, &target.etag) {
        return known;
    }
    let size = target.size;
    if size < 12 {
        prefetch.set_layout(&target.object, &target.etag, None);
        return None;
    }
    let tail8 = tail(env, target, size - 8)?;
    let Some(meta_len) = footer_len(&tail8).filter(|&n| n + 8 <= MAX_FOOTER.min(size - 4)) else {
        prefetch.set_layout(&target.object, &target.etag, None);
        return None;
    };
    let footer = tail(env, target, size - 8 - meta_len)?;
    let layout = Layout::from_tail(&footer, size);
    prefetch.set_layout(&target.object, &target.etag, layout);
    prefetch.layout(&target.object, &target.etag).flatten()
}

/// The object's bytes from `from` to its end, if every block holding them is cached.
fn tail(env: &ReadEnv, target: &Target, from: u64) -> Option<Vec<u8>> {
    let bs = target.block_size;
    let span = block_span(ByteRange::new(from, target.size - 1), bs);
    let mut out = Vec::with_capacity((target.size - from) as usize);
    for index in span.indices() {
        let key = BlockKey::new(target.object.clone(), target.etag.clone(), index);
        let block = env.cache.store.peek(&key)?;
        let skip = from.saturating_sub(index * bs) as usize;
        out.extend_from_slice(block.get(skip..)?);
    }
    Some(out)
}

/// Fill the blocks of `range` that are neither cached (in RAM or on disk) nor in flight, in up
/// to [`STREAMS`] runs, each its own origin GET. Stops (counting what it left out as
/// cancelled) when the budget's prefetch share is spent, and returns the object offset where
/// it stopped; `None` when all of `range` is cached or started.
fn start<F: OriginFetch>(
    env: &Rc<ReadEnv>,
    fetch: &Rc<F>,
    target: &Rc<Target>,
    range: ByteRange,
) -> Option<u64> {
    let cache = &env.cache;
    let bs = target.block_size;
    let span = block_span(range, bs);
    let per_stream = span.len().div_ceil(STREAMS).max(1);
    let limit = cache.budget.stats().capacity / BUDGET_SHARE;
    let mut run: Option<(Feed, u64, u64)> = None; // (feed, next block, blocks left in it)
    for index in span.indices() {
        let key = BlockKey::new(target.object.clone(), target.etag.clone(), index);
        let bytes = block_bytes(index, bs, target.size);
        // Cached, or a read's early GET is bringing it (that read claims it when it goes on).
        if cache.holds(&key) || cache.early.covers(&target.object, bytes.first, bytes.last) {
            run = None;
            continue;
        }
        let len = bytes.len();
        let Some(permit) = cache.budget.try_acquire_within(len, limit) else {
            cache.prefetch.cancelled(span.last_block - index + 1);
            return Some(index * bs);
        };
        let Claim::Fill(_fill, mut writers) = cache.inflight.claim(&key, len as usize, None) else {
            run = None;
            continue;
        };
        let Some(writer) = writers.pop() else {
            continue;
        };
        cache.prefetch.fetched(key, len);
        let step = Step::Fill(writer, Rc::new(permit));
        match &mut run {
            Some((feed, next, left)) if *next == index && *left > 0 => {
                feed.push(step);
                *next += 1;
                *left -= 1;
            }
            _ => {
                let last = (index + per_stream - 1).min(span.last_block);
                let run_end = ((last + 1) * bs).min(target.size);
                let feed = Filler::new(env.clone(), fetch.clone(), target.clone(), run_end, None)
                    .spawn_run(index);
                feed.push(step);
                run = Some((feed, index + 1, last - index));
            }
        }
    }
    None
}
