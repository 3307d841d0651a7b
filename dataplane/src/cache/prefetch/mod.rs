//! Prefetch decisions: which bytes of an object to fetch before anyone asks, from what readers
//! did (sequential read-ahead) and from what the object is (Parquet layouts).
//!
//! This module decides and keeps the books; `cache::read` runs the fills. Prefetches are
//! ordinary block fills: charged to the in-flight budget (and never more than half of it, so
//! demand reads always find room), coalesced with reads, never served to anyone a read would
//! not be, and never changing what a client receives.

pub mod parquet;
pub mod sequential;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::cache::range::ByteRange;
use crate::cache::{BlockKey, ObjectId};
use parquet::Layout;
use sequential::SeqState;

/// Prefetch settings, fixed for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrefetchConfig {
    /// Master switch (`prefetch.enabled`).
    pub enabled: bool,
    /// Most bytes fetched ahead of one reader of one object (`prefetch.max_window`).
    pub max_window: u64,
    /// Decode Parquet footers and prefetch the next row group's chunks (`prefetch.parquet`).
    pub parquet: bool,
}

impl Default for PrefetchConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_window: 64 << 20,
            parquet: true,
        }
    }
}

/// Objects the sequential detector and the layout cache remember.
const TRACKED_OBJECTS: usize = 4096;

/// The prefetcher's shared state: per-object reader state, decoded layouts, and the ledger
/// of prefetched blocks not yet read. `Send + Sync`, one per cache.
pub struct Prefetcher {
    config: PrefetchConfig,
    readers: quick_cache::sync::Cache<ObjectId, SeqState>,
    /// `None`: the object is known not to be Parquet (or its footer is unusable).
    layouts: quick_cache::sync::Cache<(ObjectId, Arc<str>), Option<Arc<Layout>>>,
    /// Prefetched blocks nobody has read yet, with their length.
    ledger: quick_cache::sync::Cache<BlockKey, u64>,
    /// Row groups ahead Parquet prefetch goes for an object version, once its readers read
    /// what was prefetched (absent: [`parquet::DEPTH`]).
    depths: quick_cache::sync::Cache<(ObjectId, Arc<str>), usize>,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    fetched: AtomicU64,
    used: AtomicU64,
    unread_evicted: AtomicU64,
    cancelled: AtomicU64,
}

/// The prefetcher's counters, read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefetchStats {
    /// Bytes of blocks fetched by prefetch.
    pub fetched: u64,
    /// Of those, bytes a client later read.
    pub used: u64,
    /// Of those, bytes evicted (or purged) before anyone read them.
    pub unread_evicted: u64,
    /// Blocks a prefetch wanted but did not fetch: budget short, or the fill failed.
    pub cancelled: u64,
}

impl Prefetcher {
    /// A prefetcher with `config`, for a store of at most `max_blocks` blocks.
    pub fn new(config: PrefetchConfig, max_blocks: usize) -> Self {
        Self {
            config,
            readers: quick_cache::sync::Cache::new(TRACKED_OBJECTS),
            layouts: quick_cache::sync::Cache::new(TRACKED_OBJECTS),
            ledger: quick_cache::sync::Cache::new(max_blocks.max(16)),
            depths: quick_cache::sync::Cache::new(TRACKED_OBJECTS),
            counters: Counters::default(),
        }
    }

    /// The read-ahead last returned by [`Prefetcher::sequential`] for `object` was started
    /// only up to byte `at`: the next sequential read asks again from there.
    pub fn fell_short(&self, object: &ObjectId, at: u64) {
        if let Some(state) = self.readers.get(object) {
            self.readers
                .insert(object.clone(), sequential::fell_short(state, at));
        }
    }

    /// The settings.
    pub fn config(&self) -> &PrefetchConfig {
        &self.config
    }

    /// Record that a reader asked for `range` of `object` (`size` bytes, blocks of `bs`) and
    /// return the bytes a sequential reader will want next, if it is one.
    pub fn sequential(
        &self,
        object: &ObjectId,
        range: ByteRange,
        size: u64,
        bs: u64,
    ) -> Option<ByteRange> {
        let state = self.readers.get(object);
        let (state, ahead) = sequential::observe(state, range, size, bs, self.config.max_window);
        self.readers.insert(object.clone(), state);
        ahead
    }

    /// The layout known for `object` at `etag`: `Some(Some(_))` a Parquet layout,
    /// `Some(None)` known not to be one, `None` not looked at yet.
    pub fn layout(&self, object: &ObjectId, etag: &Arc<str>) -> Option<Option<Arc<Layout>>> {
        self.layouts.get(&(object.clone(), etag.clone()))
    }

    /// Remember what the footer of `object` at `etag` decoded to.
    pub fn set_layout(&self, object: &ObjectId, etag: &Arc<str>, layout: Option<Layout>) {
        self.layouts
            .insert((object.clone(), etag.clone()), layout.map(Arc::new));
    }

    /// A block of `len` bytes was fetched by prefetch.
    pub fn fetched(&self, key: BlockKey, len: u64) {
        self.counters.fetched.fetch_add(len, Relaxed);
        self.ledger.insert(key, len);
    }

    /// Blocks a prefetch wanted and did not fetch.
    pub fn cancelled(&self, blocks: u64) {
        self.counters.cancelled.fetch_add(blocks, Relaxed);
    }

    /// A reader took block `key` from the store or a fill: if a prefetch fetched it, that
    /// prefetch was used, and Parquet prefetch of the object goes one row group deeper (up
    /// to [`parquet::MAX_DEPTH`]): its readers follow what is fetched for them.
    pub fn read(&self, key: &BlockKey) {
        if let Some((_, len)) = self.ledger.remove(key) {
            self.counters.used.fetch_add(len, Relaxed);
            let version = (key.object.clone(), key.etag.clone());
            if self.layouts.get(&version).flatten().is_some() {
                let depth = self.depth(&key.object, &key.etag);
                self.depths
                    .insert(version, (depth + 1).min(parquet::MAX_DEPTH));
            }
        }
    }

    /// How many row groups ahead Parquet prefetch goes for `object` at `etag`: [`parquet::DEPTH`]
    /// at first, one more for each prefetched block its readers took.
    pub fn depth(&self, object: &ObjectId, etag: &Arc<str>) -> usize {
        self.depths
            .get(&(object.clone(), etag.clone()))
            .unwrap_or(parquet::DEPTH)
    }

    /// The counters now. Ledger entries whose block left the store unread (`in_store` says
    /// whether it is still there) are counted as evicted unread and forgotten.
    pub fn stats(&self, in_store: impl Fn(&BlockKey) -> bool) -> PrefetchStats {
        let gone: Vec<(BlockKey, u64)> = self.ledger.iter().filter(|(k, _)| !in_store(k)).collect();
        for (k, len) in gone {
            if self.ledger.remove(&k).is_some() {
                self.counters.unread_evicted.fetch_add(len, Relaxed);
            }
        }
        PrefetchStats {
            fetched: self.counters.fetched.load(Relaxed),
            used: self.counters.used.load(Relaxed),
            unread_evicted: self.counters.unread_evicted.load(Relaxed),
            cancelled: self.counters.cancelled.load(Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYARROW: &[u8] = include_bytes!("../../../tests/data/pyarrow_index.parquet");

    fn key(object: &ObjectId, i: u64) -> BlockKey {
        BlockKey::new(object.clone(), Arc::from("\"e\""), i)
    }

    #[test]
    fn parquet_prefetch_goes_deeper_as_readers_take_what_it_fetched() {
        let p = Prefetcher::new(PrefetchConfig::default(), 64);
        let (pq, other) = (
            ObjectId::new("o", "b", "f.parquet"),
            ObjectId::new("o", "b", "x"),
        );
        let etag: Arc<str> = Arc::from("\"e\"");
        let layout = Layout::from_tail(PYARROW, PYARROW.len() as u64);
        p.set_layout(&pq, &etag, layout);
        p.set_layout(&other, &etag, None);
        assert_eq!(p.depth(&pq, &etag), parquet::DEPTH);
        // A block read that no prefetch fetched: no deeper.
        p.read(&key(&pq, 0));
        assert_eq!(p.depth(&pq, &etag), parquet::DEPTH);
        // Each prefetched block taken: one row group deeper, up to the cap.
        for i in 1..=20 {
            p.fetched(key(&pq, i), 100);
            p.read(&key(&pq, i));
        }
        assert_eq!(p.depth(&pq, &etag), parquet::MAX_DEPTH);
        // Another version of the file, and a file that is no Parquet, start over.
        assert_eq!(p.depth(&pq, &Arc::from("\"f\"")), parquet::DEPTH);
        p.fetched(key(&other, 1), 100);
        p.read(&key(&other, 1));
        assert_eq!(p.depth(&other, &etag), parquet::DEPTH);
    }
}
