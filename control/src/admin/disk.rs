//! The disk tier on the admin endpoint: its part of `GET /cache/stats` and its
//! `rangecache_disk_*` series on `/metrics`.

use std::fmt::Write as _;

use rangecache_dataplane::cache::disk::{IoMode, TierState};
use rangecache_dataplane::cache::{DiskStats, DiskTier};
use serde_json::{json, Value};

/// The `"disk"` object of `/cache/stats` (`null` without a disk tier).
pub(super) fn stats_json(disk: Option<&DiskTier>) -> Value {
    let Some(disk) = disk else {
        return Value::Null;
    };
    let s = disk.stats();
    json!({
        "state": s.state.as_str(),
        "direct_io": s.mode == IoMode::Direct,
        "capacity_bytes": s.capacity,
        "bytes": s.bytes,
        "blocks": s.blocks,
        "hits": s.hits,
        "part_hits": s.part_hits,
        "read_bytes": s.read_bytes,
        "misses": s.misses,
        "writes": s.writes,
        "write_bytes": s.write_bytes,
        "write_drops": s.write_drops,
        "write_errors": s.write_errors,
        "queued_blocks": disk.queued(),
        "checksum_failures": s.checksum_failures,
        "read_errors": s.read_errors,
        "recovered_blocks": s.recovered_blocks,
        "recovered_torn_headers": s.recovered_torn,
        "recovery_seconds": s.recovery_seconds,
    })
}

/// The disk tier's series in Prometheus text; nothing without a disk tier.
pub(super) fn render_metrics(disk: Option<&DiskTier>, out: &mut String) {
    let Some(disk) = disk else { return };
    let s: DiskStats = disk.stats();
    crate::prom::singles(
        out,
        &[
        ("rangecache_disk_capacity_bytes", "gauge", "Bytes of blocks the disk tier may hold (cache.disk.size in whole slots).", s.capacity),
        ("rangecache_disk_bytes", "gauge", "Bytes of blocks the disk tier holds.", s.bytes),
        ("rangecache_disk_blocks", "gauge", "Blocks the disk tier holds.", s.blocks),
        ("rangecache_disk_hits_total", "counter", "Blocks, or parts of blocks, read from the disk tier and verified.", s.hits),
        ("rangecache_disk_part_hits_total", "counter", "Disk tier hits that read only the chunks of a block a response wanted.", s.part_hits),
        ("rangecache_disk_read_bytes_total", "counter", "Bytes read from the disk tier's file for hits (headers and chunks).", s.read_bytes),
        ("rangecache_disk_misses_total", "counter", "RAM misses the disk tier did not hold either.", s.misses),
        ("rangecache_disk_writes_total", "counter", "Blocks written to the disk tier.", s.writes),
        ("rangecache_disk_write_bytes_total", "counter", "Bytes of blocks written to the disk tier.", s.write_bytes),
        ("rangecache_disk_write_drops_total", "counter", "Blocks not written: write queue full, tier full or disabled (a block offered again and dropped again counts once until it is written).", s.write_drops),
        ("rangecache_disk_write_errors_total", "counter", "Disk tier writes that failed (a full file system pauses writes, other errors disable the tier).", s.write_errors),
        ("rangecache_disk_queued_blocks", "gauge", "Blocks waiting in the disk tier's write queue.", disk.queued() as u64),
        ("rangecache_disk_checksum_failures_total", "counter", "Blocks read from disk that failed their key or checksum check (torn or damaged): served from the origin.", s.checksum_failures),
        ("rangecache_disk_read_errors_total", "counter", "Disk tier reads that failed with an I/O error: served from the origin.", s.read_errors),
        ("rangecache_disk_recovered_blocks", "gauge", "Blocks found on disk when the index was rebuilt at startup.", s.recovered_blocks),
        ("rangecache_disk_recovered_torn_total", "counter", "Slot headers found damaged when the index was rebuilt at startup.", s.recovered_torn),
        ],
    );
    crate::prom::singles(
        out,
        &[(
            "rangecache_disk_recovery_seconds",
            "gauge",
            "Seconds startup took to open the disk tier and rebuild its index.",
            s.recovery_seconds,
        )],
    );
    crate::prom::head(
        out,
        "rangecache_disk_state",
        "The disk tier's state: 1 for the current one (active, full: writes paused, disabled).",
        "gauge",
    );
    for state in [TierState::Active, TierState::Full, TierState::Disabled] {
        let _ = writeln!(
            out,
            "rangecache_disk_state{{state=\"{}\"}} {}",
            state.as_str(),
            u8::from(s.state == state)
        );
    }
}
