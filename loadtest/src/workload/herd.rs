//! A thundering herd: in each wave all clients read the same range of a never-read object
//! at the same moment. A cache that coalesces misses sends one origin request per wave (per
//! block run); one that does not sends one per client.

use super::{Op, Read, Workload};
use crate::object::{synthetic_key, ObjectRef};
use crate::range::ByteRange;
use crate::units::fmt_bytes;

/// Parameters of the herd workload.
#[derive(Debug, Clone, PartialEq)]
pub struct HerdSpec {
    /// Most waves (one fresh object each); a round stops earlier at its duration.
    pub waves: usize,
    /// Size of each object.
    pub object_size: u64,
    /// Size of the range all clients read.
    pub range_size: u64,
}

impl Default for HerdSpec {
    fn default() -> Self {
        HerdSpec {
            waves: 2000,
            object_size: 64 << 20,
            range_size: 4 << 20,
        }
    }
}

/// The herd workload.
#[derive(Debug)]
pub struct Herd {
    spec: HerdSpec,
    objects: Vec<ObjectRef>,
    wave_of: Vec<usize>,
}

impl Herd {
    /// One object per wave.
    pub fn new(spec: HerdSpec) -> Self {
        let objects = (0..spec.waves)
            .map(|i| ObjectRef {
                key: synthetic_key("herd", i, spec.object_size),
                size: spec.object_size,
            })
            .collect();
        Herd {
            spec,
            objects,
            wave_of: Vec::new(),
        }
    }
}

impl Workload for Herd {
    fn name(&self) -> &'static str {
        "herd"
    }

    fn describe(&self) -> String {
        format!(
            "all clients read the same {} range of a cold {} object at once, one object per wave",
            fmt_bytes(self.spec.range_size),
            fmt_bytes(self.spec.object_size)
        )
    }

    fn objects(&self) -> &[ObjectRef] {
        &self.objects
    }

    fn next(&mut self, client: usize) -> Option<Read> {
        if self.wave_of.len() <= client {
            self.wave_of.resize(client + 1, 0);
        }
        let w = self.wave_of[client];
        if w >= self.spec.waves {
            return None;
        }
        self.wave_of[client] += 1;
        // Ranges move through the object so successive waves also differ in offset.
        let len = self.spec.range_size.min(self.spec.object_size);
        let slots = (self.spec.object_size / len).max(1);
        let off = (w as u64 % slots) * len;
        Some(Read {
            object: w,
            range: Some(ByteRange::span(off, len)),
            op: Op::Get,
        })
    }

    fn lockstep(&self) -> bool {
        true
    }

    fn has_warm(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_gets_the_same_read_per_wave() {
        let mut h = Herd::new(HerdSpec {
            waves: 3,
            ..HerdSpec::default()
        });
        for _ in 0..3 {
            let a = h.next(0);
            assert_eq!(h.next(1), a);
            assert_eq!(h.next(2), a);
        }
        assert_eq!(h.next(0), None);
    }
}
