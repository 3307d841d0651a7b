//! rangecache's own disk tier (`rangecache_dataplane::cache::disk::DiskTier`) as a [`Tier`]:
//! opened as rangecache opens it, filled through `admit` (the writer thread), read on the
//! monoio thread with the driver under test.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use rangecache_dataplane::cache::disk::{DiskConfig, DiskStats, DiskTier};
use rangecache_dataplane::cache::{BlockKey, ObjectId};

use crate::driver::{ReadFuture, Tier};

/// The tier and the keys of its blocks (one object, block `i` is block `i` of it).
pub struct RangecacheTier {
    tier: Arc<DiskTier>,
    object: ObjectId,
    etag: Arc<str>,
}

impl RangecacheTier {
    /// A fresh tier of `size` bytes for blocks of `block` bytes in `dir`.
    pub fn open(dir: &Path, size: u64, block: u64) -> Result<RangecacheTier> {
        let tier = DiskTier::open(&DiskConfig::new(dir, size, block))
            .with_context(|| format!("open the disk tier in {}", dir.display()))?;
        Ok(RangecacheTier {
            tier,
            object: ObjectId::new("eval", "bucket", "object"),
            etag: Arc::from("\"etag\""),
        })
    }

    fn key(&self, index: u64) -> BlockKey {
        BlockKey::new(self.object.clone(), self.etag.clone(), index)
    }

    /// Admit `count` blocks (waiting while the write queue is full, so none is lost) and
    /// flush: the write throughput of the tier's writer thread.
    pub fn fill(&self, count: u64, block: impl Fn(u64) -> Bytes) {
        for i in 0..count {
            let (key, b) = (self.key(i), block(i));
            while !self.tier.admit(&key, &b) {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        assert!(
            self.tier.flush(Duration::from_secs(600)),
            "disk tier flush timed out"
        );
    }

    /// The tier's counters.
    pub fn stats(&self) -> DiskStats {
        self.tier.stats()
    }
}

impl Tier for RangecacheTier {
    fn read(&self, index: u64) -> ReadFuture<'_> {
        let key = self.key(index);
        Box::pin(async move { self.tier.read(&key).await })
    }
}
