//! rangecache's block counters with its disk tier's, from one `GET /cache/stats`.

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use crate::bench::rangecache::Rangecache;

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DiskSample {
    /// RAM block lookups that hit.
    pub ram_hits: u64,
    /// RAM block lookups that missed (then the disk tier, then the origin).
    pub ram_misses: u64,
    /// Blocks, or parts of blocks, read from disk and verified.
    pub disk_hits: u64,
    /// Bytes read from the disk tier's file for those hits.
    pub disk_read_bytes: u64,
    /// Blocks written to disk.
    pub disk_writes: u64,
    /// Blocks not written (queue full, tier full or off).
    pub disk_write_drops: u64,
    /// Blocks on disk now.
    pub disk_blocks: u64,
    /// Blocks waiting to be written.
    pub disk_queued: u64,
    /// Blocks that failed their key or checksum check on read.
    pub checksum_failures: u64,
    /// Disk reads that failed with an I/O error.
    pub read_errors: u64,
    /// Blocks found on disk at startup.
    pub recovered_blocks: u64,
    /// Slot headers found damaged at startup.
    pub recovered_torn: u64,
    /// Seconds startup took to rebuild the index.
    pub recovery_seconds: f64,
}

impl DiskSample {
    /// Read them now. Fails when rangecache has no disk tier (`"disk": null`).
    pub fn take(rc: &Rangecache) -> Result<DiskSample> {
        let v = rc.stats_json()?;
        let d = &v["disk"];
        if d.is_null() {
            anyhow::bail!("/cache/stats has no disk tier (is cache.disk.path set?)");
        }
        Ok(Self::from_json(&v))
    }

    /// The RAM counters only (a rangecache without a disk tier).
    pub fn take_ram(rc: &Rangecache) -> Result<DiskSample> {
        Ok(Self::from_json(&rc.stats_json()?))
    }

    fn from_json(v: &Value) -> DiskSample {
        let n = |x: &Value| x.as_u64().unwrap_or(0);
        let d = &v["disk"];
        DiskSample {
            ram_hits: n(&v["hits"]),
            ram_misses: n(&v["misses"]),
            disk_hits: n(&d["hits"]),
            disk_read_bytes: n(&d["read_bytes"]),
            disk_writes: n(&d["writes"]),
            disk_write_drops: n(&d["write_drops"]),
            disk_blocks: n(&d["blocks"]),
            disk_queued: n(&d["queued_blocks"]),
            checksum_failures: n(&d["checksum_failures"]),
            read_errors: n(&d["read_errors"]),
            recovered_blocks: n(&d["recovered_blocks"]),
            recovered_torn: n(&d["recovered_torn_headers"]),
            recovery_seconds: d["recovery_seconds"].as_f64().unwrap_or(0.0),
        }
    }

    /// Counters `self - earlier` (gauges and startup figures: `self`'s).
    pub fn since(&self, e: &DiskSample) -> DiskSample {
        DiskSample {
            ram_hits: self.ram_hits.saturating_sub(e.ram_hits),
            ram_misses: self.ram_misses.saturating_sub(e.ram_misses),
            disk_hits: self.disk_hits.saturating_sub(e.disk_hits),
            disk_read_bytes: self.disk_read_bytes.saturating_sub(e.disk_read_bytes),
            disk_writes: self.disk_writes.saturating_sub(e.disk_writes),
            disk_write_drops: self.disk_write_drops.saturating_sub(e.disk_write_drops),
            checksum_failures: self.checksum_failures.saturating_sub(e.checksum_failures),
            read_errors: self.read_errors.saturating_sub(e.read_errors),
            ..*self
        }
    }

    /// Share of block lookups served without the origin: (RAM hits + disk hits) ÷ RAM
    /// lookups (every RAM miss goes to the disk tier, then the origin). `None`: no lookups.
    pub fn hit_ratio(&self) -> Option<f64> {
        let lookups = self.ram_hits + self.ram_misses;
        (lookups > 0).then(|| (self.ram_hits + self.disk_hits) as f64 / lookups as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_ratio_counts_disk_hits_of_ram_misses() {
        let v: Value = serde_json::from_str(
            r#"{"hits":90,"misses":10,"disk":{"hits":8,"recovery_seconds":0.5}}"#,
        )
        .unwrap();
        let s = DiskSample::from_json(&v);
        assert_eq!(s.hit_ratio(), Some(0.98));
        assert_eq!(s.recovery_seconds, 0.5);
        assert_eq!(DiskSample::default().hit_ratio(), None);
    }
}
