//! Synthetic Parquet objects: real-shaped files the simulator serves without storing them.
//!
//! A key whose last segment reads `pqe-<index>-<R>x<C>-size-<N>` names an `N`-byte Parquet
//! file of `R` row groups by `C` columns (one `INT64` column each). Its column chunks fill
//! the file from byte 4 to the footer, row group after row group, their sizes drawn
//! log-uniformly (1:40) from a hash of the key; the footer is real Parquet metadata written
//! with the `parquet` crate, whose chunk offsets and sizes are exactly these. The bytes are
//! [`crate::content`] of the object's seed, except the leading `PAR1` and the footer, so a
//! client checks every byte with [`ParquetObject::verify`] and the simulator serves them with
//! [`ParquetObject::fill`]. Page data is not decodable: engines cannot run queries on it,
//! but anything that reads the footer (rangecache's prefetch) sees a valid file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use parquet::basic::{Compression, Encoding, Type as PhysicalType};
use parquet::file::metadata::{
    ColumnChunkMetaData, FileMetaData, ParquetMetaDataBuilder, ParquetMetaDataWriter,
    RowGroupMetaData,
};
use parquet::schema::types::{SchemaDescriptor, Type};

use crate::content;
use crate::rng::{hash_bytes, Rng};

/// The prefix of a synthetic Parquet key's last segment.
pub const PREFIX: &str = "pqe";

const MAGIC: &[u8; 4] = b"PAR1";

/// Rows per row group the metadata claims (8 bytes a value would not match the chunk sizes;
/// nothing reads values).
const ROWS_PER_GROUP: i64 = 100_000;

/// Layouts the simulator keeps decoded; past this it starts over (a cache, not a store).
const CACHED_LAYOUTS: usize = 1024;

/// The shape of one synthetic Parquet file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParquetObject {
    /// File size.
    pub size: u64,
    /// Row groups.
    pub row_groups: usize,
    /// Columns per row group.
    pub columns: usize,
    /// `(offset, len)` of the chunk of column `c` in row group `rg` at `rg * columns + c`.
    pub chunks: Vec<(u64, u64)>,
    /// Footer: Thrift metadata, its length (u32 LE) and `PAR1`; it ends the file.
    pub footer: Vec<u8>,
}

/// Why a synthetic Parquet file cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShapeError {
    /// Too small for its chunks and footer.
    TooSmall {
        /// Smallest size that would fit.
        need: u64,
    },
    /// The `parquet` crate refused the metadata.
    Metadata(String),
}

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ShapeError::TooSmall { need } => write!(f, "file too small: needs {need} bytes"),
            ShapeError::Metadata(e) => write!(f, "parquet metadata: {e}"),
        }
    }
}

impl std::error::Error for ShapeError {}

/// The key of synthetic Parquet file `index` with this shape.
pub fn key(index: usize, row_groups: usize, columns: usize, size: u64) -> String {
    format!("{PREFIX}-{index:06}-{row_groups}x{columns}-size-{size}")
}

/// Footer space reserved: enough for the metadata of `chunks` chunks, in whole 4 KiB.
fn footer_reserve(chunks: usize) -> u64 {
    (4096 + 160 * chunks as u64).next_multiple_of(4096)
}

impl ParquetObject {
    /// The file `key` names, or `None` when `key` is not a synthetic Parquet key (or names
    /// a file too small to hold its chunks). Cached per key.
    pub fn of_key(key: &str) -> Option<Arc<ParquetObject>> {
        let last = key.rsplit('/').next()?;
        let rest = last.strip_prefix(PREFIX)?.strip_prefix('-')?;
        let mut parts = rest.splitn(3, '-');
        let (_index, shape, _size) = (parts.next()?, parts.next()?, parts.next()?);
        let (r, c) = shape.split_once('x')?;
        let (row_groups, columns) = (r.parse().ok()?, c.parse().ok()?);
        let size = crate::object::synthetic_size(last)?;
        static CACHE: OnceLock<Mutex<HashMap<String, Arc<ParquetObject>>>> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        if let Some(p) = lock(cache).get(last) {
            return Some(p.clone());
        }
        let p = Arc::new(Self::build(hash_bytes(last.as_bytes()), row_groups, columns, size).ok()?);
        let mut map = lock(cache);
        if map.len() >= CACHED_LAYOUTS {
            map.clear();
        }
        map.insert(last.to_owned(), p.clone());
        Some(p)
    }

    /// Lay out a file of `size` bytes, chunk sizes drawn from `seed`.
    pub fn build(
        seed: u64,
        row_groups: usize,
        columns: usize,
        size: u64,
    ) -> Result<Self, ShapeError> {
        let n = row_groups * columns;
        let reserve = footer_reserve(n);
        let need = 4 + reserve + n as u64;
        if n == 0 || size < need {
            return Err(ShapeError::TooSmall { need });
        }
        let data = size - 4 - reserve;
        let mut rng = Rng::new(seed);
        let weights: Vec<u64> = (0..n).map(|_| rng.log_uniform(1000, 40_000)).collect();
        let total: u64 = weights.iter().sum();
        let mut chunks = Vec::with_capacity(n);
        let mut off = 4;
        for (i, w) in weights.iter().enumerate() {
            let len = if i + 1 == n {
                4 + data - off
            } else {
                (u128::from(data) * u128::from(*w) / u128::from(total)).max(1) as u64
            };
            chunks.push((off, len));
            off += len;
        }
        let footer = footer(row_groups, columns, &chunks).map_err(ShapeError::Metadata)?;
        if footer.len() as u64 > reserve {
            return Err(ShapeError::Metadata(format!(
                "footer of {} bytes over its {reserve}-byte reserve",
                footer.len()
            )));
        }
        Ok(Self {
            size,
            row_groups,
            columns,
            chunks,
            footer,
        })
    }

    /// The chunk of `column` in `row_group`: `(offset, len)`.
    pub fn chunk(&self, row_group: usize, column: usize) -> (u64, u64) {
        self.chunks[row_group * self.columns + column]
    }

    /// Where the footer starts.
    pub fn footer_start(&self) -> u64 {
        self.size - self.footer.len() as u64
    }

    /// The bytes that are not synthetic content: `(offset, bytes)`.
    fn patches(&self) -> [(u64, &[u8]); 2] {
        [(0, MAGIC.as_slice()), (self.footer_start(), &self.footer)]
    }

    /// Fill `buf` with the file's bytes from `offset` (content of `seed`, then the patches).
    pub fn fill(&self, seed: u64, offset: u64, buf: &mut [u8]) {
        content::fill(seed, offset, buf);
        let end = offset + buf.len() as u64;
        for (at, bytes) in self.patches() {
            let (s, e) = (at.max(offset), (at + bytes.len() as u64).min(end));
            if s < e {
                buf[(s - offset) as usize..(e - offset) as usize]
                    .copy_from_slice(&bytes[(s - at) as usize..(e - at) as usize]);
            }
        }
    }

    /// Bytes of `data` (read at `offset`) that differ from the file.
    pub fn verify(&self, seed: u64, offset: u64, data: &[u8]) -> u64 {
        let end = offset + data.len() as u64;
        let mut bad = 0;
        let mut pos = offset;
        for (at, bytes) in self.patches() {
            let (s, e) = (at.max(pos), (at + bytes.len() as u64).min(end));
            if s >= e {
                continue;
            }
            let idx = |p: u64| (p - offset) as usize;
            bad += content::verify(seed, pos, &data[idx(pos)..idx(s)]);
            bad += data[idx(s)..idx(e)]
                .iter()
                .zip(&bytes[(s - at) as usize..(e - at) as usize])
                .filter(|(a, b)| a != b)
                .count() as u64;
            pos = e;
        }
        bad + content::verify(seed, pos, &data[(pos - offset) as usize..])
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Parquet metadata for `row_groups` x `columns` INT64 columns at `chunks`, as the footer
/// ends a file: metadata, length, `PAR1`.
fn footer(row_groups: usize, columns: usize, chunks: &[(u64, u64)]) -> Result<Vec<u8>, String> {
    let fields = (0..columns)
        .map(|c| {
            Type::primitive_type_builder(&format!("c{c}"), PhysicalType::INT64)
                .with_repetition(parquet::basic::Repetition::REQUIRED)
                .build()
                .map(Arc::new)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let schema = Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
        .map_err(|e| e.to_string())?;
    let descr = Arc::new(SchemaDescriptor::new(Arc::new(schema)));
    let rows = ROWS_PER_GROUP * row_groups as i64;
    let meta = FileMetaData::new(
        1,
        rows,
        Some("rangecache-loadtest".into()),
        None,
        descr.clone(),
        None,
    );
    let mut builder = ParquetMetaDataBuilder::new(meta);
    for rg in 0..row_groups {
        let mut cols = Vec::with_capacity(columns);
        let mut bytes = 0i64;
        for c in 0..columns {
            let (off, len) = chunks[rg * columns + c];
            let (off, len) = (off as i64, len as i64);
            bytes += len;
            cols.push(
                ColumnChunkMetaData::builder(descr.column(c))
                    .set_encodings(vec![Encoding::PLAIN])
                    .set_compression(Compression::UNCOMPRESSED)
                    .set_num_values(ROWS_PER_GROUP)
                    .set_data_page_offset(off)
                    .set_total_compressed_size(len)
                    .set_total_uncompressed_size(len)
                    .build()
                    .map_err(|e| e.to_string())?,
            );
        }
        let first = chunks[rg * columns].0 as i64;
        builder = builder.add_row_group(
            RowGroupMetaData::builder(descr.clone())
                .set_num_rows(ROWS_PER_GROUP)
                .set_total_byte_size(bytes)
                .set_column_metadata(cols)
                .set_ordinal(rg as i32)
                .set_file_offset(first)
                .build()
                .map_err(|e| e.to_string())?,
        );
    }
    let mut out = Vec::new();
    ParquetMetaDataWriter::new(&mut out, &builder.build())
        .finish()
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::metadata::ParquetMetaDataReader;

    #[test]
    fn the_footer_decodes_to_the_chunks_it_was_built_from() {
        let k = key(3, 16, 8, 64 << 20);
        let p = ParquetObject::of_key(&format!("some/prefix/{k}")).expect("a parquet key");
        assert_eq!((p.size, p.row_groups, p.columns), (64 << 20, 16, 8));
        let mut file = vec![0u8; p.size as usize];
        p.fill(7, 0, &mut file);
        assert_eq!(&file[..4], MAGIC);
        assert_eq!(&file[file.len() - 4..], MAGIC);
        let n = file.len();
        let meta_len = u32::from_le_bytes(file[n - 8..n - 4].try_into().unwrap()) as usize;
        let meta = ParquetMetaDataReader::decode_metadata(&file[n - 8 - meta_len..n - 8])
            .expect("the parquet crate decodes the footer");
        assert_eq!(meta.num_row_groups(), 16);
        for (rg, g) in meta.row_groups().iter().enumerate() {
            for (c, col) in g.columns().iter().enumerate() {
                let (off, len) = p.chunk(rg, c);
                assert_eq!(col.data_page_offset() as u64, off);
                assert_eq!(col.compressed_size() as u64, len);
            }
        }
        // Chunks tile the file from byte 4 up to where the footer's reserve begins.
        assert_eq!(p.chunks[0].0, 4);
        assert!(p.chunks.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0));
        let (last, len) = *p.chunks.last().unwrap();
        assert!(last + len <= p.footer_start());
        // Every byte checks out from any offset; a flipped one does not.
        assert_eq!(p.verify(7, 0, &file), 0);
        assert_eq!(p.verify(7, 1, &file[1..]), 0);
        assert_eq!(p.verify(7, (n - 5000) as u64, &file[n - 5000..]), 0);
        file[n - 20] ^= 1;
        file[2] ^= 1;
        file[1000] ^= 1;
        assert_eq!(p.verify(7, 0, &file), 3);
        let mut piece = vec![0u8; 9000];
        p.fill(7, (n - 9000) as u64, &mut piece);
        assert_eq!(
            piece,
            file[n - 9000..]
                .iter()
                .enumerate()
                .map(|(i, &b)| if i == 9000 - 20 { b ^ 1 } else { b })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn other_keys_and_tiny_files_are_not_parquet() {
        assert_eq!(ParquetObject::of_key("scan-000001-size-1000"), None);
        assert_eq!(ParquetObject::of_key(&key(1, 16, 8, 10_000)), None);
        assert!(matches!(
            ParquetObject::build(1, 2, 2, 100),
            Err(ShapeError::TooSmall { .. })
        ));
        assert_eq!(
            ParquetObject::of_key(&key(1, 2, 3, 1 << 20))
                .unwrap()
                .chunks
                .len(),
            6
        );
    }
}
