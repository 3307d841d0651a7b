//! Reading a block, or part of one, back from the disk tier.
//!
//! A read asks for the slot's header and only the chunks that cover the bytes wanted (a
//! 64 KiB range of a 1 MiB block reads 64-80 KiB, not the block). When no other read is in
//! flight, a long read is split into up to [`PARTS`] requests in flight at once, the first
//! short: it lands first and its bytes go to the client while the rest are read, so sending
//! overlaps reading (at queue depth 1, sending 1 MiB to a client costs about as long as
//! reading it). Under concurrent reads the disk is busy anyway and each read is one request.
//! Parts are checked in order as they come in — the header against the key, sequence number
//! and length the index expects, each part's chunks against the header's checksums — and each
//! verified part is handed on at once.

use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use bytes::Bytes;

use super::format::{self, round_up, SlotError, HEADER};
use super::index::Loc;
use super::span::SpanBuf;
use super::{slot_error, DiskTier};
use crate::cache::BlockKey;

/// Most reads in flight for one block.
const PARTS: usize = 4;

/// Bytes of the first part of a split read: short, so that it lands first.
const FIRST_PART: usize = 64 << 10;

/// Fewest bytes a read must have to be split: shorter reads are over before sending could
/// overlap them.
const SPLIT_BYTES: usize = 256 << 10;

/// Whether a read may be split into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// No other read is in flight: split a long read.
    Allowed,
    /// Other reads keep the disk busy: one request.
    Never,
}

/// The block-relative ranges `data` (starting on a chunk boundary) is read in: with
/// [`Split::Allowed`] and at least [`SPLIT_BYTES`], a first part of [`FIRST_PART`] (rounded up
/// to whole chunks), then the rest in up to `PARTS - 1` even parts starting on chunk
/// boundaries; otherwise all of it at once.
fn plan(data: Range<usize>, chunk: usize, split: Split) -> Vec<Range<usize>> {
    if split == Split::Never || data.len() < SPLIT_BYTES {
        return vec![data];
    }
    let first = data.start + FIRST_PART.next_multiple_of(chunk);
    let rest = data.end - first;
    let per = rest.div_ceil(PARTS - 1).next_multiple_of(chunk);
    std::iter::once(data.start..first)
        .chain((0..PARTS - 1).map(|i| first + i * per..(first + (i + 1) * per).min(data.end)))
        .filter(|r| !r.is_empty())
        .collect()
}

impl DiskTier {
    /// Bytes `want` of block `key`, which the caller expects to be `block_len` bytes long,
    /// from disk. `sink` is handed the verified bytes in order, from the first chunk that
    /// covers `want`, as each part comes in. Returns the offset in the block of the first byte
    /// read and every byte read (for the whole block: the block, in the buffer it was read
    /// into when that is barely larger than the block; for a part: in the pooled buffer, which
    /// goes back when the bytes are dropped). `None` when the tier does not hold the
    /// block at that length, or a read or a check failed (counted; logged at most once per
    /// [`super::LOG_INTERVAL`]; a damaged slot is dropped): `sink` got only verified bytes.
    ///
    /// Must run on a monoio runtime: on the io_uring driver the parts are read through the
    /// ring side by side, on the epoll driver each is a `pread` on this thread.
    pub async fn read_range(
        &self,
        key: &BlockKey,
        want: Range<usize>,
        block_len: usize,
        sink: &mut dyn FnMut(Bytes),
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
        let split = match shared.reading.fetch_add(1, Relaxed) {
            0 => Split::Allowed,
            _ => Split::Never,
        };
        let _reading = Reading(&shared.reading);
        let parts = plan(start..end, chunk, split);
        let file = match self.shared.thread_file() {
            Ok(f) => f,
            Err(e) => return self.read_failed(key, &e),
        };
        // Slot-relative regions: the header page (joined to the first part when that starts
        // the block), then each part, padded to whole pages.
        let mut ranges = Vec::with_capacity(parts.len() + 1);
        if start > 0 {
            ranges.push(0..HEADER);
        }
        for (i, p) in parts.iter().enumerate() {
            let from = if i == 0 && start == 0 {
                0
            } else {
                HEADER + p.start
            };
            ranges.push(from..HEADER + round_up(p.end));
        }
        let base = shared.offset(loc.slot);
        let mut regions = SpanBuf::split(shared.pool.take(), shared.pool.clone(), &ranges);
        let span = regions[0].span().clone();
        let first = regions.remove(0);
        // Every region but the first is read by a task of its own, so that all are in flight
        // while this one waits for the first.
        let mut rest: Vec<_> = regions
            .into_iter()
            .rev()
            .map(|r| {
                let file = file.clone();
                let at = base + r.start() as u64;
                monoio::spawn(async move { file.read_exact_at(r, at).await })
            })
            .collect();
        let mut next = Some(file.read_exact_at(first, base));
        let mut header: Option<Bytes> = None;
        let mut parts = parts.iter();
        while let Some((res, region)) = match next.take() {
            Some(read) => Some(read.await),
            None => match rest.pop() {
                Some(task) => Some(task.await),
                None => None,
            },
        } {
            match res {
                Ok(()) => {}
                // The file ends inside the slot: a write torn by a crash.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return self.rejected(key, loc, SlotError::DataChecksum)
                }
                Err(e) => return self.read_failed(key, &e),
            }
            let bytes = region.into_bytes();
            let data = match &header {
                Some(_) => bytes,
                None => {
                    let page = bytes.slice(..HEADER);
                    if let Err(e) = format::check_header(&page, key, loc.seq, loc.len, chunk) {
                        return self.rejected(key, loc, e);
                    }
                    header = Some(page);
                    if start > 0 {
                        continue;
                    }
                    bytes.slice(HEADER..)
                }
            };
            let part = parts.next().expect("one part per data region");
            let data = data.slice(..part.len());
            let page = header.as_ref().expect("the header comes first");
            if let Err(e) = format::check_chunks(page, chunk, part.start / chunk, &data) {
                return self.rejected(key, loc, e);
            }
            sink(data);
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

/// A read in flight, counted while it lives.
struct Reading<'a>(&'a AtomicUsize);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_read_is_split_in_a_short_first_part_and_three_even_ones_when_alone() {
        let (k, mib) = (16 << 10, 1 << 20);
        let kib = |n: usize| n << 10;
        assert_eq!(
            plan(0..mib, k, Split::Allowed),
            vec![
                0..kib(64),
                kib(64)..kib(384),
                kib(384)..kib(704),
                kib(704)..mib
            ]
        );
        assert_eq!(plan(0..mib, k, Split::Never), vec![0..mib]);
        // Too short to split.
        assert_eq!(plan(0..kib(64), k, Split::Allowed), vec![0..kib(64)]);
        assert_eq!(
            plan(kib(48)..100_000, k, Split::Allowed),
            vec![kib(48)..100_000]
        );
        // 300 KB: the first part, then the rest in whole chunks (the last ends the block).
        assert_eq!(
            plan(0..300_000, k, Split::Allowed),
            vec![
                0..kib(64),
                kib(64)..kib(144),
                kib(144)..kib(224),
                kib(224)..300_000
            ]
        );
        // Large chunks: the first part is one chunk.
        assert_eq!(plan(0..8 << 20, 32 << 10, Split::Allowed)[0], 0..kib(64));
        assert_eq!(plan(0..64 << 20, 256 << 10, Split::Allowed)[0], 0..kib(256));
    }
}
