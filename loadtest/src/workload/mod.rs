//! Analytics access patterns. A workload owns a table of objects and hands each client its
//! next read; the runner turns reads into requests against any target. Every workload is
//! deterministic from its seed, so each target in a round replays the same reads.
//! `first-touch` measures the cold path alone (every read a never-read object);
//! `parquet-engine` reads real-shaped Parquet files as query engines do.

mod aligned;
mod first_touch;
mod herd;
mod parquet;
mod parquet_engine;
mod scan;
mod zipf_ranges;

use crate::object::ObjectRef;
use crate::range::ByteRange;

pub use aligned::{AlignedRanges, AlignedSpec};
pub use first_touch::{FirstTouch, FirstTouchSpec};
pub use herd::{Herd, HerdSpec};
pub use parquet::{Parquet, ParquetSpec};
pub use parquet_engine::{ParquetEngine, ParquetEngineSpec};
pub use scan::{Scan, ScanSpec};
pub use zipf_ranges::{ZipfRanges, ZipfSpec};

/// One read: an object of the workload's table and the range of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// Index into [`Workload::objects`].
    pub object: usize,
    /// The range; `None` reads the whole object.
    pub range: Option<ByteRange>,
    /// GET the range, or HEAD the object (then `range` is ignored).
    pub op: Op,
}

/// What a [`Read`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A (range) GET; the body is checked.
    Get,
    /// A HEAD; the status and Content-Length are checked.
    Head,
}

/// An access pattern.
pub trait Workload {
    /// Short name ("parquet", "zipf", ...).
    fn name(&self) -> &'static str;
    /// One line saying what it does with which parameters.
    fn describe(&self) -> String;
    /// The objects it reads; `Read::object` indexes this.
    fn objects(&self) -> &[ObjectRef];
    /// The next read of `client` (0-based), or `None` when that client is done.
    fn next(&mut self, client: usize) -> Option<Read>;
    /// True when all clients must issue each read at the same moment (a thundering herd).
    fn lockstep(&self) -> bool {
        false
    }
    /// Whether a warm round makes sense (a cache pre-filled with what it reads).
    fn has_warm(&self) -> bool {
        true
    }
    /// Reads that bring every byte this workload may touch into a cache: each object whole,
    /// in pieces of `piece` bytes.
    fn warmup(&self, piece: u64) -> Vec<Read> {
        whole_objects(self.objects(), piece)
    }
}

/// Every object read front to back in `piece`-byte ranges.
pub fn whole_objects(objects: &[ObjectRef], piece: u64) -> Vec<Read> {
    let mut out = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        let mut off = 0;
        while off < o.size {
            let len = piece.min(o.size - off);
            out.push(Read {
                object: i,
                range: Some(ByteRange::span(off, len)),
                op: Op::Get,
            });
            off += len;
        }
    }
    out
}

/// Reads from a list, shared by all clients in order (warm-up passes).
#[derive(Debug)]
pub struct ReadList {
    objects: Vec<ObjectRef>,
    reads: Vec<Read>,
    next: usize,
}

impl ReadList {
    /// Hand out `reads` of `objects` in order.
    pub fn new(objects: Vec<ObjectRef>, reads: Vec<Read>) -> Self {
        ReadList {
            objects,
            reads,
            next: 0,
        }
    }
}

impl Workload for ReadList {
    fn name(&self) -> &'static str {
        "warmup"
    }
    fn describe(&self) -> String {
        format!("{} reads", self.reads.len())
    }
    fn objects(&self) -> &[ObjectRef] {
        &self.objects
    }
    fn next(&mut self, _client: usize) -> Option<Read> {
        let r = self.reads.get(self.next).copied();
        self.next += 1;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_objects_cover_every_byte_once() {
        let objs = vec![
            ObjectRef {
                key: "a".into(),
                size: 10,
            },
            ObjectRef {
                key: "b".into(),
                size: 4,
            },
        ];
        let reads = whole_objects(&objs, 4);
        let spans: Vec<(usize, (u64, u64))> = reads
            .iter()
            .map(|r| {
                (
                    r.object,
                    r.range.unwrap().resolve(objs[r.object].size).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            spans,
            vec![(0, (0, 4)), (0, (4, 8)), (0, (8, 10)), (1, (0, 4))]
        );
    }
}
