//! Queries over real-shaped Parquet files ([`crate::parquet_file`]), read the way DuckDB,
//! Polars and pyarrow read them: the footer first, then row group after row group, the chosen
//! columns' chunks, one GET each. Each client queries its own share of the files, each file
//! once per round, so a cold round touches nothing twice.
//!
//! The footer is read in one of four ways, drawn per query: the last 8 bytes then exactly the
//! metadata (arrow-rs), a 64 KiB suffix (pyarrow, DuckDB), a 256 KiB suffix (Polars), or a
//! HEAD then an absolute range of the last 64 KiB (DuckDB and pyarrow learn the size first).
//! A suffix too short for the metadata is followed by an absolute read of the rest, as the
//! engines do.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{Op, Read, Workload};
use crate::object::ObjectRef;
use crate::parquet_file::{self, ParquetObject};
use crate::range::ByteRange;
use crate::rng::Rng;
use crate::units::fmt_bytes;

/// Shape of the files and queries.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetEngineSpec {
    /// Files.
    pub files: usize,
    /// Size of each file.
    pub file_size: u64,
    /// Row groups per file.
    pub row_groups: usize,
    /// Columns per row group.
    pub columns: usize,
    /// Columns a query selects.
    pub query_columns: usize,
}

impl Default for ParquetEngineSpec {
    fn default() -> Self {
        Self {
            files: 8,
            file_size: 64 << 20,
            row_groups: 16,
            columns: 8,
            query_columns: 3,
        }
    }
}

/// How a query reads the footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FooterRead {
    /// `bytes=-8`, then the metadata exactly.
    Tail8,
    /// A suffix of this many bytes.
    Suffix(u64),
    /// HEAD (for the size), then an absolute range of the last 64 KiB.
    HeadThenAbsolute,
}

const FOOTER_READS: [FooterRead; 4] = [
    FooterRead::Tail8,
    FooterRead::Suffix(64 << 10),
    FooterRead::Suffix(256 << 10),
    FooterRead::HeadThenAbsolute,
];

/// The workload.
#[derive(Debug)]
pub struct ParquetEngine {
    spec: ParquetEngineSpec,
    objects: Vec<ObjectRef>,
    files: Vec<Arc<ParquetObject>>,
    seed: u64,
    /// Per client: its random stream, files queried so far, reads left of its query.
    clients: Vec<(Rng, usize, VecDeque<Read>)>,
    concurrency_hint: usize,
}

impl ParquetEngine {
    /// The files (a pure function of `spec`) and queries drawn from `query_seed`.
    ///
    /// # Panics
    /// When the files are too small for their row groups and footer.
    pub fn new(spec: ParquetEngineSpec, query_seed: u64) -> Self {
        assert!(spec.files > 0 && spec.query_columns > 0 && spec.query_columns <= spec.columns);
        let mut objects = Vec::with_capacity(spec.files);
        let mut files = Vec::with_capacity(spec.files);
        for i in 0..spec.files {
            let key = parquet_file::key(i, spec.row_groups, spec.columns, spec.file_size);
            let file = ParquetObject::of_key(&key).expect("files large enough for their shape");
            objects.push(ObjectRef {
                key,
                size: spec.file_size,
            });
            files.push(file);
        }
        Self {
            spec,
            objects,
            files,
            seed: query_seed,
            clients: Vec::new(),
            concurrency_hint: 0,
        }
    }

    /// The reads of one query of file `f` over `columns`, footer read `how`.
    fn query(&self, f: usize, how: FooterRead, columns: &[usize]) -> Vec<Read> {
        let file = &self.files[f];
        let size = file.size;
        let footer = file.footer.len() as u64;
        let read = |range| Read {
            object: f,
            range: Some(range),
            op: Op::Get,
        };
        let mut reads = Vec::new();
        let got = match how {
            FooterRead::Tail8 => {
                reads.push(read(ByteRange::Suffix(8)));
                reads.push(read(ByteRange::Suffix(footer)));
                footer
            }
            FooterRead::Suffix(n) => {
                reads.push(read(ByteRange::Suffix(n.min(size))));
                n.min(size)
            }
            FooterRead::HeadThenAbsolute => {
                reads.push(Read {
                    object: f,
                    range: None,
                    op: Op::Head,
                });
                let n = (64u64 << 10).min(size);
                reads.push(read(ByteRange::span(size - n, n)));
                n
            }
        };
        if got < footer {
            reads.push(read(ByteRange::span(size - footer, footer - got)));
        }
        for rg in 0..file.row_groups {
            for &c in columns {
                let (off, len) = file.chunk(rg, c);
                reads.push(read(ByteRange::span(off, len)));
            }
        }
        reads
    }
}

impl Workload for ParquetEngine {
    fn name(&self) -> &'static str {
        "parquet-engine"
    }

    fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "{} Parquet files of {} ({} row groups x {} columns, real footer), each queried once per round for {} columns: footer (-8 then exact, -64KiB, -256KiB, or HEAD then the last 64KiB absolute), then each row group's chosen chunks",
            s.files,
            fmt_bytes(s.file_size),
            s.row_groups,
            s.columns,
            s.query_columns
        )
    }

    fn objects(&self) -> &[ObjectRef] {
        &self.objects
    }

    fn next(&mut self, client: usize) -> Option<Read> {
        while self.clients.len() <= client {
            let i = self.clients.len() as u64;
            self.clients.push((
                Rng::new(self.seed ^ (i + 1).wrapping_mul(0x9FB2_1C65_1E98_DF25)),
                0,
                VecDeque::new(),
            ));
        }
        self.concurrency_hint = self.concurrency_hint.max(self.clients.len());
        if self.clients[client].2.is_empty() {
            // Client c queries files c, c + n, c + 2n, ... (n: clients seen so far; every
            // client asks before any finishes its first query).
            let n = self.concurrency_hint;
            let f = client + self.clients[client].1 * n;
            if f >= self.spec.files {
                return None;
            }
            let (cols, k) = (self.spec.columns, self.spec.query_columns);
            let rng = &mut self.clients[client].0;
            let how = FOOTER_READS[rng.below(FOOTER_READS.len() as u64) as usize];
            let mut all: Vec<usize> = (0..cols).collect();
            rng.shuffle(&mut all);
            all.truncate(k);
            all.sort_unstable();
            let q = self.query(f, how, &all);
            let c = &mut self.clients[client];
            c.1 += 1;
            c.2.extend(q);
        }
        self.clients[client].2.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_file_is_queried_once_footer_first_then_row_group_order() {
        let spec = ParquetEngineSpec {
            files: 5,
            file_size: 8 << 20,
            row_groups: 16,
            columns: 4,
            query_columns: 2,
        };
        let mut w = ParquetEngine::new(spec, 3);
        // Two clients, interleaved.
        let mut per_file: Vec<Vec<ByteRange>> = vec![Vec::new(); 5];
        let mut done = [false; 2];
        while !done.iter().all(|d| *d) {
            for (c, d) in done.iter_mut().enumerate() {
                if *d {
                    continue;
                }
                match w.next(c) {
                    Some(r) if r.op == Op::Head => assert_eq!(r.range, None),
                    Some(r) => per_file[r.object].push(r.range.unwrap()),
                    None => *d = true,
                }
            }
        }
        for (f, reads) in per_file.iter().enumerate() {
            let file = &w.files[f];
            let size = file.size;
            let footer_start = file.footer_start();
            // Footer reads first, covering the whole footer.
            let chunks: Vec<_> = reads
                .iter()
                .map(|r| r.resolve(size).unwrap())
                .skip_while(|&(_, e)| e == size || e == footer_start)
                .collect();
            assert_eq!(chunks.len(), 16 * 2, "file {f}: {reads:?}");
            assert!(
                chunks.windows(2).all(|w| w[0].0 < w[1].0),
                "row group order"
            );
            let covered = reads
                .iter()
                .map(|r| r.resolve(size).unwrap())
                .filter(|&(_, e)| e == size || e == footer_start)
                .map(|(s, _)| s)
                .min()
                .unwrap();
            assert!(covered <= footer_start);
            for (s, e) in chunks {
                assert!(file.chunks.contains(&(s, e - s)));
            }
        }
    }
}
