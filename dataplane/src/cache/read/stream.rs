//! One response's body: the client's bytes, block by block, from the store, from fills in
//! flight, or from fills this response starts, with a bounded window of blocks claimed ahead.

use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use monoio::task::JoinHandle;

use super::early::EarlyGet;
use super::fetch::OriginFetch;
use super::filler::{Feed, Filler, OpenBody, Step, Target};
use super::ReadEnv;
use crate::cache::range::{block_bytes, block_span, slice_in_block, ByteRange};
use crate::cache::{BlockFill, BlockKey, Claim, Permit};
use crate::error::{Error, ErrorKind, Side};
use crate::WorkerMetrics;

/// Most blocks one origin GET of a run asks for: a long sequential read is fetched in runs of
/// this many blocks, one request each.
pub(super) const MAX_RUN_BLOCKS: u64 = 64;

/// Most origin GETs a demand read spreads its window over. One S3 stream delivers 80-100 MB/s
/// after a first byte of tens of milliseconds, so a client reading many missing blocks (a
/// Parquet engine reading column chunks, each request on its own) is paced by single streams
/// unless the window is fetched by several at once.
const SPLIT_STREAMS: u64 = 4;

/// Fewest bytes a split run asks for: about what one stream delivers in one first-byte latency
/// (20-30 ms at 80-100 MB/s). A shorter GET would spend more time waiting for its first byte
/// than it saves, and cost a request for little (runs of 1 MiB were tried: more requests, no
/// faster Polars query on the 2-core test machine).
pub(super) const MIN_SPLIT_BYTES: u64 = 2 << 20;

/// Blocks the run starting a stretch of `missing` consecutive blocks that are neither cached
/// nor in flight asks for, when the response's window holds `window` blocks of `bs` bytes.
///
/// The rule: the part of the stretch the window can hold at once is split over up to
/// [`SPLIT_STREAMS`] runs of at least [`MIN_SPLIT_BYTES`] each, as even as whole blocks allow;
/// a run is planned when its first block is claimed, so a read longer than the window goes on
/// in runs of that length, keeping up to that many GETs in flight. A stretch too short to
/// split (or a window of fewer than two minimum runs) is one run of up to [`MAX_RUN_BLOCKS`].
/// The cost: with the defaults (1 MiB blocks, 8 MiB window) a long cold read sends one origin
/// GET per 2 MiB instead of one per 64 MiB; every byte is still fetched once.
pub(super) fn run_blocks(missing: u64, window: u64, bs: u64) -> u64 {
    let min = MIN_SPLIT_BYTES.div_ceil(bs).max(1);
    let visible = missing.min(window);
    let streams = (visible / min).min(SPLIT_STREAMS);
    if streams < 2 {
        return missing.clamp(1, MAX_RUN_BLOCKS);
    }
    visible.div_ceil(streams)
}

/// A claimed block not yet wholly handed to the client.
enum Slot {
    /// From the store.
    Hit(Bytes),
    /// From a fill in flight; the permit, when this response started the fill, is its budget
    /// charge, returned once the block is handed over (and filled).
    Fill {
        fill: Arc<BlockFill>,
        _charge: Option<Rc<Permit>>,
    },
    /// Being read from the disk tier by this response (with its budget charge).
    Disk {
        fill: Arc<BlockFill>,
        _charge: Rc<Permit>,
    },
    /// The part of a block this response wants, read from the disk tier alone (only the
    /// chunks covering it; the block is not promoted into RAM): the read, then its outcome —
    /// the offset in the block of the bytes read, and the bytes. Holds its budget charge.
    Part {
        read: Option<JoinHandle<Option<(usize, Bytes)>>>,
        got: Option<(usize, Bytes)>,
        charge: Option<Permit>,
    },
}

/// The filler this response feeds, and the blocks of its run.
struct Run {
    feed: Feed,
    /// The block its next step is for.
    next: u64,
    /// Its run's last block.
    last: u64,
}

/// The body of one cached response, as a stream of `Bytes` slices in order.
///
/// It claims blocks as the consumer takes bytes, never more than the window ahead. Dropping it
/// releases its claims: fills it started finish the blocks already handed to them (others may
/// be reading those) and stop.
pub struct BodyStream<F: OriginFetch> {
    env: Rc<ReadEnv>,
    fetch: Rc<F>,
    target: Rc<Target>,
    range: ByteRange,
    /// Index of `window`'s front block, and the next block to claim.
    front: u64,
    next_claim: u64,
    last_block: u64,
    window: VecDeque<Slot>,
    window_blocks: usize,
    /// Offset within the front block of the next byte to hand out.
    front_off: usize,
    run: Option<Run>,
    /// A body already open at the client's first byte (the cold first fetch).
    opened: Option<OpenBody<F::Body>>,
    /// GETs sent before the ETag was known, each for the run starting at its first byte.
    early: Vec<EarlyGet<F::Body>>,
    budget_wait: Duration,
    peeked: Option<Bytes>,
    /// Blocks claimed so far, and how many of them were in the store.
    claimed: u64,
    held: u64,
    /// The first bytes handed out came from a fill (the origin), not the store.
    first_from_origin: bool,
}

impl<F: OriginFetch> BodyStream<F> {
    pub(crate) fn new(
        env: Rc<ReadEnv>,
        fetch: Rc<F>,
        target: Rc<Target>,
        range: ByteRange,
        opened: Option<OpenBody<F::Body>>,
        early: Vec<EarlyGet<F::Body>>,
        budget_wait: Duration,
    ) -> Self {
        let bs = target.block_size;
        let span = block_span(range, bs);
        let window_blocks = (env.cache.config().readahead_window / bs).max(1) as usize;
        Self {
            env,
            fetch,
            target,
            range,
            front: span.first_block,
            next_claim: span.first_block,
            last_block: span.last_block,
            window: VecDeque::new(),
            window_blocks,
            front_off: 0,
            run: None,
            opened,
            early,
            budget_wait,
            peeked: None,
            claimed: 0,
            held: 0,
            first_from_origin: false,
        }
    }

    /// Claim the window's blocks (starting the fills this response leads) without waiting for
    /// any byte.
    pub(crate) async fn claim(&mut self) -> Result<(), Error> {
        self.top_up().await
    }

    /// Wait for the first bytes (so that a changed object or a failed fill can still be
    /// answered with a clean error or a re-plan before anything is written).
    pub(crate) async fn prime(&mut self) -> Result<(), Error> {
        if self.peeked.is_none() {
            self.first_from_origin = matches!(self.window.front(), Some(Slot::Fill { .. }))
                || (self.window.is_empty() && self.next_claim <= self.last_block);
            self.peeked = self.take().await?;
        }
        Ok(())
    }

    /// The next bytes of the body, `None` at its end. An `Err` after some bytes were handed
    /// out means the body cannot be completed with the same object version.
    pub async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        match self.peeked.take() {
            Some(p) => Ok(Some(p)),
            None => self.take().await,
        }
    }

    /// Blocks claimed so far, and how many of them the store held.
    pub fn blocks(&self) -> (u64, u64) {
        (self.held, self.claimed)
    }

    /// True when the first bytes came from the origin (a fill), not the store.
    pub fn first_from_origin(&self) -> bool {
        self.first_from_origin
    }

    /// True when [`BodyStream::next`] would answer without waiting for an origin or the
    /// budget: a consumer batching writes flushes what it holds before it waits.
    pub fn is_ready(&self) -> bool {
        if self.peeked.is_some() {
            return true;
        }
        match self.window.front() {
            Some(Slot::Hit(_)) => true,
            Some(Slot::Part { got, .. }) => got.is_some(),
            Some(Slot::Fill { fill, .. } | Slot::Disk { fill, .. }) => {
                fill.is_ready(self.front_off.max(self.want().start))
            }
            None => self.next_claim > self.last_block,
        }
    }

    /// Bytes of the body in the front block: its slice of the client's range.
    fn want(&self) -> std::ops::Range<usize> {
        slice_in_block(self.range, self.front, self.target.block_size)
    }

    async fn take(&mut self) -> Result<Option<Bytes>, Error> {
        self.top_up().await?;
        if self.window.is_empty() {
            return Ok(None);
        }
        self.settle_part().await;
        let want = self.want();
        let off = self.front_off.max(want.start);
        let m = self.env.metrics();
        let piece = match self.window.front() {
            None => return Ok(None),
            Some(Slot::Hit(block)) => {
                let p = block.slice(off..want.end);
                WorkerMetrics::add(&m.cache_bytes_hit, p.len() as u64);
                p
            }
            Some(Slot::Part { got, .. }) => {
                let (start, bytes) = got.as_ref().expect("settled above");
                let p = bytes.slice(off - start..want.end - start);
                WorkerMetrics::add(&m.cache_bytes_hit, p.len() as u64);
                p
            }
            Some(slot @ (Slot::Fill { fill, .. } | Slot::Disk { fill, .. })) => {
                match fill.read(off).await? {
                    Some(p) => {
                        let p = p.slice(..p.len().min(want.end - off));
                        let counter = match slot {
                            Slot::Disk { .. } => &m.cache_bytes_hit,
                            _ => &m.cache_bytes_miss,
                        };
                        WorkerMetrics::add(counter, p.len() as u64);
                        p
                    }
                    None => {
                        return Err(Error::new(
                            ErrorKind::Truncated,
                            Side::Origin,
                            "block fill ended early",
                        ))
                    }
                }
            }
        };
        self.front_off = off + piece.len();
        if self.front_off >= want.end {
            self.window.pop_front();
            self.front += 1;
            self.front_off = 0;
        }
        Ok(Some(piece))
    }

    /// When the front block is a part read from disk, wait for it; when the disk could not
    /// serve it, claim the block like any miss instead (filled from the origin on its own,
    /// charged with the part read's budget charge).
    async fn settle_part(&mut self) {
        let Some(Slot::Part { read, got, charge }) = self.window.front_mut() else {
            return;
        };
        if got.is_some() {
            return;
        }
        let outcome = match read.take() {
            Some(read) => read.await,
            None => None,
        };
        if outcome.is_some() {
            *got = outcome;
            return;
        }
        let permit = charge
            .take()
            .expect("a part read holds its charge until it is settled");
        let cache = &self.env.cache;
        let (index, bs) = (self.front, self.target.block_size);
        let key = BlockKey::new(self.target.object.clone(), self.target.etag.clone(), index);
        let len = block_bytes(index, bs, self.target.size).len() as usize;
        let slot = match cache.inflight.claim(&key, len, None) {
            Claim::Hit(block) => Slot::Hit(block),
            Claim::Wait(fill) => Slot::Fill {
                fill,
                _charge: None,
            },
            Claim::Fill(fill, writers) => {
                let permit = Rc::new(permit);
                for writer in writers {
                    self.filler((index + 1) * bs, None)
                        .spawn_block(writer, index, permit.clone());
                }
                Slot::Fill {
                    fill,
                    _charge: Some(permit),
                }
            }
        };
        self.window[0] = slot;
    }

    /// Claim blocks until the window is full or the range is claimed. A miss is charged to
    /// the budget before it is claimed, so no claim is ever held while waiting for budget;
    /// only a response with nothing in its window waits (bounded), the others go on with what
    /// they hold.
    async fn top_up(&mut self) -> Result<(), Error> {
        let cache = self.env.cache.clone();
        let bs = self.target.block_size;
        while self.window.len() < self.window_blocks && self.next_claim <= self.last_block {
            let index = self.next_claim;
            let key = BlockKey::new(self.target.object.clone(), self.target.etag.clone(), index);
            let m = self.env.metrics();
            if let Some(block) = cache.store.get(&key) {
                WorkerMetrics::add(&m.cache_block_hits, 1);
                if let Some(disk) = &cache.disk {
                    disk.offer_hit(&key, &block);
                }
                cache.prefetch.read(&key);
                self.push(Slot::Hit(block), None);
                continue;
            }
            let len = block_bytes(index, bs, self.target.size).len();
            let permit = match cache.budget.try_acquire(len) {
                Some(p) => p,
                None if self.window.is_empty() => {
                    cache.budget.acquire(len, self.budget_wait).await?
                }
                None => break,
            };
            WorkerMetrics::add(&m.cache_block_misses, 1);
            let disk = cache.disk.as_ref().filter(|d| d.probe(&key)).cloned();
            // Part of a block on disk that no fill is bringing into RAM: read only the chunks
            // covering it, unless a part of it was read recently (then read it whole, below,
            // and promote it).
            let want = slice_in_block(self.range, index, bs);
            let part = disk.as_ref().filter(|d| {
                want.len() < len as usize && !cache.inflight.contains(&key) && !d.promote_part(&key)
            });
            if let Some(d) = part {
                let (d, block_len) = (d.clone(), len as usize);
                let read = monoio::spawn(async move { d.read_range(&key, want, block_len).await });
                self.held += 1;
                self.push(
                    Slot::Part {
                        read: Some(read),
                        got: None,
                        charge: Some(permit),
                    },
                    None,
                );
                continue;
            }
            // The client's first byte inside a cold block: its tail is fetched from that byte
            // and its head beside it, so the first byte waits for nothing before it. A block
            // on disk is read whole.
            let split = (index == self.range.first / bs && disk.is_none())
                .then(|| (self.range.first % bs) as usize)
                .filter(|&at| at > 0);
            match (cache.inflight.claim(&key, len as usize, split), disk) {
                (Claim::Fill(fill, writers), Some(disk)) => {
                    let permit = Rc::new(permit);
                    // Not split: one writer, for the whole block.
                    for writer in writers {
                        self.filler((index + 1) * bs, None).spawn_from_disk(
                            disk.clone(),
                            writer,
                            index,
                            permit.clone(),
                        );
                    }
                    self.held += 1;
                    self.push(
                        Slot::Disk {
                            fill,
                            _charge: permit,
                        },
                        None,
                    );
                }
                (Claim::Hit(block), _) => self.push(Slot::Hit(block), None),
                (Claim::Wait(fill), _) => {
                    WorkerMetrics::add(&m.coalesced_waits, 1);
                    cache.prefetch.read(&key);
                    self.push(
                        Slot::Fill {
                            fill,
                            _charge: None,
                        },
                        None,
                    );
                }
                (Claim::Fill(fill, writers), None) => {
                    let permit = Rc::new(permit);
                    let mut tail = None;
                    for writer in writers {
                        if writer.range().start == 0 && split.is_some() {
                            let head_end = index * bs + writer.range().end as u64;
                            self.filler(head_end, None).spawn_head(
                                writer,
                                fill.clone(),
                                index,
                                permit.clone(),
                            );
                        } else {
                            tail = Some(writer);
                        }
                    }
                    let step = tail.map(|w| Step::Fill(w, permit.clone()));
                    self.push(
                        Slot::Fill {
                            fill,
                            _charge: Some(permit),
                        },
                        step,
                    );
                }
            }
        }
        Ok(())
    }

    /// Add the next block's slot and tell the current run what happens to that block: filled
    /// by it (`step`), or skipped.
    fn push(&mut self, slot: Slot, step: Option<Step>) {
        let index = self.next_claim;
        // An early GET for a block already claimed can no longer start a run: drop it now
        // (closing its connection) rather than hold it to the end of the response.
        let bs = self.target.block_size;
        self.early.retain(|e| e.first() / bs >= index);
        self.claimed += 1;
        self.held += u64::from(matches!(slot, Slot::Hit(_)));
        self.next_claim += 1;
        self.window.push_back(slot);
        let follows_run = self.run.as_ref().is_some_and(|r| r.next == index);
        match (step, follows_run) {
            (None, false) => {}
            (None, true) => self.advance_run(Step::Skip),
            (Some(step), true) => self.advance_run(step),
            (Some(step), false) => {
                // Start a run here: over the next blocks that are neither cached nor being
                // filled, and the client wants. A body already open (the cold first fetch)
                // serves the blocks it was asked for, unsplit: they are requested already.
                let cache = &self.env.cache;
                let opened = self.opened.take();
                // An early GET for this run: it starts in the run's first block.
                let early = self
                    .early
                    .iter()
                    .position(|e| e.first() / bs == index)
                    .filter(|_| opened.is_none())
                    .map(|i| self.early.swap_remove(i));
                let mut last = index;
                while last < self.last_block && last + 1 - index < MAX_RUN_BLOCKS {
                    let key = BlockKey::new(
                        self.target.object.clone(),
                        self.target.etag.clone(),
                        last + 1,
                    );
                    if cache.holds(&key) {
                        break;
                    }
                    last += 1;
                }
                last = match (&opened, &early) {
                    (Some(body), _) => last.min((body.end() - 1) / bs).max(index),
                    (None, Some(e)) => last.min(e.last() / bs).max(index),
                    (None, None) => {
                        index + run_blocks(last + 1 - index, self.window_blocks as u64, bs) - 1
                    }
                };
                let run_end = (last + 1) * bs;
                let feed = self
                    .filler(run_end, opened)
                    .with_early(early)
                    .spawn_run(index);
                // Replacing a run closes the old one's feed: it finishes what it was handed.
                self.run = Some(Run {
                    feed,
                    next: index,
                    last,
                });
                self.advance_run(step);
            }
        }
    }

    fn advance_run(&mut self, step: Step) {
        if let Some(run) = &mut self.run {
            run.feed.push(step);
            run.next += 1;
            if run.next > run.last {
                self.run = None;
            }
        }
    }

    fn filler(&self, run_end: u64, opened: Option<OpenBody<F::Body>>) -> Filler<F> {
        Filler::new(
            self.env.clone(),
            self.fetch.clone(),
            self.target.clone(),
            run_end,
            opened,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_stretch_is_split_over_the_window_in_runs_of_at_least_two_mib() {
        let mib = 1 << 20;
        // 1 MiB blocks, 8 MiB window: four runs of two blocks.
        assert_eq!(run_blocks(100, 8, mib), 2);
        assert_eq!(run_blocks(8, 8, mib), 2);
        // Five blocks: two runs, three then two (planned when its block is claimed).
        assert_eq!(run_blocks(5, 8, mib), 3);
        assert_eq!(run_blocks(2, 8, mib), 2);
        // Too short to split.
        assert_eq!(run_blocks(3, 8, mib), 3);
        assert_eq!(run_blocks(1, 8, mib), 1);
        // Half-MiB blocks: runs of at least four blocks.
        assert_eq!(run_blocks(8, 16, mib / 2), 4);
        assert_eq!(run_blocks(7, 16, mib / 2), 7);
        // A window too small for two minimum runs: one run, as long as allowed.
        assert_eq!(run_blocks(100, 1, mib), MAX_RUN_BLOCKS);
        assert_eq!(run_blocks(100, 4, 64 << 10), MAX_RUN_BLOCKS);
        // Small blocks: runs of a quarter of the window; large blocks: one block each.
        assert_eq!(run_blocks(1000, 128, 64 << 10), 32);
        assert_eq!(run_blocks(100, 2, 4 * mib), 1);
    }
}
