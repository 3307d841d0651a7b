//! Filling a block: claim it, write it from the origin's pieces into its buffer, publish it
//! into a full store (each fill evicts one block), as a cold read does per block.
//!
//! Run: `cargo bench -p rangecache-benches --bench fill`
//!
//! Two pools: the cache's own, to which evicted blocks give their buffers back, so a fill
//! writes into memory that is already mapped (a cache that has been running); and a pool that
//! keeps nothing, so every block is written into fresh memory and unmapped when evicted (a
//! process's first pass over its memory, or the per-block `mmap`, page faults and `munmap`
//! of a heap allocation per block). The difference is what recycling saves per block.
//! Each block is written from 16 pieces of 64 KiB, the size the origin client reads.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput};
use rangecache_dataplane::cache::buf::BufPool;
use rangecache_dataplane::cache::store::{BlockKey, BlockStore, ObjectId};
use rangecache_dataplane::cache::{Claim, Inflight};

const BLOCK: usize = 1 << 20;
const PIECE: usize = 64 << 10;
/// Blocks the store holds: every fill past these evicts one.
const STORE_BLOCKS: u64 = 64;

fn key(i: u64) -> BlockKey {
    BlockKey::new(ObjectId::new("o", "b", "k"), "\"e\"".into(), i)
}

/// Fill block `i` from `piece`, 16 times over, and publish it.
fn fill(inflight: &Inflight, i: u64, piece: &[u8]) {
    let Claim::Fill(_, mut writers) = inflight.claim(&key(i), BLOCK, None) else {
        panic!("a new key is a fill");
    };
    let mut w = writers.pop().expect("one segment");
    for _ in 0..BLOCK / PIECE {
        w.push(piece);
    }
    black_box(w.complete());
}

fn fills(c: &mut Criterion) {
    let piece = vec![7u8; PIECE];
    let mut group = c.benchmark_group("fill_1MiB_block_evicting");
    group.throughput(Throughput::Bytes(BLOCK as u64));
    let cases: [(&str, PoolOf); 2] = [
        ("recycled_buffers", |store| Inflight::with_disk(store, None)),
        ("fresh_memory", |store| {
            Inflight::with_pool(store, None, BufPool::new(BLOCK, 0))
        }),
    ];
    for (name, inflight_of) in cases {
        group.bench_function(name, |b| {
            let capacity = STORE_BLOCKS * (BLOCK as u64 + 4096);
            let store = Arc::new(BlockStore::new(capacity, BLOCK as u64));
            let inflight = inflight_of(store.clone());
            let mut i = 0;
            while store.stats().evictions == 0 {
                fill(&inflight, i, &piece);
                i += 1;
            }
            b.iter(|| {
                i += 1;
                fill(&inflight, i, &piece);
            });
        });
    }
    group.finish();
}

/// The fill registry of a case, over its store.
type PoolOf = fn(Arc<BlockStore>) -> Inflight;

// What `criterion_group!`/`criterion_main!` expand to, minus the undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    fills(&mut c);
    c.final_summary();
}
