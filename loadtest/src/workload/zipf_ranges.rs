//! Fixed-size ranges at random offsets over N objects whose popularity follows Zipf's law
//! (s = 0: uniform). With a warm cache this is the hit-path benchmark.

use super::{Op, Read, Workload};
use crate::object::{synthetic_key, ObjectRef};
use crate::range::ByteRange;
use crate::rng::Rng;
use crate::units::fmt_bytes;
use crate::zipf::Zipf;

/// Parameters of the zipf workload.
#[derive(Debug, Clone, PartialEq)]
pub struct ZipfSpec {
    /// Number of objects.
    pub objects: usize,
    /// Size of each object.
    pub object_size: u64,
    /// Size of every range.
    pub range_size: u64,
    /// Zipf exponent (0 = uniform).
    pub s: f64,
}

impl Default for ZipfSpec {
    fn default() -> Self {
        ZipfSpec {
            objects: 32,
            object_size: 16 << 20,
            range_size: 64 << 10,
            s: 1.1,
        }
    }
}

/// The zipf workload.
#[derive(Debug)]
pub struct ZipfRanges {
    spec: ZipfSpec,
    objects: Vec<ObjectRef>,
    zipf: Zipf,
    rng: Rng,
}

impl ZipfRanges {
    /// Objects and draws fixed by `seed`.
    pub fn new(spec: ZipfSpec, seed: u64) -> Self {
        assert!(spec.objects > 0 && spec.object_size > 0 && spec.range_size > 0);
        let objects = (0..spec.objects)
            .map(|i| ObjectRef {
                key: synthetic_key("zipf", i, spec.object_size),
                size: spec.object_size,
            })
            .collect();
        ZipfRanges {
            zipf: Zipf::new(spec.objects, spec.s),
            spec,
            objects,
            rng: Rng::new(seed ^ 0x7A69_7066),
        }
    }
}

/// A range of `len` bytes at a uniformly random offset inside an object of `size` bytes (the
/// whole object when it is smaller).
pub fn random_range(rng: &mut Rng, size: u64, len: u64) -> ByteRange {
    let len = len.min(size).max(1);
    let off = rng.below(size - len + 1);
    ByteRange::span(off, len)
}

impl Workload for ZipfRanges {
    fn name(&self) -> &'static str {
        "zipf"
    }

    fn describe(&self) -> String {
        format!(
            "{} ranges at random offsets over {} objects of {} (Zipf s={})",
            fmt_bytes(self.spec.range_size),
            self.spec.objects,
            fmt_bytes(self.spec.object_size),
            self.spec.s
        )
    }

    fn objects(&self) -> &[ObjectRef] {
        &self.objects
    }

    fn next(&mut self, _client: usize) -> Option<Read> {
        let object = self.zipf.sample(&mut self.rng);
        let range = random_range(&mut self.rng, self.spec.object_size, self.spec.range_size);
        Some(Read {
            object,
            range: Some(range),
            op: Op::Get,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_fixed_size_and_inside() {
        let mut rng = Rng::new(1);
        for _ in 0..10_000 {
            let r = random_range(&mut rng, 1000, 64);
            let (s, e) = r.resolve(1000).unwrap();
            assert_eq!(e - s, 64);
            assert!(e <= 1000);
        }
        assert_eq!(random_range(&mut rng, 10, 64).resolve(10), Some((0, 10)));
    }

    #[test]
    fn popular_objects_dominate() {
        let mut w = ZipfRanges::new(ZipfSpec::default(), 3);
        let mut first = 0;
        for _ in 0..10_000 {
            if w.next(0).unwrap().object == 0 {
                first += 1;
            }
        }
        // s=1.1 over 32 objects: p(0) ≈ 0.27.
        assert!((2300..3100).contains(&first), "{first}");
    }
}
