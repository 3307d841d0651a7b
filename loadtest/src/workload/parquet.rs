//! Parquet-style queries, the way polars, pyarrow and duckdb read: per query one footer read
//! (a suffix range of 64–256 KiB), then the column chunks of the selected columns in every
//! row group (0.2–8 MiB each, log-uniform), over a fixed working set of files. Queries repeat
//! over the working set, so the same chunks are read again and again.

use std::collections::VecDeque;

use super::{Op, Read, Workload};
use crate::object::{synthetic_key, ObjectRef};
use crate::range::ByteRange;
use crate::rng::Rng;
use crate::units::fmt_bytes;

/// Shape of the Parquet working set and queries.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetSpec {
    /// Files in the working set.
    pub files: usize,
    /// Row groups per file.
    pub row_groups: usize,
    /// Columns per row group.
    pub columns: usize,
    /// Smallest column chunk.
    pub chunk_min: u64,
    /// Largest column chunk.
    pub chunk_max: u64,
    /// Smallest footer read (suffix length).
    pub footer_min: u64,
    /// Largest footer read.
    pub footer_max: u64,
    /// Fewest columns a query selects.
    pub query_columns_min: usize,
    /// Most columns a query selects.
    pub query_columns_max: usize,
}

impl Default for ParquetSpec {
    fn default() -> Self {
        ParquetSpec {
            files: 12,
            row_groups: 2,
            columns: 12,
            chunk_min: 200 * 1024,
            chunk_max: 8 << 20,
            footer_min: 64 << 10,
            footer_max: 256 << 10,
            query_columns_min: 2,
            query_columns_max: 6,
        }
    }
}

/// Where one file's pieces are.
#[derive(Debug, Clone)]
struct Layout {
    footer: u64,
    /// `(offset, len)` of chunk `row_group * columns + column`.
    chunks: Vec<(u64, u64)>,
}

/// The Parquet workload.
#[derive(Debug)]
pub struct Parquet {
    spec: ParquetSpec,
    objects: Vec<ObjectRef>,
    layouts: Vec<Layout>,
    seed: u64,
    clients: Vec<(Rng, VecDeque<Read>)>,
}

impl Parquet {
    /// The working set laid out from `layout_seed`; queries drawn from `query_seed` (rounds
    /// vary the queries over one working set).
    pub fn new(spec: ParquetSpec, layout_seed: u64, query_seed: u64) -> Self {
        assert!(spec.files > 0 && spec.row_groups > 0 && spec.columns > 0);
        let mut rng = Rng::new(layout_seed ^ 0x0070_6172_7175_6574);
        let mut objects = Vec::with_capacity(spec.files);
        let mut layouts = Vec::with_capacity(spec.files);
        for f in 0..spec.files {
            let mut off = 4; // "PAR1"
            let mut chunks = Vec::with_capacity(spec.row_groups * spec.columns);
            for _ in 0..spec.row_groups * spec.columns {
                let len = rng.log_uniform(spec.chunk_min, spec.chunk_max);
                chunks.push((off, len));
                off += len;
            }
            let footer = rng.range_incl(spec.footer_min, spec.footer_max.max(spec.footer_min));
            let size = off + footer;
            objects.push(ObjectRef {
                key: synthetic_key("pq", f, size),
                size,
            });
            layouts.push(Layout { footer, chunks });
        }
        Parquet {
            spec,
            objects,
            layouts,
            seed: query_seed,
            clients: Vec::new(),
        }
    }

    /// Total bytes of the working set.
    pub fn working_set_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }

    /// The reads of one query over file `f` selecting `columns`.
    fn query(&self, f: usize, columns: &[usize]) -> Vec<Read> {
        let l = &self.layouts[f];
        let mut reads = vec![Read {
            object: f,
            range: Some(ByteRange::Suffix(l.footer)),
            op: Op::Get,
        }];
        for rg in 0..self.spec.row_groups {
            for &c in columns {
                let (off, len) = l.chunks[rg * self.spec.columns + c];
                reads.push(Read {
                    object: f,
                    range: Some(ByteRange::span(off, len)),
                    op: Op::Get,
                });
            }
        }
        reads
    }
}

impl Workload for Parquet {
    fn name(&self) -> &'static str {
        "parquet"
    }

    fn describe(&self) -> String {
        let s = &self.spec;
        format!(
            "{} files ({} working set), {} row groups x {} columns, chunks {}-{} log-uniform, footer suffix {}-{}, {}-{} columns per query",
            s.files,
            fmt_bytes(self.working_set_bytes()),
            s.row_groups,
            s.columns,
            fmt_bytes(s.chunk_min),
            fmt_bytes(s.chunk_max),
            fmt_bytes(s.footer_min),
            fmt_bytes(s.footer_max),
            s.query_columns_min,
            s.query_columns_max
        )
    }

    fn objects(&self) -> &[ObjectRef] {
        &self.objects
    }

    fn next(&mut self, client: usize) -> Option<Read> {
        while self.clients.len() <= client {
            let i = self.clients.len() as u64;
            self.clients.push((
                Rng::new(self.seed ^ (i + 1).wrapping_mul(0xA24B_AED4_963E_E407)),
                VecDeque::new(),
            ));
        }
        if self.clients[client].1.is_empty() {
            let (files, cols) = (self.spec.files, self.spec.columns);
            let (lo, hi) = (
                self.spec.query_columns_min.clamp(1, cols),
                self.spec.query_columns_max.clamp(1, cols),
            );
            let rng = &mut self.clients[client].0;
            let f = rng.below(files as u64) as usize;
            let k = rng.range_incl(lo as u64, hi.max(lo) as u64) as usize;
            let mut all: Vec<usize> = (0..cols).collect();
            rng.shuffle(&mut all);
            all.truncate(k);
            all.sort_unstable();
            let q = self.query(f, &all);
            self.clients[client].1.extend(q);
        }
        self.clients[client].1.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_queries_stay_inside_files() {
        let spec = ParquetSpec::default();
        let mut p = Parquet::new(spec.clone(), 5, 6);
        for (o, l) in p.objects.iter().zip(&p.layouts) {
            assert!((spec.footer_min..=spec.footer_max).contains(&l.footer));
            for &(off, len) in &l.chunks {
                assert!((spec.chunk_min..=spec.chunk_max).contains(&len));
                assert!(off + len <= o.size - l.footer);
            }
        }
        let mut footers = 0;
        for i in 0..2000 {
            let r = p.next(i % 4).unwrap();
            let size = p.objects[r.object].size;
            let (s, e) = r.range.unwrap().resolve(size).unwrap();
            assert!(s < e && e <= size);
            if let Some(ByteRange::Suffix(n)) = r.range {
                footers += 1;
                assert_eq!(e - s, n);
            }
        }
        // A query is one footer plus 2-6 columns x 2 row groups: 5 to 13 reads.
        assert!((2000 / 13..=2000 / 5).contains(&footers), "{footers}");
    }

    #[test]
    fn same_seed_same_reads() {
        let mut a = Parquet::new(ParquetSpec::default(), 9, 1);
        let mut b = Parquet::new(ParquetSpec::default(), 9, 1);
        for i in 0..500 {
            assert_eq!(a.next(i % 3), b.next(i % 3));
        }
        assert_eq!(a.objects, b.objects);
    }
}
