//! Reading a block, or part of one, back from the disk tier.
//!
//! A read asks for the slot's header and only the chunks that cover the bytes wanted (a
//! 64 KiB range of a 1 MiB block reads 64-80 KiB, not the block): one request when they start
//! the block (the header page comes with them), two side by side otherwise. The header is
//! checked against the key, sequence number and length the index expects, each chunk against
//! the header's checksum for it, before any byte is handed on.
//!
//! A whole block that a fill brings into RAM is read in pieces of [`PIECE`] bytes, one after
//! another, each handed to the fill (and so to the client) once it checks out
//! ([`DiskTier::read_pieces`]): the first piece travels to the client while the next is read.
//! Measured with `rangecache-loadtest disk close-to-disk --sizes 1MiB --depths 1,8`
//! interleaved (2026-11-30): 0.64-0.70x of fio at depth 1 against 0.55-0.64x for one whole
//! read, depth 8 unchanged (0.84-1.11x both ways, noisy). Pieces all in flight at once were
//! tried first (2026-11-29): this virtual disk returned the first no sooner than the last
//! (0.59-0.68x against 0.63-0.71x whole); two in flight at a time did no better than one
//! (0.60 and 0.65x against 0.60 and 0.65x).

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

/// Bytes of a whole-block disk read handed on at a time (see [`DiskTier::read_pieces`]):
/// about a third of a millisecond of this machine's disk, which the first piece's trip to
/// the client then overlaps with the second's read.
pub const PIECE: usize = 256 << 10;

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
            got.push(self.read_bytes(key, loc, read)?);
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

    /// Block `key`, which the caller expects to be `block_len` bytes long, read whole from
    /// disk in pieces of [`PIECE`] bytes, one after another: each piece is checked against
    /// the header (read with the first) and handed to `sink` as soon as it is in, so the
    /// first bytes go to the client while the rest is still being read. Returns the whole
    /// block, in the buffer it was read into (see `exact`), once every piece was handed on.
    /// `None` when the tier does not hold the block at that length, or a read or a check
    /// failed (as for [`DiskTier::read_range`]); pieces handed on before that were checked.
    ///
    /// One read in flight at a time: with several at once, this machine's virtual disk
    /// returned the first no sooner than the last (see the module's note).
    pub async fn read_pieces(
        &self,
        key: &BlockKey,
        block_len: usize,
        mut sink: impl FnMut(Bytes),
    ) -> Option<Bytes> {
        let shared = &*self.shared;
        let loc = shared.index.get(key)?;
        let len = loc.len as usize;
        if len != block_len || len == 0 {
            shared.counters.misses.add(1);
            return None;
        }
        let file = match self.shared.thread_file() {
            Ok(f) => f,
            Err(e) => return self.read_failed(key, &e),
        };
        let chunk = shared.chunk;
        let piece = PIECE.next_multiple_of(chunk);
        // Slot-relative regions: the header page with the first piece, then one per piece,
        // each padded to whole pages.
        let ranges: Vec<Range<usize>> = (0..len)
            .step_by(piece)
            .map(|at| {
                let from = if at == 0 { 0 } else { HEADER + at };
                from..HEADER + round_up((at + piece).min(len))
            })
            .collect();
        let base = shared.offset(loc.slot);
        let regions = SpanBuf::split(shared.pool.take(), shared.pool.clone(), &ranges);
        let span = regions[0].span().clone();
        let mut page = None;
        for (i, region) in regions.into_iter().enumerate() {
            let at = base + region.start() as u64;
            let read = read_at(&self.shared, &file, region, at).await;
            let got = self.read_bytes(key, loc, read)?;
            let start = i * piece;
            let end = (start + piece).min(len);
            let data = match i {
                0 => got.slice(HEADER..HEADER + end),
                _ => got.slice(..end - start),
            };
            let header = page.get_or_insert_with(|| got.slice(..HEADER));
            let checked = match i {
                0 => format::check_header(header, key, loc.seq, loc.len, chunk),
                _ => Ok(()),
            }
            .and_then(|()| format::check_chunks(header, chunk, start / chunk, &data));
            if let Err(e) = checked {
                return self.rejected(key, loc, e);
            }
            sink(data);
        }
        shared.counters.hits.add(1);
        let read: usize = ranges.iter().map(|r| r.len()).sum();
        shared.counters.read_bytes.add(read as u64);
        let all = span
            .whole(HEADER..HEADER + len)
            .expect("every region came back");
        Some(exact(all, shared.slot_size as usize))
    }

    /// The bytes of a read of block `key` at `loc` that came back; `None` (counted) when it
    /// failed, or when the file ended inside the slot (a write torn by a crash: the slot is
    /// dropped as damaged).
    fn read_bytes(&self, key: &BlockKey, loc: Loc, read: io::Result<Region>) -> Option<Bytes> {
        match read {
            Ok(region) => Some(region.into_bytes()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.rejected(key, loc, SlotError::DataChecksum)
            }
            Err(e) => self.read_failed(key, &e),
        }
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
