//! The byte-range block cache: aligned blocks shared by all workers, object metadata with a
//! TTL, in-flight fills that coalesce concurrent misses and stream to every waiter, the budget
//! that bounds them, and the read pipeline ([`read`]) that turns a client's range into a
//! stream of bytes through all of these.

pub mod budget;
pub mod buf;
pub mod conditional;
pub mod disk;
pub mod fill;
pub mod flight;
pub mod meta;
pub mod prefetch;
pub mod range;
pub mod read;
pub mod registry;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

pub use budget::{Budget, BudgetStats, Permit};
pub use disk::{DiskConfig, DiskStats, DiskTier};
pub use fill::{BlockFill, Claim, Inflight, SegmentWriter, Source};
pub use meta::{Lookup, MetaCache, ObjectMeta};
pub use prefetch::{PrefetchConfig, PrefetchStats, Prefetcher};
pub use store::{BlockKey, BlockStore, ObjectId};

/// Cache sizing, fixed for the life of the process.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Byte budget for blocks; 0 turns caching off (GET and HEAD pass through).
    pub memory: u64,
    /// Block size, a power of two.
    pub block_size: u64,
    /// How long object metadata is trusted.
    pub metadata_ttl: Duration,
    /// Most objects whose metadata is kept.
    pub metadata_entries: usize,
    /// Bytes one response may hold claimed ahead of what its client has taken; blocks past
    /// it are claimed and fetched only as the client drains.
    pub readahead_window: u64,
    /// Process-wide budget for bytes of fills in flight (see [`Budget`]).
    pub inflight_memory: u64,
    /// Map the block memory (`memory`) at startup, on a background thread at idle priority
    /// (see [`Inflight::pretouch`]), so that the first fills write into mapped memory.
    pub pretouch: bool,
    /// Sequential and Parquet-aware prefetch.
    pub prefetch: PrefetchConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory: 0,
            block_size: 1 << 20,
            metadata_ttl: Duration::from_secs(60),
            metadata_entries: 100_000,
            readahead_window: 8 << 20,
            inflight_memory: 256 << 20,
            pretouch: false,
            prefetch: PrefetchConfig::default(),
        }
    }
}

/// The shared cache: blocks, metadata and fills in flight.
pub struct Cache {
    /// Block bytes.
    pub store: Arc<BlockStore>,
    /// Object metadata.
    pub meta: MetaCache,
    /// Fills in flight.
    pub inflight: Inflight,
    /// Bytes of fills in flight, bounded.
    pub budget: Arc<Budget>,
    /// Prefetch decisions and their books.
    pub prefetch: Prefetcher,
    /// The disk tier under the store, when `cache.disk.path` is set.
    pub disk: Option<Arc<DiskTier>>,
    /// Bytes of cold objects with early GETs out (see `read::early`).
    pub early: read::early::EarlyRanges,
    config: CacheConfig,
}

/// What a purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Blocks dropped, from RAM and from the disk tier.
    pub blocks: u64,
    /// Objects whose metadata was dropped.
    pub objects: u64,
}

/// A snapshot of the cache's counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    /// Byte budget.
    pub capacity: u64,
    /// Bytes held (weight in use).
    pub bytes: u64,
    /// Blocks held.
    pub blocks: u64,
    /// Objects with metadata held.
    pub objects: u64,
    /// Block lookups that hit.
    pub hits: u64,
    /// Block lookups that missed.
    pub misses: u64,
    /// Blocks evicted to make room.
    pub evictions: u64,
    /// Blocks inserted.
    pub insertions: u64,
    /// Fills in flight now.
    pub inflight: u64,
    /// The in-flight fill budget's counters.
    pub budget: BudgetStats,
    /// The disk tier's counters, when there is one.
    pub disk: Option<DiskStats>,
    /// What prefetch fetched, and what became of it.
    pub prefetch: PrefetchStats,
}

impl CacheStats {
    /// hits / (hits + misses), 0 when nothing was looked up.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

impl Cache {
    /// A cache sized by `config`, RAM only.
    pub fn new(config: CacheConfig) -> Self {
        Self::with_disk(config, None)
    }

    /// A cache sized by `config` over the disk tier `disk` (opened by the caller, laid out
    /// for `config.block_size`). Without RAM (`memory = 0`) the cache is off and the disk
    /// tier unused.
    pub fn with_disk(config: CacheConfig, disk: Option<Arc<DiskTier>>) -> Self {
        let store = Arc::new(BlockStore::new(config.memory, config.block_size));
        let disk = disk.filter(|_| config.memory > 0);
        let inflight = Inflight::with_disk(store.clone(), disk.clone());
        if config.pretouch && config.memory > 0 {
            inflight.pretouch();
        }
        Self {
            inflight,
            disk,
            store,
            meta: MetaCache::new(config.metadata_entries, config.metadata_ttl),
            budget: Budget::new(config.inflight_memory),
            prefetch: Prefetcher::new(
                config.prefetch,
                usize::try_from(config.memory / config.block_size.max(1)).unwrap_or(usize::MAX),
            ),
            early: Default::default(),
            config,
        }
    }

    /// False when `cache.memory = 0`.
    pub fn enabled(&self) -> bool {
        self.config.memory > 0
    }

    /// The configured sizing.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Drop what is held for objects of `origin`/`bucket`: all of them, those whose key starts
    /// with `prefix`, or (with `exact`) the one object whose key equals `prefix`.
    pub fn purge(&self, origin: &str, bucket: &str, prefix: &str, exact: bool) -> Purged {
        let matches = |id: &ObjectId| {
            id.origin() == origin
                && id.bucket() == bucket
                && if exact {
                    id.key() == prefix
                } else {
                    id.key().starts_with(prefix)
                }
        };
        let on_disk = self.disk.as_ref().map_or(0, |d| d.purge(matches));
        Purged {
            objects: self.meta.purge(matches),
            blocks: self.store.purge(matches) + on_disk,
        }
    }

    /// True when block `key` is in RAM, on disk or being filled: a planner need not fetch
    /// it. Counts nothing and marks nothing.
    pub fn holds(&self, key: &BlockKey) -> bool {
        self.store.peek(key).is_some()
            || self.inflight.contains(key)
            || self.disk.as_ref().is_some_and(|d| d.contains(key))
    }

    /// The cache's counters now.
    pub fn stats(&self) -> CacheStats {
        let s = self.store.stats();
        CacheStats {
            capacity: s.capacity,
            bytes: s.bytes,
            blocks: s.blocks,
            objects: self.meta.len() as u64,
            hits: s.hits,
            misses: s.misses,
            evictions: s.evictions,
            insertions: s.insertions,
            inflight: self.inflight.len() as u64,
            budget: self.budget.stats(),
            disk: self.disk.as_ref().map(|d| d.stats()),
            prefetch: self.prefetch.stats(|k| self.holds(k)),
        }
    }
}
