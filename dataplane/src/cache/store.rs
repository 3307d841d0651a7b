//! The block store: immutable blocks shared by every worker, bounded by bytes, scan-resistant.
//!
//! The store is a sharded map from [`BlockKey`] to `Bytes`. Each operation locks one shard for
//! one hash-table step; evicted blocks leave the lock inside the call's result and are freed
//! after it is released, so no lock is held while memory goes back to the allocator (a 1 MiB
//! free can be a `munmap`). The API is synchronous and never blocks on I/O; callers hold
//! nothing across an await.
//!
//! Eviction is quick_cache's CLOCK-Pro-like policy: new blocks enter a small cold queue, a
//! block read again while cold is promoted to the hot queue, and evicted cold keys are
//! remembered as ghosts so one that comes back soon is admitted hot. A one-pass scan therefore
//! cycles through the cold queue and leaves the hot blocks alone. `benches/benches/cache.rs`
//! measures it against plain LRU with the same byte budget on a Zipf trace (s = 1.0, budget
//! 10% of the blocks): 74% of requests hit against LRU's 69%, and 76% against 66% in the
//! requests right after a scan of twice the budget. The policy is private to this module:
//! callers see only get / insert / purge and the counters.

mod counters;
mod key;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use counters::{Counters, Stripe};
pub use key::{BlockKey, ObjectId};

/// Bytes charged per block on top of its length: an estimate of what holding it costs besides
/// its bytes. quick_cache's slab entry, table slot and the ghost a block leaves when evicted
/// measured about 150 bytes per block (`memory_used()` over 10,000 blocks); the `Bytes` shared
/// header and allocator headers add about 40. It keeps the budget honest when blocks are small
/// (short last blocks of tiny objects); against 1 MiB blocks it is noise.
pub const ENTRY_OVERHEAD: u64 = 192;

/// Tuning of the block store beyond its size. The defaults suit a block cache; tests and
/// benchmarks override them to be independent of the machine.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Number of shards (rounded up to a power of two and lowered so each shard holds at least
    /// 32 blocks); `None` picks 4 per core.
    pub shards: Option<usize>,
    /// Share of each shard's budget for blocks read more than once, in `[0, 1]`. The rest is
    /// the cold queue where new blocks prove themselves; a scan only ever churns that part.
    pub hot_allocation: f64,
    /// How many evicted keys are remembered as ghosts, as a share of the estimated number of
    /// blocks, in `[0, 1]`. A ghost read again is admitted straight into the hot queue.
    pub ghost_allocation: f64,
}

impl StoreOptions {
    /// The defaults: 4 shards per core, 97% hot, ghosts for half as many blocks as fit
    /// (quick_cache's own defaults; lower hot shares measured lower hit ratios in
    /// `benches/benches/cache.rs`).
    pub const fn new() -> Self {
        Self {
            shards: None,
            hot_allocation: 0.97,
            ghost_allocation: 0.5,
        }
    }

    /// Sets [`StoreOptions::shards`].
    pub const fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// Sets [`StoreOptions::hot_allocation`]; out-of-range values are clamped.
    pub const fn hot_allocation(mut self, share: f64) -> Self {
        self.hot_allocation = share;
        self
    }

    /// Sets [`StoreOptions::ghost_allocation`]; out-of-range values are clamped.
    pub const fn ghost_allocation(mut self, share: f64) -> Self {
        self.ghost_allocation = share;
        self
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The counters of a [`BlockStore`], read at one moment. Under concurrent use the fields are
/// read one after the other, so they may disagree by the few operations in flight.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStats {
    /// The byte budget the store was built with (0: disabled).
    pub capacity: u64,
    /// Weight in use: block bytes plus [`ENTRY_OVERHEAD`] per block; never above `capacity`.
    pub bytes: u64,
    /// Blocks held.
    pub blocks: u64,
    /// Lookups that found their block.
    pub hits: u64,
    /// Lookups that did not (every lookup on a disabled store).
    pub misses: u64,
    /// Blocks admitted by `insert`.
    pub insertions: u64,
    /// Blocks dropped to make room for others.
    pub evictions: u64,
    /// Blocks dropped because a block with the same key was inserted over them.
    pub replacements: u64,
    /// Blocks `insert` did not keep: larger than a shard's share of the budget.
    pub rejections: u64,
    /// Blocks dropped by `remove` or `purge`.
    pub removals: u64,
}

impl StoreStats {
    /// Block bytes held, without the per-block overhead estimate.
    pub fn block_bytes(&self) -> u64 {
        self.bytes.saturating_sub(self.blocks * ENTRY_OVERHEAD)
    }
}

/// The shared block cache. `Send + Sync`: build one, put it behind an `Arc`, use it from every
/// worker. Every method takes `&self`, returns without waiting on I/O and locks at most one
/// shard at a time, briefly.
pub struct BlockStore {
    /// `None` when the budget is 0: every lookup misses and inserts are dropped.
    cache: Option<Blocks>,
    capacity: u64,
    block_size: u64,
    counters: Counters,
}

type Blocks = Cache<BlockKey, Bytes, BlockWeight, DefaultHashBuilder, CollectEvicted>;

impl BlockStore {
    /// A store holding at most `capacity_bytes` of weight ([`StoreStats::bytes`]); 0 disables
    /// it. `block_size` is the size of the largest block that will be inserted: it sizes the
    /// estimated block count, hence the number of shards, so that every shard has room for at
    /// least 32 blocks. Blocks larger than about `hot_allocation` of a shard's budget are
    /// not kept.
    pub fn new(capacity_bytes: u64, block_size: u64) -> Self {
        Self::with_options(capacity_bytes, block_size, StoreOptions::new())
    }

    /// [`BlockStore::new`] with explicit tuning.
    pub fn with_options(capacity_bytes: u64, block_size: u64, options: StoreOptions) -> Self {
        let cache = (capacity_bytes > 0).then(|| {
            let per_block = block_size.max(1).saturating_add(ENTRY_OVERHEAD);
            let estimated_blocks = (capacity_bytes / per_block).max(1);
            let shards = options
                .shards
                .unwrap_or_else(|| 4 * std::thread::available_parallelism().map_or(4, |n| n.get()));
            let quick = OptionsBuilder::new()
                .shards(shards.max(1))
                .estimated_items_capacity(usize::try_from(estimated_blocks).unwrap_or(usize::MAX))
                .weight_capacity(capacity_bytes)
                .hot_allocation(options.hot_allocation.clamp(0.0, 1.0))
                .ghost_allocation(options.ghost_allocation.clamp(0.0, 1.0))
                .build()
                .expect("every required option is set");
            let cache = Cache::with_options(
                quick,
                BlockWeight,
                DefaultHashBuilder::default(),
                CollectEvicted,
            );
            // quick_cache gives each shard ceil(capacity / shards); round the total down to a
            // multiple of the shard count so the shards' budgets add up to at most the total.
            let n = cache.num_shards() as u64;
            let divisible = capacity_bytes / n * n;
            if divisible != capacity_bytes {
                cache.set_capacity(divisible);
            }
            cache
        });
        Self {
            cache,
            capacity: capacity_bytes,
            block_size,
            counters: Counters::new(),
        }
    }

    /// The size of the largest block it takes (`cache.block_size`).
    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// False when built with a budget of 0.
    pub fn is_enabled(&self) -> bool {
        self.cache.is_some()
    }

    /// The block stored under `key`, if any; marks it recently used and counts a hit or a miss.
    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        let found = self.cache.as_ref().and_then(|c| c.get(key));
        let stripe = self.counters.local();
        match found {
            Some(_) => stripe.hits.fetch_add(1, Relaxed),
            None => stripe.misses.fetch_add(1, Relaxed),
        };
        found
    }

    /// The block stored under `key`, if any, without marking it used or counting anything:
    /// for planners and checks that must not distort the policy or the hit ratio.
    pub fn peek(&self, key: &BlockKey) -> Option<Bytes> {
        self.cache.as_ref()?.peek(key)
    }

    /// Stores `block` under `key`, replacing any block stored there, and evicts blocks as
    /// needed to stay within budget. A no-op on a disabled store.
    ///
    /// The caller guarantees that `block` holds exactly the bytes of block `key.index` of
    /// version `key.etag` (a full block, or the short last one) and that it owns its memory
    /// rather than slicing a larger buffer: the budget counts `block.len()`, and a slice would
    /// pin the whole buffer behind it. A block over a shard's hot budget is not kept
    /// ([`StoreStats::rejections`]), and the block it would have replaced is dropped too.
    pub fn insert(&self, key: BlockKey, block: Bytes) {
        self.insert_evicting(key, block, |_, _| {});
    }

    /// [`BlockStore::insert`], handing each block it evicted to `evicted` (after the shard
    /// lock is released): for a tier below that keeps what RAM lets go, and for simulations of
    /// such policies.
    pub fn insert_evicting(
        &self,
        key: BlockKey,
        block: Bytes,
        mut evicted: impl FnMut(BlockKey, Bytes),
    ) {
        let Some(cache) = &self.cache else { return };
        // Every hit clones the block under a shard's read lock. A `Bytes` made from a `Vec`
        // allocates its shared header on its first clone: take that clone here, unlocked.
        drop(block.clone());
        let ours = (key.clone(), block.as_ptr(), block.len());
        let mut out = cache.insert_with_lifecycle(key, block);
        // The shard lock is released; the evicted blocks are freed at the end of this scope.
        let (mut evictions, mut replacements, mut rejections) = (0, 0, 0);
        for (k, v) in out.drain() {
            if k != ours.0 {
                evictions += 1;
                evicted(k, v);
            } else if (v.as_ptr(), v.len()) == (ours.1, ours.2) {
                // quick_cache hands back a block it did not keep as if it had evicted it.
                rejections += 1;
            } else {
                replacements += 1;
            }
        }
        let stripe = self.counters.local();
        for (counter, n) in [
            (&stripe.insertions, 1u64.saturating_sub(rejections)),
            (&stripe.evictions, evictions),
            (&stripe.replacements, replacements),
            (&stripe.rejections, rejections),
        ] {
            if n != 0 {
                counter.fetch_add(n, Relaxed);
            }
        }
    }

    /// Drops the block stored under `key`; true if there was one. For a caller that knows
    /// exactly which blocks went stale (say, blocks `0..n` of an ETag that got a 412).
    pub fn remove(&self, key: &BlockKey) -> bool {
        let Some(cache) = &self.cache else {
            return false;
        };
        // The removed block is dropped after `remove` has released the shard lock.
        let removed = cache.remove(key).is_some();
        if removed {
            self.counters.add(|s| &s.removals, 1);
        }
        removed
    }

    /// Drops every block whose object matches `pred` (any ETag, any index) and returns how
    /// many were dropped: admin purge by bucket, key or prefix, and invalidation after a write.
    ///
    /// Every matching block stored when the purge starts is gone when it returns. The walk
    /// locks one shard per block visited, so lookups proceed meanwhile; a matching block
    /// inserted during the walk may survive it. Cost is linear in the blocks held.
    pub fn purge(&self, pred: impl Fn(&ObjectId) -> bool) -> u64 {
        let Some(cache) = &self.cache else { return 0 };
        let mut removed = 0;
        for (key, _block) in cache.iter() {
            if pred(&key.object) && cache.remove(&key).is_some() {
                removed += 1;
            }
        }
        self.counters.add(|s| &s.removals, removed);
        removed
    }

    /// The counters now. Reading them locks each shard briefly in turn.
    pub fn stats(&self) -> StoreStats {
        let sum = |field: fn(&Stripe) -> &AtomicU64| self.counters.sum(field);
        StoreStats {
            capacity: self.capacity,
            bytes: self.cache.as_ref().map_or(0, |c| c.weight()),
            blocks: self.cache.as_ref().map_or(0, |c| c.len() as u64),
            hits: sum(|s| &s.hits),
            misses: sum(|s| &s.misses),
            insertions: sum(|s| &s.insertions),
            evictions: sum(|s| &s.evictions),
            replacements: sum(|s| &s.replacements),
            rejections: sum(|s| &s.rejections),
            removals: sum(|s| &s.removals),
        }
    }
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStore")
            .field("capacity", &self.capacity)
            .field("shards", &self.cache.as_ref().map_or(0, |c| c.num_shards()))
            .finish_non_exhaustive()
    }
}

/// A block weighs its length plus the fixed overhead, so even an empty block weighs something
/// (quick_cache never evicts weight-0 entries).
#[derive(Clone)]
struct BlockWeight;

impl Weighter<BlockKey, Bytes> for BlockWeight {
    #[inline]
    fn weight(&self, _key: &BlockKey, block: &Bytes) -> u64 {
        block.len() as u64 + ENTRY_OVERHEAD
    }
}

/// Collects what an insert pushes out (while the shard lock is held) so the caller can count
/// it and free it after the lock is released.
#[derive(Clone)]
struct CollectEvicted;

/// The blocks one insert pushed out. An insert of a block about the size of the others evicts
/// one or two, so the first two stay inline and a third allocates.
#[derive(Default)]
struct Evicted {
    inline: [Option<(BlockKey, Bytes)>; 2],
    spill: Vec<(BlockKey, Bytes)>,
}

impl Evicted {
    fn drain(&mut self) -> impl Iterator<Item = (BlockKey, Bytes)> + '_ {
        self.inline
            .iter_mut()
            .filter_map(Option::take)
            .chain(self.spill.drain(..))
    }
}

impl Lifecycle<BlockKey, Bytes> for CollectEvicted {
    type RequestState = Evicted;

    #[inline]
    fn begin_request(&self) -> Evicted {
        Evicted::default()
    }

    #[inline]
    fn on_evict(&self, state: &mut Evicted, key: BlockKey, block: Bytes) {
        match state.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some((key, block)),
            None => state.spill.push((key, block)),
        }
    }
}
