//! Reading a block, or part of one, back from the disk tier.
//!
//! A read asks for the slot's header and only the chunks that cover the bytes wanted (a
//! 64 KiB range of a 1 MiB block reads 64-80 KiB, not the block): one request when they start
//! the block (the header page comes with them), two side by side otherwise. The header is
//! checked against the key, sequence number and length the index expects, each chunk against
//! the header's checksum for it, before any byte is handed on.
//!
//! Splitting a whole-block read into a short first part and three more in flight at once, so
//! that sending could start before the block is in, was tried and measured (2026-11-29,
//! `rangecache-loadtest disk close-to-disk --sizes 1MiB --depths 1`, interleaved on a quiet
//! machine): 0.59-0.68x of fio split against 0.63-0.71x unsplit. This virtual disk returned
//! the short first part no sooner than the rest, so reads stay whole.

use std::cell::Cell;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;

use super::format::{self, round_up, SlotError, HEADER};
use super::index::Loc;
use super::{slot_error, DiskTier, Shared};
use crate::cache::buf::{Region, SpanBuf};
use crate::cache::BlockKey;

impl DiskTier {
    /// Bytes `want` of block `key`, which the caller expects to be `block_len` bytes long,
    /// from disk, verified. Returns the offset in the block of the first byte read and every
    /// byte read: the chunks covering `want` (for the whole block: the block, in the buffer it
    /// was read into when that is barely larger than the block; for a part: in the pooled
    /// buffer, which goes back when the bytes are dropped). `None` when the tier does not hold
    /// the block at that length, or a read or a check failed (counted; logged at most once per
    /// [`super::LOG_INTERVAL`]; a damaged slot is dropped).
    ///
    /// Must run on a monoio runtime: on the io_uring driver the reads go through the ring
    /// side by side; on the epoll driver each is a `pread`, on the runtime's blocking pool
    /// after [`read_on_blocking_pool`] (as the workers do), on this thread otherwise.
    pub async fn read_range(
        &self,
        key: &BlockKey,
        want: Range<usize>,
        block_len: usize,
    ) -> Option<(usize, Bytes)> {
        let shared = &*self.shared;
        let loc = shared.index.get(key)?;
        let len = loc.len as usize;
        if len != block_len || want.start >= want.end || want.end > len {
            shared.counters.misses.add(1);
            return None;
        }
        let chunk = shared.chunk;
        let start = want.start / chunk * chunk;
        let end = want.end.next_multiple_of(chunk).min(len);
        let file = match self.shared.thread_file() {
            Ok(f) => f,
            Err(e) => return self.read_failed(key, &e),
        };
        // Slot-relative regions, padded to whole pages: the header page joined to the data
        // when the data starts the block, apart otherwise.
        let data = HEADER + start..HEADER + round_up(end);
        let ranges: Vec<Range<usize>> = match start {
            0 => std::iter::once(0..data.end).collect(),
            _ => [0..HEADER, data].into(),
        };
        let base = shared.offset(loc.slot);
        let mut regions = SpanBuf::split(shared.pool.take(), shared.pool.clone(), &ranges);
        let span = regions[0].span().clone();
        // The data region (when apart) is read by a task of its own, in flight beside the
        // header's read.
        let apart = if start > 0 { regions.pop() } else { None };
        let data_read = apart.map(|r| {
            let (tier, file) = (self.shared.clone(), file.clone());
            let at = base + r.start() as u64;
            monoio::spawn(async move { read_at(&tier, &file, r, at).await })
        });
        let first = regions.pop().expect("the header's region");
        let mut reads = vec![read_at(&self.shared, &file, first, base).await];
        if let Some(task) = data_read {
            reads.push(task.await);
        }
        let mut got = Vec::with_capacity(2);
        for read in reads {
            match read {
                Ok(region) => got.push(region.into_bytes()),
                // The file ends inside the slot: a write torn by a crash.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return self.rejected(key, loc, SlotError::DataChecksum)
                }
                Err(e) => return self.read_failed(key, &e),
            }
        }
        let page = got[0].slice(..HEADER);
        let data = match start {
            0 => got[0].slice(HEADER..HEADER + end),
            _ => got[1].slice(..end - start),
        };
        let checked = format::check_header(&page, key, loc.seq, loc.len, chunk)
            .and_then(|()| format::check_chunks(&page, chunk, start / chunk, &data));
        if let Err(e) = checked {
            return self.rejected(key, loc, e);
        }
        drop((got, data));
        shared.counters.hits.add(1);
        if start > 0 || end < len {
            shared.counters.part_hits.add(1);
        }
        let read: usize = ranges.iter().map(|r| r.len()).sum();
        shared.counters.read_bytes.add(read as u64);
        let all = span
            .whole(HEADER + start..HEADER + end)
            .expect("every region came back");
        // A whole block may be kept in RAM: see `exact`. A part is only sent, then dropped.
        let all = match (start, end) {
            (0, e) if e == len => exact(all, shared.slot_size as usize),
            _ => all,
        };
        Some((start, all))
    }

    /// What was read did not check out: a slot reused while it was read is a plain miss; one
    /// that still belongs to the block is damaged: dropped and counted.
    fn rejected<T>(&self, key: &BlockKey, loc: Loc, e: SlotError) -> Option<T> {
        let shared = &*self.shared;
        if shared.index.drop_if_at(key, loc) {
            shared.counters.checksum_failures.add(1);
            shared.warn_limited("a block failed its check", key, &slot_error(e));
        } else {
            shared.counters.misses.add(1);
        }
        None
    }

    pub(super) fn read_failed<T>(&self, key: &BlockKey, e: &io::Error) -> Option<T> {
        self.shared.counters.read_errors.add(1);
        self.shared.warn_limited("read failed", key, e);
        None
    }
}

thread_local! {
    /// Whether this thread's disk reads go to the runtime's blocking pool (see
    /// [`read_on_blocking_pool`]).
    static ON_POOL: Cell<bool> = const { Cell::new(false) };
}

/// From now on, disk reads made on this thread run on the monoio runtime's blocking thread
/// pool instead of on this thread. For workers on the epoll driver, where a file read is a
/// plain `pread` that would stall every connection of the worker for the length of the read.
/// The runtime must have a thread pool attached (`RuntimeBuilder::attach_thread_pool`):
/// without one, monoio panics on the first read.
pub fn read_on_blocking_pool() {
    ON_POOL.with(|p| p.set(true));
}

/// Read `region` from `at`: through the ring (or inline `pread`) on `file`, or with `pread`
/// on the blocking pool when this thread asked for that.
async fn read_at(
    shared: &Arc<Shared>,
    file: &monoio::fs::File,
    region: Region,
    at: u64,
) -> io::Result<Region> {
    if !ON_POOL.with(Cell::get) {
        let (res, region) = file.read_exact_at(region, at).await;
        return res.map(|()| region);
    }
    let shared = shared.clone();
    let joined = monoio::spawn_blocking(move || {
        let mut region = region;
        let len = monoio::buf::IoBufMut::bytes_total(&mut region);
        // SAFETY: the region is this closure's alone; its window of the shared buffer is valid
        // for `len` bytes and no one else reads or writes it until the region is handed back
        // (see `span.rs`).
        let buf = unsafe {
            std::slice::from_raw_parts_mut(monoio::buf::IoBufMut::write_ptr(&mut region), len)
        };
        shared.file.read_exact_at(buf, at).map(|()| region)
    })
    .await;
    joined.unwrap_or_else(|_| Err(io::Error::other("disk read on the blocking pool panicked")))
}

/// `bytes`, a whole block in a read buffer of `buffer` bytes, kept in place when the buffer
/// is barely larger (the slack under 1/16: what the RAM store counts is about what it holds);
/// copied into an exact allocation otherwise (a short last block), so the buffer goes back to
/// its pool at once and the store's budget stays honest.
fn exact(bytes: Bytes, buffer: usize) -> Bytes {
    if buffer - bytes.len() > bytes.len() / 16 {
        Bytes::copy_from_slice(&bytes)
    } else {
        bytes
    }
}
