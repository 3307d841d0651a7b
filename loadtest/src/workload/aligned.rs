//! Block-aligned ranges of one size at uniformly random offsets over N objects: every read is
//! exactly one cache block, as `fio --rw=randread --bs=SIZE` reads one block of a file.

use super::{Op, Read, Workload};
use crate::object::{synthetic_key, ObjectRef};
use crate::range::ByteRange;
use crate::rng::Rng;
use crate::units::fmt_bytes;

/// Parameters of the aligned workload.
#[derive(Debug, Clone, PartialEq)]
pub struct AlignedSpec {
    /// Number of objects.
    pub objects: usize,
    /// Size of each object (a multiple of `range_size`).
    pub object_size: u64,
    /// Size of every range, and its alignment.
    pub range_size: u64,
}

/// The aligned workload.
#[derive(Debug)]
pub struct AlignedRanges {
    spec: AlignedSpec,
    objects: Vec<ObjectRef>,
    rng: Rng,
}

impl AlignedRanges {
    /// Objects named by `spec`, draws fixed by `seed`.
    pub fn new(spec: AlignedSpec, seed: u64) -> Self {
        assert!(spec.objects > 0 && spec.range_size > 0 && spec.object_size >= spec.range_size);
        let objects = (0..spec.objects)
            .map(|i| ObjectRef {
                key: synthetic_key("aligned", i, spec.object_size),
                size: spec.object_size,
            })
            .collect();
        AlignedRanges {
            spec,
            objects,
            rng: Rng::new(seed ^ 0x616C_6967),
        }
    }
}

impl Workload for AlignedRanges {
    fn name(&self) -> &'static str {
        "aligned"
    }

    fn describe(&self) -> String {
        format!(
            "{} block-aligned ranges at uniformly random offsets over {} objects of {}",
            fmt_bytes(self.spec.range_size),
            self.spec.objects,
            fmt_bytes(self.spec.object_size)
        )
    }

    fn objects(&self) -> &[ObjectRef] {
        &self.objects
    }

    fn next(&mut self, _client: usize) -> Option<Read> {
        let object = self.rng.below(self.spec.objects as u64) as usize;
        let slots = self.spec.object_size / self.spec.range_size;
        let off = self.rng.below(slots) * self.spec.range_size;
        Some(Read {
            object,
            range: Some(ByteRange::span(off, self.spec.range_size)),
            op: Op::Get,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_aligned_and_inside() {
        let spec = AlignedSpec {
            objects: 3,
            object_size: 1 << 20,
            range_size: 64 << 10,
        };
        let mut w = AlignedRanges::new(spec, 1);
        for _ in 0..1000 {
            let r = w.next(0).unwrap();
            let (s, e) = r.range.unwrap().resolve(1 << 20).unwrap();
            assert_eq!((s % (64 << 10), e - s), (0, 64 << 10));
            assert!(e <= 1 << 20 && r.object < 3);
        }
    }
}
