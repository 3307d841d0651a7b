//! The block store: lookup cost with two threads at once, hit ratio against plain LRU on a Zipf
//! trace with a scan, and insert cost when every insert evicts.
//!
//! Run: `cargo bench -p rangecache-benches --bench cache`
//!
//! The hit ratios are computed once, before the timings, printed to stderr and written to
//! `target/criterion/cache-hit-ratio.txt`. The trace: 20,000 distinct 1 MiB blocks (objects of
//! 64 blocks), 100,000 requests drawn from a Zipf distribution with s = 1.0 and a fixed seed, a
//! budget of 2,000 blocks (10% of the distinct blocks). Every miss inserts the block (a
//! read-through cache). Three shapes: Zipf alone; Zipf with one sequential pass over 4,000
//! other blocks (twice the budget) after half the requests; Zipf with those 4,000 scan blocks
//! interleaved 1:1 with the Zipf requests after half of them. Only Zipf requests count towards
//! the ratio; "after" is the ratio over the 10,000 Zipf requests that follow the scan's end,
//! where a flushed cache shows. Blocks are slices of one static buffer, so nothing is copied.
//! The store's shard hash is seeded per process, so its ratios move by about 0.1 point from
//! run to run; LRU's do not move.

use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use lru::LruCache;
use rangecache_dataplane::cache::store::{BlockKey, BlockStore, StoreOptions, ENTRY_OVERHEAD};

#[path = "common/trace.rs"]
mod trace;
use trace::{keys, payload, Req, Shape, TraceSpec, BLOCK};

// ---- hit ratio ------------------------------------------------------------------------------

const DISTINCT: usize = 20_000;
const ZIPF_REQUESTS: usize = 100_000;
const BUDGET_BLOCKS: u64 = 2_000;
const SCAN: usize = 2 * BUDGET_BLOCKS as usize;
const AFTER_WINDOW: usize = 10_000;
const SEED: u64 = 0x5eed_cafe;
const SPEC: TraceSpec = TraceSpec {
    distinct: DISTINCT,
    requests: ZIPF_REQUESTS,
    scan: SCAN,
    s: 1.0,
    seed: SEED,
};

fn budget() -> u64 {
    BUDGET_BLOCKS * (BLOCK as u64 + ENTRY_OVERHEAD)
}

/// A read-through cache under test: `read` returns whether it hit, inserting on a miss.
trait ReadThrough {
    fn read(&mut self, key: &BlockKey) -> bool;
}

impl ReadThrough for BlockStore {
    fn read(&mut self, key: &BlockKey) -> bool {
        if self.get(key).is_some() {
            return true;
        }
        self.insert(key.clone(), payload());
        false
    }
}

/// Plain LRU with the same byte budget and the same per-block weight.
struct ByteLru {
    lru: LruCache<BlockKey, Bytes>,
    used: u64,
    budget: u64,
}

impl ByteLru {
    fn new(budget: u64) -> Self {
        Self {
            lru: LruCache::unbounded(),
            used: 0,
            budget,
        }
    }

    fn insert(&mut self, key: BlockKey, block: Bytes) {
        self.used += block.len() as u64 + ENTRY_OVERHEAD;
        if let Some(old) = self.lru.put(key, block) {
            self.used -= old.len() as u64 + ENTRY_OVERHEAD;
        }
        while self.used > self.budget {
            let (_, evicted) = self.lru.pop_lru().expect("over budget means not empty");
            self.used -= evicted.len() as u64 + ENTRY_OVERHEAD;
        }
    }
}

impl ReadThrough for ByteLru {
    fn read(&mut self, key: &BlockKey) -> bool {
        if self.lru.get(key).is_some() {
            return true;
        }
        self.insert(key.clone(), payload());
        false
    }
}

struct Outcome {
    overall: f64,
    after_scan: f64,
}

fn replay(
    cache: &mut impl ReadThrough,
    keys: &[BlockKey],
    reqs: &[Req],
    scan_end: usize,
) -> Outcome {
    let (mut zipf, mut hits, mut after, mut after_hits) = (0, 0, 0, 0);
    for req in reqs {
        match *req {
            Req::Scan(id) => {
                cache.read(&keys[id as usize]);
            }
            Req::Zipf(id) => {
                let hit = cache.read(&keys[id as usize]);
                if zipf >= scan_end && zipf < scan_end + AFTER_WINDOW {
                    after += 1;
                    after_hits += hit as u64;
                }
                zipf += 1;
                hits += hit as u64;
            }
        }
    }
    Outcome {
        overall: hits as f64 / zipf as f64,
        after_scan: after_hits as f64 / after as f64,
    }
}

/// A policy under comparison: the store with a given hot share (`None`: as shipped), or LRU.
#[derive(Clone, Copy)]
enum Policy {
    Store(Option<f64>),
    Lru,
}

/// The store as shipped, the store with lower hot shares, plain LRU.
const POLICIES: [(&str, Policy); 5] = [
    ("store (default)", Policy::Store(None)),
    ("store hot=0.90", Policy::Store(Some(0.90))),
    ("store hot=0.80", Policy::Store(Some(0.80))),
    ("store hot=0.50", Policy::Store(Some(0.50))),
    ("lru", Policy::Lru),
];

impl Policy {
    /// An empty cache with the trace's budget. The store gets a fixed 8 shards (what this
    /// policy picks on 2 cores) so the figures do not depend on the machine.
    fn build(self) -> Box<dyn ReadThrough> {
        match self {
            Policy::Store(hot) => {
                let mut options = StoreOptions::new().shards(8);
                if let Some(hot) = hot {
                    options = options.hot_allocation(hot);
                }
                Box::new(BlockStore::with_options(budget(), BLOCK as u64, options))
            }
            Policy::Lru => Box::new(ByteLru::new(budget())),
        }
    }
}

impl ReadThrough for Box<dyn ReadThrough> {
    fn read(&mut self, key: &BlockKey) -> bool {
        (**self).read(key)
    }
}

/// Computes and reports every shape × policy; returns the report.
fn hit_ratios() -> String {
    let keys = keys(0..(DISTINCT + SCAN) as u64);
    let mut report = format!(
        "hit ratio on Zipf requests (s=1.0, {DISTINCT} blocks, {ZIPF_REQUESTS} requests, \
         budget {BUDGET_BLOCKS} blocks, scan {SCAN} blocks, seed {SEED:#x}; 8 shards)\n\
         {:<12} {:<16} {:>8} {:>12}\n",
        "shape", "policy", "overall", "after scan"
    );
    for (shape_name, shape) in [
        ("zipf only", Shape::NoScan),
        ("burst scan", Shape::Burst),
        ("interleaved", Shape::Interleaved),
    ] {
        let (reqs, scan_end) = trace::trace(SPEC, shape);
        for (name, policy) in POLICIES {
            let o = replay(&mut policy.build(), &keys, &reqs, scan_end);
            report += &format!(
                "{shape_name:<12} {name:<16} {:>7.2}% {:>11.2}%\n",
                100.0 * o.overall,
                100.0 * o.after_scan
            );
        }
    }
    report
}

fn hit_ratio_pass(c: &mut Criterion) {
    let report = hit_ratios();
    eprintln!("\n{report}");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../target").into())
        .join("criterion");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("cache-hit-ratio.txt"), &report));
    if let Err(e) = written {
        eprintln!(
            "could not write the hit-ratio report to {}: {e}",
            dir.display()
        );
    }

    let keys = keys(0..(DISTINCT + SCAN) as u64);
    let (reqs, scan_end) = trace::trace(SPEC, Shape::Burst);
    let mut group = c.benchmark_group("trace_pass_burst_scan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(reqs.len() as u64));
    for (name, policy) in [POLICIES[0], POLICIES[4]] {
        group.bench_function(name, |b| {
            b.iter(|| black_box(replay(&mut policy.build(), &keys, &reqs, scan_end).overall))
        });
    }
    group.finish();
}

// ---- lookups and inserts ----------------------------------------------------------------------

/// Runs `op(thread, i)` for `i in 0..iters` on two threads at once; returns the slower
/// thread's time, so time / iters is the cost of one lookup while another thread looks up too.
fn two_threads(iters: u64, op: impl Fn(usize, u64) + Sync) -> Duration {
    let start = Barrier::new(2);
    let run = |t| {
        start.wait();
        let began = Instant::now();
        (0..iters).for_each(|i| op(t, i));
        began.elapsed()
    };
    std::thread::scope(|s| {
        let other = s.spawn(|| run(1));
        let mine = run(0);
        mine.max(other.join().expect("lookup thread"))
    })
}

const PRESENT: usize = 1024;

/// Thread `t`'s `i`-th key: the two threads walk the present keys from opposite ends.
fn pick(t: usize, i: u64) -> usize {
    (i as usize).wrapping_mul(7).wrapping_add(t * PRESENT / 2) % PRESENT
}

fn lookups(c: &mut Criterion) {
    let keys = keys(0..2 * PRESENT as u64);
    let (present, absent) = keys.split_at(PRESENT);
    let store = BlockStore::new(
        4 * PRESENT as u64 * (BLOCK as u64 + ENTRY_OVERHEAD),
        BLOCK as u64,
    );
    present
        .iter()
        .for_each(|k| store.insert(k.clone(), payload()));
    let lru = Mutex::new(ByteLru::new(u64::MAX));
    present
        .iter()
        .for_each(|k| lru.lock().unwrap().insert(k.clone(), payload()));

    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    group.bench_function("hit/1_thread", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(store.get(&present[pick(0, i)]))
        })
    });
    group.bench_function("hit/2_threads", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |t, i| {
                black_box(store.get(&present[pick(t, i)]));
            })
        })
    });
    group.bench_function("hit/2_threads_same_key", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |_, _| {
                black_box(store.get(&present[0]));
            })
        })
    });
    group.bench_function("hit/2_threads_lru_mutex", |b| {
        b.iter_custom(|iters| {
            two_threads(iters, |t, i| {
                black_box(lru.lock().unwrap().lru.get(&present[pick(t, i)]).cloned());
            })
        })
    });
    group.bench_function("miss/1_thread", |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            black_box(store.get(&absent[pick(0, i)]))
        })
    });
    group.finish();
}

fn inserts(c: &mut Criterion) {
    // A full store: each insert of a new key evicts one block. The key ring is much larger than
    // the store and its ghosts, so keys come back cold.
    let ring = keys(0..65_536);
    let mut group = c.benchmark_group("insert_evicting");
    group.throughput(Throughput::Elements(1));
    group.bench_function("store", |b| {
        let store = BlockStore::new(budget(), BLOCK as u64);
        let mut i = 0;
        while store.stats().evictions == 0 {
            store.insert(ring[i % ring.len()].clone(), payload());
            i += 1;
        }
        b.iter(|| {
            i += 1;
            store.insert(ring[i % ring.len()].clone(), payload());
        });
    });
    group.bench_function("lru", |b| {
        let mut lru = ByteLru::new(budget());
        let mut i = 0;
        while lru.lru.len() < BUDGET_BLOCKS as usize {
            lru.insert(ring[i % ring.len()].clone(), payload());
            i += 1;
        }
        b.iter(|| {
            i += 1;
            lru.insert(ring[i % ring.len()].clone(), payload());
        });
    });
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, minus the undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    hit_ratio_pass(&mut c);
    lookups(&mut c);
    inserts(&mut c);
    c.final_summary();
}
