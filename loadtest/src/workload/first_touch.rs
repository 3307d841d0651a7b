//! Every read is a first touch: each read goes to an object no earlier read of the round
//! touched, at a uniformly random (unaligned) offset. Through a cache this measures the cold
//! path alone: metadata, fill and the first byte, with nothing shared between reads.

use super::zipf_ranges::random_range;
use super::{Op, Read, Workload};
use crate::object::{synthetic_key, ObjectRef};
use crate::rng::Rng;
use crate::units::fmt_bytes;

/// Parameters of the first-touch workload.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstTouchSpec {
    /// Most reads per round (one fresh object each); a round stops earlier at its duration.
    pub reads: usize,
    /// Size of each object.
    pub object_size: u64,
    /// Size of every range.
    pub range_size: u64,
}

impl Default for FirstTouchSpec {
    fn default() -> Self {
        FirstTouchSpec {
            reads: 20_000,
            object_size: 64 << 20,
            range_size: 64 << 10,
        }
    }
}

/// The first-touch workload.
#[derive(Debug)]
pub struct FirstTouch {
    spec: FirstTouchSpec,
    objects: Vec<ObjectRef>,
    next: usize,
    rng: Rng,
}

impl FirstTouch {
    /// Offsets fixed by `seed`.
    pub fn new(spec: FirstTouchSpec, seed: u64) -> Self {
        assert!(spec.reads > 0 && spec.object_size > 0 && spec.range_size > 0);
        let objects = (0..spec.reads)
            .map(|i| ObjectRef {
                key: synthetic_key("ft", i, spec.object_size),
                size: spec.object_size,
            })
            .collect();
        FirstTouch {
            spec,
            objects,
            next: 0,
            rng: Rng::new(seed ^ 0x6674_6368),
        }
    }
}

impl Workload for FirstTouch {
    fn name(&self) -> &'static str {
        "first-touch"
    }

    fn describe(&self) -> String {
        format!(
            "every read a first touch: {} at a random offset of a never-read {} object (at most {} per round)",
            fmt_bytes(self.spec.range_size),
            fmt_bytes(self.spec.object_size),
            self.spec.reads
        )
    }

    fn objects(&self) -> &[ObjectRef] {
        &self.objects
    }

    fn next(&mut self, _client: usize) -> Option<Read> {
        let object = self.next;
        if object >= self.objects.len() {
            return None;
        }
        self.next += 1;
        let range = random_range(&mut self.rng, self.spec.object_size, self.spec.range_size);
        Some(Read {
            object,
            range: Some(range),
            op: Op::Get,
        })
    }

    fn has_warm(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_read_is_a_new_object_at_a_spread_offset() {
        let spec = FirstTouchSpec {
            reads: 500,
            object_size: 64 << 20,
            range_size: 64 << 10,
        };
        let mut w = FirstTouch::new(spec.clone(), 9);
        let mut seen = std::collections::HashSet::new();
        let mut unaligned = 0;
        for c in 0..spec.reads {
            let r = w.next(c % 8).unwrap();
            assert!(seen.insert(r.object), "object {} read twice", r.object);
            let (s, e) = r.range.unwrap().resolve(spec.object_size).unwrap();
            assert_eq!(e - s, spec.range_size);
            if s % (1 << 20) != 0 {
                unaligned += 1;
            }
        }
        assert!(unaligned > 490, "{unaligned}");
        assert_eq!(w.next(0), None);
        assert!(!w.has_warm());
        // The same seed replays the same offsets, so every target of a round reads alike.
        let mut a = FirstTouch::new(spec.clone(), 9);
        let mut b = FirstTouch::new(spec, 9);
        assert_eq!(a.next(0), b.next(3));
    }
}
