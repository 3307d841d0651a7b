//! Striped event counters: each thread bumps its own cache line, readers sum the stripes.
//!
//! Workers are thread-per-core and every lookup counts a hit or a miss; one shared atomic would
//! bounce its cache line between cores on every request. A thread picks a stripe once (round
//! robin) and keeps it, so with at least as many stripes as threads no two workers share one.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

/// One thread's counters; each sits alone on its cache line(s) inside [`CachePadded`].
#[derive(Default)]
pub(super) struct Stripe {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub insertions: AtomicU64,
    pub evictions: AtomicU64,
    pub replacements: AtomicU64,
    pub rejections: AtomicU64,
    pub removals: AtomicU64,
}

/// A set of stripes; the count is a power of two so picking one is a mask.
pub(super) struct Counters {
    stripes: Box<[CachePadded<Stripe>]>,
}

/// Hands each thread the next stripe number the first time it counts anything.
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Relaxed);
}

impl Counters {
    /// Enough stripes for every core (so workers do not share), at most 256.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        let n = cores.clamp(4, 256).next_power_of_two();
        Self {
            stripes: (0..n)
                .map(|_| CachePadded::new(Stripe::default()))
                .collect(),
        }
    }

    /// This thread's stripe.
    #[inline]
    pub fn local(&self) -> &Stripe {
        let i = STRIPE.with(|s| *s) & (self.stripes.len() - 1);
        &self.stripes[i]
    }

    /// Adds `n` to the counter `field` picks in this thread's stripe.
    #[inline]
    pub fn add(&self, field: impl Fn(&Stripe) -> &AtomicU64, n: u64) {
        if n != 0 {
            field(self.local()).fetch_add(n, Relaxed);
        }
    }

    /// The total of `field` over all stripes. Not a snapshot: concurrent increments may or may
    /// not be included, and two totals read one after the other may disagree by a few events.
    pub fn sum(&self, field: impl Fn(&Stripe) -> &AtomicU64) -> u64 {
        self.stripes.iter().map(|s| field(s).load(Relaxed)).sum()
    }
}
