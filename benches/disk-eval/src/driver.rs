//! The read phase every engine shares: one monoio thread (io_uring or legacy driver, as a
//! rangecache worker), `depth` tasks each reading random blocks back to back until the time is
//! up, every read timed and its bytes checked.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};

use crate::block::Blocks;
use crate::stats::histogram;

/// A read of one block, on the thread that asked.
pub type ReadFuture<'a> = Pin<Box<dyn Future<Output = Option<Bytes>> + 'a>>;

/// A store the read phase can read block `index` from.
pub trait Tier: Send + Sync {
    /// Block `index`, or `None` when the store does not have it.
    fn read(&self, index: u64) -> ReadFuture<'_>;

    /// `Some(n)`: reads return no bytes to check (a raw ceiling); count `n` bytes per read.
    fn unchecked_len(&self) -> Option<u64> {
        None
    }
}

/// monoio's io driver for the reading thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// io_uring (rangecache's default).
    IoUring,
    /// epoll (rangecache's fallback where io_uring is unavailable).
    Legacy,
}

/// What a read phase measured.
pub struct ReadResult {
    /// Per-read latency, nanoseconds.
    pub latency: Histogram<u64>,
    /// Payload bytes read and verified.
    pub bytes: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Reads with the wrong bytes.
    pub wrong: u64,
    /// From the first read to the last.
    pub elapsed: Duration,
}

/// Read random blocks of `0..count` from `tier` with `depth` reads in flight for `duration`,
/// on a fresh monoio runtime with `driver`, in a thread of its own.
pub fn read_phase(
    tier: Arc<dyn Tier>,
    blocks: &Blocks,
    count: u64,
    depth: usize,
    duration: Duration,
    driver: Driver,
) -> ReadResult {
    let blocks = blocks.clone();
    std::thread::spawn(move || match driver {
        Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .enable_timer()
            .build()
            .expect("io_uring runtime (is io_uring allowed here?)")
            .block_on(readers(tier, blocks, count, depth, duration)),
        Driver::Legacy => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("legacy runtime")
            .block_on(readers(tier, blocks, count, depth, duration)),
    })
    .join()
    .expect("read phase thread")
}

async fn readers(
    tier: Arc<dyn Tier>,
    blocks: Blocks,
    count: u64,
    depth: usize,
    duration: Duration,
) -> ReadResult {
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..depth)
        .map(|seed| {
            let tier = tier.clone();
            let blocks = blocks.clone();
            monoio::spawn(async move {
                let mut rng = rand::rngs::SmallRng::seed_from_u64(seed as u64 + 1);
                let mut h = histogram();
                let (mut bytes, mut misses, mut wrong) = (0u64, 0u64, 0u64);
                while Instant::now() < deadline {
                    let index = rng.gen_range(0..count);
                    let t0 = Instant::now();
                    let got = tier.read(index).await;
                    let ns = t0.elapsed().as_nanos() as u64;
                    match got {
                        None => misses += 1,
                        Some(_) if tier.unchecked_len().is_some() => {
                            let _ = h.record(ns.max(1_000));
                            bytes += tier.unchecked_len().unwrap_or(0);
                        }
                        Some(b) if blocks.check(index, &b) => {
                            let _ = h.record(ns.max(1_000));
                            bytes += b.len() as u64;
                        }
                        Some(_) => wrong += 1,
                    }
                }
                (h, bytes, misses, wrong)
            })
        })
        .collect();
    let mut out = ReadResult {
        latency: histogram(),
        bytes: 0,
        misses: 0,
        wrong: 0,
        elapsed: Duration::ZERO,
    };
    for t in tasks {
        let (h, bytes, misses, wrong) = t.await;
        out.latency.add(&h).expect("same histogram bounds");
        out.bytes += bytes;
        out.misses += misses;
        out.wrong += wrong;
    }
    out.elapsed = start.elapsed();
    out
}
