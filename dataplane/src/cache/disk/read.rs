//! Reading a block, or part of one, back from the disk tier.
//!
//! A read asks for the slot's header and only the chunks that cover the bytes wanted (a
//! 64 KiB range of a 1 MiB block reads 64-80 KiB, not the block), split into up to [`PARTS`]
//! requests in flight at once. Parts are checked in order as they come in — the header
//! against the key, sequence number and length the index expects, each part's chunks against
//! the header's checksums — and each verified part is handed on at once, so a client is sent
//! the first quarter of a block while the rest is still being read.

use std::io;
use std::ops::Range;

use bytes::Bytes;

use super::format::{self, round_up, SlotError, HEADER};
use super::index::Loc;
use super::span::SpanBuf;
use super::{slot_error, DiskTier};
use crate::cache::BlockKey;

/// Most reads in flight for one block.
const PARTS: usize = 4;

/// Fewest bytes a part reads: shorter reads cost more per byte than overlapping them gains.
const PART_BYTES: usize = 256 << 10;

/// The block-relative ranges `data` (starting on a chunk boundary) is read in: up to
/// [`PARTS`] of at least [`PART_BYTES`], each starting on a chunk boundary.
fn plan(data: Range<usize>, chunk: usize) -> Vec<Range<usize>> {
    let n = (data.len() / PART_BYTES).clamp(1, PARTS);
    let per = data.len().div_ceil(n).next_multiple_of(chunk);
    (0..n)
        .map(|i| data.start + i * per..(data.start + (i + 1) * per).min(data.end))
        .filter(|r| !r.is_empty())
        .collect()
}

impl DiskTier {
    /// Bytes `want` of block `key`, which the caller expects to be `block_len` bytes long,
    /// from disk. `sink` is handed the verified bytes in order, from the first chunk that
    /// covers `want`, as each part comes in. Returns the offset in the block of the first byte
    /// read and every byte read (for the whole block: the block, in the buffer it was read
    /// into when that is barely larger than the block). `None` when the tier does not hold the
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
        let parts = plan(start..end, chunk);
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
        let all = span
            .whole(HEADER + start..HEADER + end)
            .expect("every region came back");
        Some((start, exact(all, shared.slot_size as usize)))
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

/// `bytes`, a slice of a read buffer of `buffer` bytes, kept in place when the buffer is
/// barely larger (the slack under 1/16: what the RAM store counts is about what it holds);
/// copied into an exact allocation otherwise (a short block or a part), so the buffer goes
/// back to its pool at once and the store's budget stays honest.
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
    fn a_read_is_split_in_up_to_four_chunk_aligned_parts_of_at_least_256_kib() {
        let k = 16 << 10;
        assert_eq!(
            plan(0..1 << 20, k),
            vec![
                0..256 << 10,
                256 << 10..512 << 10,
                512 << 10..768 << 10,
                768 << 10..1 << 20
            ]
        );
        assert_eq!(plan(0..64 << 10, k), vec![0..64 << 10]);
        assert_eq!(plan(48 << 10..100_000, k), vec![48 << 10..100_000]);
        // 600 KB: two parts, the first a whole number of chunks.
        assert_eq!(plan(0..600_000, k), vec![0..304 << 10, 304 << 10..600_000]);
        // 8 MiB: four parts of 2 MiB.
        assert_eq!(plan(0..8 << 20, 32 << 10).len(), 4);
    }
}
