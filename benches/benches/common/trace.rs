//! Block traces shared by the cache benches (`cache`, `disk_policy`): keys of 1 MiB blocks of
//! Parquet-like objects, and Zipf request streams with an optional scan.

#![allow(dead_code)] // each bench uses its own part

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rangecache_dataplane::cache::store::{BlockKey, ObjectId};

pub const BLOCK: usize = 1 << 20;
static ZEROS: [u8; BLOCK] = [0; BLOCK];

/// A 1 MiB block that costs nothing to make or clone.
pub fn payload() -> Bytes {
    Bytes::from_static(&ZEROS)
}

/// Block `id`: block `id % 64` of object `id / 64`, all at one ETag.
pub fn keys(ids: std::ops::Range<u64>) -> Vec<BlockKey> {
    let etag: std::sync::Arc<str> = "\"5d41402abc4b2a76b9719d911017c592\"".into();
    ids.map(|id| {
        let object = ObjectId::new(
            "primary",
            "analytics",
            &format!("warehouse/events/part-{:05}.parquet", id / 64),
        );
        BlockKey::new(object, etag.clone(), id % 64)
    })
    .collect()
}

/// One request of a trace: an index into the key table.
#[derive(Clone, Copy)]
pub enum Req {
    Zipf(u32),
    Scan(u32),
}

/// Where a trace's scan goes.
#[derive(Clone, Copy)]
pub enum Shape {
    /// No scan.
    NoScan,
    /// One sequential pass after half the Zipf requests.
    Burst,
    /// The scan's blocks interleaved 1:1 with Zipf requests after half of them.
    Interleaved,
}

/// A trace's sizes: Zipf(s) over `distinct` blocks (ids `0..distinct`), `requests` Zipf
/// requests, a scan over `scan` other blocks (ids `distinct..distinct + scan`).
#[derive(Clone, Copy)]
pub struct TraceSpec {
    pub distinct: usize,
    pub requests: usize,
    pub scan: usize,
    pub s: f64,
    pub seed: u64,
}

/// Zipf(s) over `n` ranks by inverting the CDF; ranks are shuffled onto block ids so the hot
/// blocks are spread over objects.
struct Zipf {
    cdf: Vec<f64>,
    ids: Vec<u32>,
}

impl Zipf {
    fn new(n: usize, s: f64, rng: &mut StdRng) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|rank| {
                total += 1.0 / (rank as f64).powf(s);
                total
            })
            .collect();
        cdf.iter_mut().for_each(|c| *c /= total);
        let mut ids: Vec<u32> = (0..n as u32).collect();
        for i in (1..n).rev() {
            ids.swap(i, rng.gen_range(0..=i));
        }
        Self { cdf, ids }
    }

    fn sample(&self, rng: &mut StdRng) -> u32 {
        let u: f64 = rng.gen();
        let rank = self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1);
        self.ids[rank]
    }
}

/// The requests of one trace shape and where its scan ends (in Zipf requests).
pub fn trace(spec: TraceSpec, shape: Shape) -> (Vec<Req>, usize) {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let zipf = Zipf::new(spec.distinct, spec.s, &mut rng);
    let scan_ids = (spec.distinct..spec.distinct + spec.scan).map(|id| Req::Scan(id as u32));
    let mut reqs = Vec::with_capacity(spec.requests + spec.scan);
    let half = spec.requests / 2;
    reqs.extend((0..half).map(|_| Req::Zipf(zipf.sample(&mut rng))));
    let scan_end = match shape {
        Shape::NoScan => half,
        Shape::Burst => {
            reqs.extend(scan_ids);
            half
        }
        Shape::Interleaved => {
            for scan in scan_ids {
                reqs.push(Req::Zipf(zipf.sample(&mut rng)));
                reqs.push(scan);
            }
            half + spec.scan
        }
    };
    let zipf_so_far = reqs.iter().filter(|r| matches!(r, Req::Zipf(_))).count();
    reqs.extend((zipf_so_far..spec.requests).map(|_| Req::Zipf(zipf.sample(&mut rng))));
    (reqs, scan_end)
}
