//! Parquet-aware prefetch: where each column chunk and page index of a Parquet file lies,
//! decoded from its footer with the `parquet` crate, and which bytes a reader of one column
//! chunk will ask for next (the same columns in the next row group, and their page indexes).

use parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaDataReader};

use crate::cache::range::ByteRange;

/// The 4-byte magic that ends (and starts) every Parquet file.
const MAGIC: &[u8; 4] = b"PAR1";

/// How many row groups ahead of a reader its columns are fetched at first: one is caught up
/// with at once by a reader that takes a single column; two keep a row group in hand.
pub const DEPTH: usize = 2;

/// How many row groups ahead of a reader that keeps reading what was prefetched for it (see
/// [`super::Prefetcher::depth`]). DuckDB's cold query on the 16-row-group test file took
/// 0.37x direct time at depth 2 and 0.26x at 8 (`loadtest/scripts/engines.py --reps 5`,
/// 2026-11-29); Polars, which reads eight row groups at once, 0.69x and 0.68x.
pub const MAX_DEPTH: usize = 8;

/// Largest footer rangecache decodes: wider files are read without Parquet prefetch.
pub const MAX_FOOTER: u64 = 8 << 20;

/// One column chunk of one row group.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chunk {
    row_group: usize,
    column: usize,
    bytes: ByteRange,
    /// The chunk's column index and offset index (page index), when the writer wrote them.
    indexes: Vec<ByteRange>,
}

/// Where the column chunks of one Parquet file (one object version) lie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Sorted by start offset.
    chunks: Vec<Chunk>,
    row_groups: usize,
}

/// What the footer's last 8 bytes say: the metadata's length, when they end with `PAR1`.
pub fn footer_len(tail8: &[u8]) -> Option<u64> {
    let tail8: &[u8; 8] = tail8.try_into().ok()?;
    let len = [tail8[0], tail8[1], tail8[2], tail8[3]];
    (&tail8[4..] == MAGIC).then(|| u64::from(u32::from_le_bytes(len)))
}

fn range_of(start: i64, len: i64, size: u64) -> Option<ByteRange> {
    let start = u64::try_from(start).ok()?;
    let len = u64::try_from(len).ok().filter(|&l| l > 0)?;
    let last = start.checked_add(len - 1)?;
    (last < size).then(|| ByteRange::new(start, last))
}

fn chunk_of(row_group: usize, column: usize, c: &ColumnChunkMetaData, size: u64) -> Option<Chunk> {
    let start = c.dictionary_page_offset().unwrap_or(c.data_page_offset());
    let bytes = range_of(start, c.compressed_size(), size)?;
    let indexes = [c.column_index_range(), c.offset_index_range()]
        .into_iter()
        .flatten()
        .filter_map(|r| range_of(r.start as i64, (r.end - r.start) as i64, size))
        .collect();
    Some(Chunk {
        row_group,
        column,
        bytes,
        indexes,
    })
}

impl Layout {
    /// Decode the layout of a file of `size` bytes from its last bytes `tail` (at least the
    /// whole footer: metadata, its length and `PAR1`). `None` when `tail` is not a Parquet
    /// footer, is cut short, or describes chunks outside the file: such files get no Parquet
    /// prefetch, and their readers nothing else.
    pub fn from_tail(tail: &[u8], size: u64) -> Option<Self> {
        let n = tail.len();
        let meta_len = footer_len(tail.get(n.checked_sub(8)?..)?)? as usize;
        let meta = tail.get(n.checked_sub(8 + meta_len)?..n - 8)?;
        let decoded = ParquetMetaDataReader::decode_metadata(meta).ok()?;
        let mut chunks = Vec::new();
        for (i, rg) in decoded.row_groups().iter().enumerate() {
            for (j, c) in rg.columns().iter().enumerate() {
                chunks.push(chunk_of(i, j, c, size)?);
            }
        }
        chunks.sort_by_key(|c| c.bytes.first);
        Some(Self {
            chunks,
            row_groups: decoded.row_groups().len(),
        })
    }

    /// Row groups in the file.
    pub fn row_groups(&self) -> usize {
        self.row_groups
    }

    /// The bytes of column `column`'s chunk in row group `row_group`.
    pub fn chunk(&self, row_group: usize, column: usize) -> Option<ByteRange> {
        self.chunks
            .iter()
            .find(|c| c.row_group == row_group && c.column == column)
            .map(|c| c.bytes)
    }

    /// What a reader of `range` will want next: for each column chunk `range` touches, the
    /// chunks of the same column in the next `depth` row groups (nearest first), each with
    /// its page indexes, at most `budget` bytes in all. Empty when `range` touches no column
    /// chunk (the footer, a page index) or the chunks are in the last row group.
    pub fn follow(&self, range: ByteRange, budget: u64, depth: usize) -> Vec<ByteRange> {
        let mut out = Vec::new();
        let mut total = 0u64;
        let touched: Vec<&Chunk> = self
            .chunks
            .iter()
            .filter(|c| c.bytes.first <= range.last && range.first <= c.bytes.last)
            .collect();
        for ahead in 1..=depth {
            for c in &touched {
                let next = self
                    .chunks
                    .iter()
                    .find(|n| n.row_group == c.row_group + ahead && n.column == c.column);
                let Some(next) = next else { continue };
                for r in std::iter::once(next.bytes).chain(next.indexes.iter().copied()) {
                    if total + r.len() > budget {
                        return out;
                    }
                    total += r.len();
                    out.push(r);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYARROW: &[u8] = include_bytes!("../../../tests/data/pyarrow_index.parquet");
    const PLAIN: &[u8] = include_bytes!("../../../tests/data/pyarrow_plain.parquet");
    const POLARS: &[u8] = include_bytes!("../../../tests/data/polars.parquet");

    fn layout(file: &[u8]) -> Layout {
        Layout::from_tail(file, file.len() as u64).expect("a real footer decodes")
    }

    #[test]
    fn files_written_by_pyarrow_and_polars_decode() {
        for file in [PYARROW, PLAIN, POLARS] {
            let l = layout(file);
            assert_eq!(l.row_groups(), 4);
            assert_eq!(l.chunks.len(), 12);
            assert!(l
                .chunks
                .windows(2)
                .all(|w| w[0].bytes.last < w[1].bytes.first));
        }
        // Asked to, pyarrow writes both page indexes; by default it writes none.
        assert!(layout(PYARROW).chunks.iter().all(|c| c.indexes.len() == 2));
        assert!(layout(PLAIN).chunks.iter().all(|c| c.indexes.is_empty()));
    }

    #[test]
    fn a_reader_of_one_chunk_is_followed_into_the_next_row_groups() {
        for file in [PYARROW, PLAIN, POLARS] {
            let l = layout(file);
            let b0 = l
                .chunks
                .iter()
                .find(|c| c.row_group == 0 && c.column == 1)
                .unwrap();
            let b1 = l
                .chunks
                .iter()
                .find(|c| c.row_group == 1 && c.column == 1)
                .unwrap();
            let b2 = l
                .chunks
                .iter()
                .find(|c| c.row_group == 2 && c.column == 1)
                .unwrap();
            let next = l.follow(b0.bytes, u64::MAX, DEPTH);
            // Row group 1's chunk and its indexes, then row group 2's.
            let k = 1 + b1.indexes.len();
            assert_eq!(next[0], b1.bytes);
            assert_eq!(next[1..k], b1.indexes[..]);
            assert_eq!(next[k], b2.bytes);
            assert_eq!(next.len(), 2 * k);
            // Deeper: all three row groups after the first (the file has four).
            assert_eq!(l.follow(b0.bytes, u64::MAX, MAX_DEPTH).len(), 3 * k);
            // The third row group's reader has only the last one ahead.
            assert_eq!(l.follow(b2.bytes, u64::MAX, DEPTH).len(), k);
            // A budget smaller than the chunk prefetches nothing of it.
            assert!(l.follow(b0.bytes, b1.bytes.len() - 1, DEPTH).is_empty());
            // The last row group has no next one; the footer is no chunk.
            let last = l.chunks.iter().find(|c| c.row_group == 3).unwrap();
            assert!(l.follow(last.bytes, u64::MAX, MAX_DEPTH).is_empty());
            let n = file.len() as u64;
            assert!(l
                .follow(ByteRange::new(n - 8, n - 1), u64::MAX, DEPTH)
                .is_empty());
        }
    }

    #[test]
    fn a_tail_without_the_whole_footer_or_with_flipped_bytes_gives_no_layout() {
        let n = PYARROW.len();
        let meta = footer_len(&PYARROW[n - 8..]).unwrap() as usize;
        // The footer exactly is enough; one byte less is not.
        assert!(Layout::from_tail(&PYARROW[n - 8 - meta..], n as u64).is_some());
        assert_eq!(Layout::from_tail(&PYARROW[n - 7 - meta..], n as u64), None);
        // A file claimed smaller than its chunks' offsets.
        assert_eq!(Layout::from_tail(PYARROW, 1000), None);
        // Flipped bytes inside the metadata: no panic, and no layout or a consistent one.
        let mut bad = PYARROW.to_vec();
        for i in (n - 8 - meta..n - 8).step_by(7) {
            bad[i] ^= 0x5a;
        }
        if let Some(l) = Layout::from_tail(&bad, n as u64) {
            assert!(l.chunks.iter().all(|c| c.bytes.last < n as u64));
        }
    }

    #[test]
    fn footer_length_needs_the_magic() {
        assert_eq!(footer_len(b"\x10\x00\x00\x00PAR1"), Some(16));
        assert_eq!(footer_len(b"\x10\x00\x00\x00PAR2"), None);
        assert_eq!(footer_len(b"PAR1"), None);
    }

    #[test]
    fn garbage_truncated_and_foreign_tails_give_no_layout() {
        assert_eq!(Layout::from_tail(b"", 100), None);
        assert_eq!(Layout::from_tail(b"not parquet at all", 100), None);
        // Claims a 1000-byte footer in a 20-byte tail.
        let mut cut = vec![0u8; 12];
        cut.extend_from_slice(&1000u32.to_le_bytes());
        cut.extend_from_slice(MAGIC);
        assert_eq!(Layout::from_tail(&cut, 100), None);
        // A footer of the right length whose bytes are not Thrift.
        let mut junk = vec![0xffu8; 64];
        junk.extend_from_slice(&64u32.to_le_bytes());
        junk.extend_from_slice(MAGIC);
        assert_eq!(Layout::from_tail(&junk, 1000), None);
    }
}
