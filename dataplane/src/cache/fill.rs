//! In-flight block fills: the first miss of a block becomes its filler; every later request
//! for it, on any worker, reads the same bytes as they arrive from the origin.
//!
//! A [`BlockFill`] is one block split into one or two *segments*, each written in order by one
//! [`SegmentWriter`]. A cold read that starts inside a block fills the block's tail (from the
//! client's first byte) and its head (the bytes before it) with two origin requests side by
//! side, so the client's first byte waits for nothing before it and the block still ends up
//! whole and aligned. Readers poll from their own offset and see each segment's bytes as they
//! arrive. Locks are `std` mutexes held only to append or to clone a piece: never across an
//! await or a syscall.
//!
//! A block is written where it will stay: into one buffer from the [`BufPool`] (exactly
//! sized for a block shorter than the pool's), each segment's writer owning a disjoint region
//! of it. Each piece is copied in once and published as a slice of that buffer, and the
//! finished block is the buffer itself, so the store never gets a copy, and blocks evicted
//! from RAM give their memory to the next fills.
//!
//! The protocol around the registry ("publish into the store, then release the key") is kept
//! here, by the writers: whatever their caller does, a completed block is in the store before
//! a new claim can miss it, and a failed or abandoned one is released so the next request
//! fetches it again.

use std::future::poll_fn;
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use bytes::{Bytes, BytesMut};

use super::buf::{AlignedBuf, BufPool, Region, SpanBuf};
use super::disk::DiskTier;
use super::registry::{Registry, Role};
use super::store::{BlockKey, BlockStore};
use crate::error::{Error, ErrorKind, Side};

/// One segment of a block: `range` of the block's bytes, written front to back.
struct Segment {
    range: Range<usize>,
    pieces: Vec<Bytes>,
    len: usize,
    outcome: Option<Result<(), Error>>,
}

impl Segment {
    fn new(range: Range<usize>) -> Self {
        Self {
            range,
            pieces: Vec::new(),
            len: 0,
            outcome: None,
        }
    }

    fn is_full(&self) -> bool {
        self.len == self.range.len()
    }
}

struct FillState {
    segments: Vec<Segment>,
    wakers: Vec<Waker>,
    /// The block's buffer, once a writer first pushed (a block read from disk whole never
    /// needs one), with the regions its writers have not taken yet.
    span: Option<(Arc<SpanBuf>, Vec<Option<Region>>)>,
    /// A writer lost its region (see [`SegmentWriter::lost`]): the buffer is not the block,
    /// which is copied together from the pieces instead.
    scattered: bool,
}

/// One block being fetched: each segment's bytes so far and its outcome.
pub struct BlockFill {
    expected: usize,
    pool: Arc<BufPool>,
    state: Mutex<FillState>,
}

impl BlockFill {
    /// A fill for a block of `expected` bytes, in one segment, or in two split at `split_at`
    /// (`[0, split_at)` and `[split_at, expected)`) when it is strictly inside the block,
    /// written into a buffer from `pool` (or an exact one when `expected` is not its size).
    pub fn new(expected: usize, split_at: Option<usize>, pool: Arc<BufPool>) -> Self {
        let segments = match split_at {
            Some(at) if at > 0 && at < expected => {
                vec![Segment::new(0..at), Segment::new(at..expected)]
            }
            _ => vec![Segment::new(0..expected)],
        };
        Self {
            expected,
            pool,
            state: Mutex::new(FillState {
                segments,
                wakers: Vec::new(),
                span: None,
                scattered: false,
            }),
        }
    }

    /// The region of the block's buffer that segment `seg`'s writer fills (its writer only,
    /// once). The buffer is taken on the first call for any segment.
    fn region(&self, seg: usize) -> Region {
        let mut st = self.lock();
        if st.span.is_none() {
            let buf = if self.expected == self.pool.size() {
                self.pool.take()
            } else {
                AlignedBuf::exact(self.expected)
            };
            let ranges: Vec<_> = st.segments.iter().map(|s| s.range.clone()).collect();
            let regions = SpanBuf::split(buf, self.pool.clone(), &ranges);
            let span = regions[0].span().clone();
            st.span = Some((span, regions.into_iter().map(Some).collect()));
        }
        let (_, regions) = st.span.as_mut().expect("set above");
        regions[seg]
            .take()
            .expect("each segment's region is taken once")
    }

    /// The block's full length.
    pub fn expected(&self) -> usize {
        self.expected
    }

    fn lock(&self) -> MutexGuard<'_, FillState> {
        // Every update leaves the fields consistent before the next can start, so a poisoned
        // lock (a panic elsewhere while holding it) still guards usable data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wake(wakers: Vec<Waker>) {
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Append `piece` to segment `seg` (its writer only; never past the segment's end).
    fn push(&self, seg: usize, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        let wakers = {
            let mut st = self.lock();
            let s = &mut st.segments[seg];
            debug_assert!(s.len + piece.len() <= s.range.len());
            s.len += piece.len();
            s.pieces.push(piece);
            std::mem::take(&mut st.wakers)
        };
        Self::wake(wakers);
    }

    /// Mark segment `seg` complete (its writer has dropped its region). Returns the whole
    /// block, for the store, when that was the last segment outstanding: the buffer the
    /// segments were written into, or, with `given`, a block its writer already holds in one
    /// buffer (a disk read).
    fn complete(&self, seg: usize, given: Option<Bytes>) -> Option<Bytes> {
        let (block, wakers) = {
            let mut st = self.lock();
            debug_assert!(st.segments[seg].is_full());
            st.segments[seg].outcome = Some(Ok(()));
            let whole = st
                .segments
                .iter()
                .all(|s| matches!(s.outcome, Some(Ok(()))));
            let single = given.filter(|b| b.len() == self.expected && st.segments.len() == 1);
            let block = whole.then(|| {
                if let Some(piece) = single {
                    return piece;
                }
                // Every writer dropped its region before completing, so the buffer is whole
                // unless a region was lost.
                let written = st.span.as_ref().filter(|_| !st.scattered);
                if let Some(block) = written.and_then(|(span, _)| span.whole(0..self.expected)) {
                    return block;
                }
                // A region was lost: copy the pieces, so the store holds (and counts) only
                // the block's own bytes, in one buffer.
                let mut buf = BytesMut::with_capacity(self.expected);
                for s in &st.segments {
                    s.pieces.iter().for_each(|p| buf.extend_from_slice(p));
                }
                let block = buf.freeze();
                let mut start = 0;
                for s in &mut st.segments {
                    s.pieces = vec![block.slice(start..start + s.len)];
                    start += s.len;
                }
                block
            });
            (block, std::mem::take(&mut st.wakers))
        };
        Self::wake(wakers);
        block
    }

    /// A writer lost its region: from now on the block is copied together at the end.
    fn scatter(&self) {
        self.lock().scattered = true;
    }

    /// Mark segment `seg` failed; its readers get `err` once they have read what is there.
    fn fail(&self, seg: usize, err: Error) {
        let wakers = {
            let mut st = self.lock();
            let s = &mut st.segments[seg];
            if s.outcome.is_some() {
                return;
            }
            s.outcome = Some(Err(err));
            std::mem::take(&mut st.wakers)
        };
        Self::wake(wakers);
    }

    /// True once every segment finished or failed.
    pub fn is_settled(&self) -> bool {
        self.lock().segments.iter().all(|s| s.outcome.is_some())
    }

    /// Bytes of the block present now (all segments).
    pub fn filled(&self) -> usize {
        self.lock().segments.iter().map(|s| s.len).sum()
    }

    /// True when a byte at `offset` is here now, or reading it would end at once (the block's
    /// end, or a failure): [`BlockFill::read`] would not wait.
    pub fn is_ready(&self, offset: usize) -> bool {
        if offset >= self.expected {
            return true;
        }
        let st = self.lock();
        st.segments
            .iter()
            .find(|s| s.range.contains(&offset))
            .is_none_or(|s| offset < s.range.start + s.len || s.outcome.is_some())
    }

    /// The next bytes at `offset` or later (up to the end of one piece): `Ok(None)` once
    /// `offset` reached the block's end, `Err` if the segment holding `offset` failed before
    /// reaching it. Waits while its writer has not yet delivered bytes past `offset`.
    pub async fn read(&self, offset: usize) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| {
            if offset >= self.expected {
                return Poll::Ready(Ok(None));
            }
            let mut st = self.lock();
            let Some(s) = st.segments.iter().find(|s| s.range.contains(&offset)) else {
                return Poll::Ready(Ok(None));
            };
            let rel = offset - s.range.start;
            if rel < s.len {
                let mut start = 0;
                for piece in &s.pieces {
                    if rel < start + piece.len() {
                        return Poll::Ready(Ok(Some(piece.slice(rel - start..))));
                    }
                    start += piece.len();
                }
            }
            match &s.outcome {
                Some(Err(e)) => Poll::Ready(Err(e.clone())),
                // A finished segment holds all its bytes: covered above.
                Some(Ok(())) => Poll::Ready(Err(truncated())),
                None => {
                    if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        st.wakers.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }
}

fn truncated() -> Error {
    Error::new(ErrorKind::Truncated, Side::Origin, "block fill ended early")
}

/// The right, and the duty, to write one segment of a claimed block.
///
/// Contract: push the segment's bytes in order, then [`SegmentWriter::complete`]; or
/// [`SegmentWriter::fail`]. Completing the last segment of a block inserts the block into the
/// store and *then* removes it from the in-flight registry. Failing (or dropping the writer
/// unfinished, which fails it as abandoned) releases the key at once, so the next request
/// fetches the block again; readers of the failed segment get the error.
pub struct SegmentWriter {
    key: BlockKey,
    fill: Arc<BlockFill>,
    /// This segment's window of the block's buffer, from the first push.
    region: Option<Region>,
    seg: usize,
    range: Range<usize>,
    written: usize,
    shared: Arc<Shared>,
    settled: bool,
    source: Source,
}

/// Where a writer's bytes come from, which decides whether the finished block is also
/// queued for the disk tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The origin: the block is new to this cache and is offered to the disk tier.
    Origin,
    /// The disk tier: the block is promoted into RAM only (see
    /// [`SegmentWriter::complete_with`] for keeping it in the buffer it was read into).
    Disk,
}

impl SegmentWriter {
    /// The block this writer fills.
    pub fn key(&self) -> &BlockKey {
        &self.key
    }

    /// The segment's bytes within the block.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    /// Offset in the block of the next byte to write.
    pub fn next_offset(&self) -> usize {
        self.range.start + self.written
    }

    /// Bytes still to write.
    pub fn remaining(&self) -> usize {
        self.range.len() - self.written
    }

    /// Say where this writer's bytes come from (default [`Source::Origin`]).
    pub fn set_source(&mut self, source: Source) {
        self.source = source;
    }

    /// Append the next bytes (at most [`SegmentWriter::remaining`]): copied into the block's
    /// buffer, and readable from there at once.
    pub fn push(&mut self, piece: &[u8]) {
        if piece.is_empty() {
            return;
        }
        debug_assert!(piece.len() <= self.remaining());
        let region = match &mut self.region {
            Some(r) => r,
            None => self.region.insert(self.fill.region(self.seg)),
        };
        let published = region.append(piece);
        self.written += piece.len();
        self.fill.push(self.seg, published);
    }

    /// The segment is whole: settle it (and publish the block if it was the last one).
    /// Returns true when this completed the block.
    pub fn complete(self) -> bool {
        self.settle(None)
    }

    /// This segment's unwritten rest of the block's buffer, lent for a read straight into it
    /// (as monoio's `IoBufMut` it writes after what was pushed, at most
    /// [`SegmentWriter::remaining`] bytes). Give it back with [`SegmentWriter::commit`], or,
    /// if the read was abandoned with it, say so with [`SegmentWriter::lost`].
    pub fn lend(&mut self) -> Region {
        match self.region.take() {
            Some(r) => r,
            None => self.fill.region(self.seg),
        }
    }

    /// Take back the lent `region`, into which a read wrote `n` bytes after what was pushed:
    /// they are published to readers at once.
    pub fn commit(&mut self, mut region: Region, n: usize) {
        if n > 0 {
            debug_assert!(n <= self.remaining());
            let published = region.commit(n);
            self.written += n;
            self.fill.push(self.seg, published);
        }
        self.region = Some(region);
    }

    /// The lent region will not come back: a read was abandoned with it (a time-out), and
    /// the kernel may still write into it. The rest of the segment goes into a buffer of its
    /// own, and the finished block is copied together from its pieces, so no byte the old
    /// read writes late is ever served.
    pub fn lost(&mut self) {
        self.fill.scatter();
        let rest = self.remaining();
        let pool = self.fill.pool.clone();
        let mut regions = SpanBuf::split(
            AlignedBuf::exact(rest),
            pool,
            std::slice::from_ref(&(0..rest)),
        );
        self.region = regions.pop();
    }

    /// Write and complete a whole block at once from `block`, which already holds all its
    /// bytes in one buffer (a disk read): readers and the store get it as it is, copying
    /// nothing. For a writer that has not pushed; `block` must be its whole segment.
    pub fn complete_with(mut self, block: Bytes) -> bool {
        debug_assert!(self.written == 0 && block.len() == self.remaining());
        self.publish(block.clone());
        self.settle(Some(block))
    }

    /// Hand readers the next bytes of the segment, `piece`, in a buffer of its own (a part
    /// of a disk read), copying nothing. For a writer that has neither pushed nor lent:
    /// finish with [`SegmentWriter::complete_as`] and the whole block those pieces are parts
    /// of, or, if the rest cannot come from there, call [`SegmentWriter::lost`] before
    /// writing the rest any other way.
    pub fn publish(&mut self, piece: Bytes) {
        debug_assert!(self.region.is_none() && piece.len() <= self.remaining());
        self.written += piece.len();
        self.fill.push(self.seg, piece);
    }

    /// Complete a segment written by [`SegmentWriter::publish`] alone: `block` is the whole
    /// block, in the one buffer the published pieces are parts of, for readers that come
    /// later and for the store.
    pub fn complete_as(self, block: Bytes) -> bool {
        debug_assert!(self.remaining() == 0 && block.len() == self.range.len());
        self.settle(Some(block))
    }

    fn settle(mut self, given: Option<Bytes>) -> bool {
        debug_assert_eq!(self.remaining(), 0);
        self.settled = true;
        // The region goes back before the segment completes: see `BlockFill::complete`.
        self.region = None;
        match self.fill.complete(self.seg, given) {
            Some(block) => {
                // Into the store before leaving the registry: see `Registry::claim`. A block
                // from the origin is offered to the disk tier (never waiting for it).
                if let (Some(disk), Source::Origin) = (&self.shared.disk, self.source) {
                    disk.offer_fill(&self.key, &block);
                }
                self.shared.store.insert(self.key.clone(), block);
                self.shared.fills.release(&self.key, &self.fill);
                true
            }
            None => false,
        }
    }

    /// The segment cannot be written: readers waiting on it get `err`; the block is released.
    pub fn fail(mut self, err: Error) {
        self.settle_failed(err);
    }

    fn settle_failed(&mut self, err: Error) {
        self.settled = true;
        self.fill.fail(self.seg, err);
        self.shared.fills.release(&self.key, &self.fill);
    }
}

impl Drop for SegmentWriter {
    fn drop(&mut self) {
        if !self.settled {
            self.settle_failed(Error::new(
                ErrorKind::Abandoned,
                Side::Internal,
                "block fill abandoned",
            ));
        }
    }
}

/// How a block will be served to one request.
pub enum Claim {
    /// It is in the store.
    Hit(Bytes),
    /// Another request is filling it: read from that fill.
    Wait(Arc<BlockFill>),
    /// This request must fill it: one writer per segment (see [`BlockFill::new`]), and the
    /// fill everyone, this request included, reads from.
    Fill(Arc<BlockFill>, Vec<SegmentWriter>),
}

/// Idle block buffers kept whatever the store holds: enough for the fills that replace
/// blocks as they are evicted to reuse their memory.
const IDLE_BUFFERS: usize = 16;

/// What writers need: the block buffers, and to publish: the store, the disk tier and the
/// registry.
struct Shared {
    /// Buffers of `cache.block_size` for the blocks being filled, at most as many in all as
    /// the store holds (plus [`IDLE_BUFFERS`] idle).
    pool: Arc<BufPool>,
    store: Arc<BlockStore>,
    disk: Option<Arc<DiskTier>>,
    fills: Registry<BlockKey, BlockFill>,
}

/// The block fills in flight, shared by all workers.
pub struct Inflight {
    shared: Arc<Shared>,
}

impl Inflight {
    /// An empty registry whose completed fills go into `store`.
    pub fn new(store: Arc<BlockStore>) -> Self {
        Self::with_disk(store, None)
    }

    /// An empty registry whose completed fills go into `store`, and those from the origin
    /// also to `disk` (see [`Source`]).
    pub fn with_disk(store: Arc<BlockStore>, disk: Option<Arc<DiskTier>>) -> Self {
        let block_size = store.block_size() as usize;
        let blocks = (store.stats().capacity / store.block_size().max(1)) as usize;
        let pool = BufPool::with_total(block_size, IDLE_BUFFERS, blocks);
        Self::with_pool(store, disk, pool)
    }

    /// [`Inflight::with_disk`] with the pool its fills take block buffers from (of
    /// `cache.block_size`; the default keeps at most as many, in use and idle, as the store
    /// holds, plus [`IDLE_BUFFERS`]). For benchmarks that compare pool policies.
    pub fn with_pool(
        store: Arc<BlockStore>,
        disk: Option<Arc<DiskTier>>,
        pool: Arc<BufPool>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                pool,
                store,
                disk,
                fills: Registry::new(),
            }),
        }
    }

    /// Map the block memory the store can hold (`cache.pretouch`): on a thread of its own at
    /// idle priority, fill the pool up to its total ([`BufPool::prefill`]; for the default
    /// pool, the blocks `cache.memory` holds), so that the first fills write into memory that
    /// is already mapped. Returns at once; the thread logs when it is done. Fills running
    /// meanwhile are unaffected: the pool keeps what it is given within its bound.
    pub fn pretouch(&self) {
        let pool = self.shared.pool.clone();
        let spawned = std::thread::Builder::new()
            .name("rangecache-pretouch".into())
            .spawn(move || {
                let idle = libc::sched_param { sched_priority: 0 };
                // SAFETY: `sched_setscheduler` on the calling thread (0) with a valid
                // parameter block has no memory-safety preconditions.
                let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &idle) };
                if rc != 0 {
                    tracing::debug!("pretouch: idle priority refused; running at normal priority");
                }
                let started = std::time::Instant::now();
                let blocks = pool.prefill();
                tracing::info!(
                    blocks,
                    bytes = (blocks * pool.size()) as u64,
                    seconds = started.elapsed().as_secs_f64(),
                    "cache memory pre-touched"
                );
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cache.pretouch: could not start its thread; skipped");
        }
    }

    /// Decide how `key` (a block of `expected` bytes) is served: from the store, by joining
    /// a fill in flight, or by a new fill this caller must run, split at `split_at` when that
    /// lies inside the block. The caller has already missed in the store (and that miss was
    /// counted), so the recheck peeks without counting. Writers publish into the store
    /// before they leave the registry (see [`Registry::claim`]), so a block is never fetched
    /// twice by requests that overlap in time.
    pub fn claim(&self, key: &BlockKey, expected: usize, split_at: Option<usize>) -> Claim {
        let shared = &self.shared;
        match shared.fills.claim(
            key,
            || shared.store.peek(key),
            || BlockFill::new(expected, split_at, shared.pool.clone()),
        ) {
            Role::Ready(block) => Claim::Hit(block),
            Role::Follow(fill) => Claim::Wait(fill),
            Role::Lead(fill) => {
                let writers = fill
                    .lock()
                    .segments
                    .iter()
                    .enumerate()
                    .map(|(seg, s)| SegmentWriter {
                        key: key.clone(),
                        fill: fill.clone(),
                        region: None,
                        seg,
                        range: s.range.clone(),
                        written: 0,
                        shared: shared.clone(),
                        settled: false,
                        source: Source::Origin,
                    })
                    .collect();
                Claim::Fill(fill, writers)
            }
        }
    }

    /// True when a fill for `key` is in flight now.
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.shared.fills.contains(key)
    }

    /// Fills in flight now.
    pub fn len(&self) -> usize {
        self.shared.fills.len()
    }

    /// True when no fill is in flight.
    pub fn is_empty(&self) -> bool {
        self.shared.fills.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::store::ObjectId;
    use crate::test_util::block_on;

    fn key(i: u64) -> BlockKey {
        BlockKey::new(ObjectId::new("o", "b", "k"), Arc::from("\"e\""), i)
    }

    fn inflight() -> (Arc<BlockStore>, Inflight) {
        let store = Arc::new(BlockStore::new(1 << 20, 1024));
        (store.clone(), Inflight::new(store))
    }

    /// Fill block `i` of `len` bytes with `byte`, from two pushes, and return it as stored.
    fn fill_block(store: &BlockStore, inflight: &Inflight, i: u64, len: usize, byte: u8) -> Bytes {
        let Claim::Fill(_, mut writers) = inflight.claim(&key(i), len, None) else {
            panic!("first claim fills");
        };
        let mut w = writers.pop().unwrap();
        w.push(&vec![byte; len / 2]);
        w.push(&vec![byte; len - len / 2]);
        assert!(w.complete());
        store.peek(&key(i)).expect("stored")
    }

    #[test]
    fn blocks_are_written_in_place_and_evicted_blocks_give_their_memory_to_new_fills() {
        // Room for about 3 blocks of 64 KiB.
        let store = Arc::new(BlockStore::new(200 << 10, 64 << 10));
        let inflight = Inflight::new(store.clone());
        let first = fill_block(&store, &inflight, 0, 64 << 10, 1);
        assert!(first.iter().all(|&b| b == 1));
        let first_ptr = first.as_ptr();
        assert_eq!(
            first_ptr as usize % 4096,
            0,
            "a pooled, page-aligned buffer"
        );
        drop(first);
        // Filling more blocks than the store holds evicts the first; its buffer goes back to
        // the pool and a later fill is written into it, with its own bytes.
        let ptrs: Vec<_> = (1..8)
            .map(|i| {
                let b = fill_block(&store, &inflight, i, 64 << 10, i as u8 + 1);
                assert!(b.iter().all(|&x| x == i as u8 + 1), "block {i}'s own bytes");
                b.as_ptr()
            })
            .collect();
        assert!(store.peek(&key(0)).is_none(), "evicted");
        assert!(ptrs.contains(&first_ptr), "its memory was reused");
        // A short block (an object's last) gets a buffer of exactly its length, not a pooled one.
        let short = fill_block(&store, &inflight, 9, 1000, 7);
        assert_eq!(short.len(), 1000);
        assert!(short.iter().all(|&b| b == 7));
    }

    #[test]
    fn pretouch_fills_the_pool_with_the_store_s_worth_of_buffers_in_the_background() {
        let store = Arc::new(BlockStore::new(8 << 16, 64 << 10));
        let inflight = Inflight::new(store.clone());
        let blocks = (store.stats().capacity >> 16) as usize;
        assert!(blocks >= 7, "{blocks}");
        inflight.pretouch();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while inflight.shared.pool.idle() < blocks {
            assert!(std::time::Instant::now() < deadline, "pool not filled");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // Fills then take those buffers rather than new memory.
        let b = fill_block(&store, &inflight, 0, 64 << 10, 3);
        assert!(b.iter().all(|&x| x == 3));
        assert_eq!(inflight.shared.pool.idle(), blocks - 1);
    }

    #[test]
    fn readers_see_bytes_as_they_arrive_and_the_block_lands_in_the_store() {
        let (store, inflight) = inflight();
        let Claim::Fill(fill, mut writers) = inflight.claim(&key(0), 10, None) else {
            panic!("first claim fills");
        };
        let mut w = writers.pop().unwrap();
        assert!(matches!(inflight.claim(&key(0), 10, None), Claim::Wait(_)));
        w.push(b"abcd");
        block_on(async {
            assert_eq!(&fill.read(0).await.unwrap().unwrap()[..], b"abcd");
            assert_eq!(&fill.read(2).await.unwrap().unwrap()[..], b"cd");
        });
        assert!(!fill.is_ready(4));
        let f2 = fill.clone();
        let t = std::thread::spawn(move || {
            block_on(async move {
                let mut got = Vec::new();
                while let Some(b) = f2.read(got.len()).await.unwrap() {
                    got.extend_from_slice(&b);
                }
                got
            })
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        w.push(b"efghij");
        assert!(w.complete());
        assert_eq!(t.join().unwrap(), b"abcdefghij");
        assert_eq!(&store.peek(&key(0)).unwrap()[..], b"abcdefghij");
        assert!(inflight.is_empty());
        assert!(matches!(inflight.claim(&key(0), 10, None), Claim::Hit(_)));
    }

    #[test]
    fn a_split_block_fills_its_tail_and_head_independently() {
        let (store, inflight) = inflight();
        let Claim::Fill(fill, writers) = inflight.claim(&key(1), 8, Some(3)) else {
            panic!("first claim fills");
        };
        let mut w = writers.into_iter();
        let (mut head, mut tail) = (w.next().unwrap(), w.next().unwrap());
        assert_eq!((head.range(), tail.range()), (0..3, 3..8));
        tail.push(b"defgh");
        block_on(async {
            // The tail is readable before the head arrives.
            assert_eq!(&fill.read(3).await.unwrap().unwrap()[..], b"defgh");
        });
        assert!(!fill.is_ready(0));
        assert!(!tail.complete(), "the head is still out");
        head.push(b"abc");
        assert!(head.complete());
        assert_eq!(&store.peek(&key(1)).unwrap()[..], b"abcdefgh");
        assert!(inflight.is_empty());
    }

    #[test]
    fn a_failed_or_dropped_writer_releases_the_block_and_fails_its_readers() {
        let (store, inflight) = inflight();
        let Claim::Fill(fill, mut writers) = inflight.claim(&key(2), 8, None) else {
            panic!("first claim fills");
        };
        let mut w = writers.pop().unwrap();
        w.push(b"abc");
        w.fail(Error::new(ErrorKind::Changed, Side::Origin, "test"));
        block_on(async {
            assert_eq!(&fill.read(0).await.unwrap().unwrap()[..], b"abc");
            assert_eq!(fill.read(3).await.unwrap_err().kind(), ErrorKind::Changed);
        });
        assert!(inflight.is_empty() && store.peek(&key(2)).is_none());

        let Claim::Fill(fill, writers) = inflight.claim(&key(2), 8, None) else {
            panic!("a failed block is claimed again");
        };
        drop(writers);
        block_on(async {
            assert_eq!(fill.read(0).await.unwrap_err().kind(), ErrorKind::Abandoned);
        });
        assert!(inflight.is_empty());
    }
}
