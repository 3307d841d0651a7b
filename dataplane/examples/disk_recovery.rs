//! How long the disk tier takes to rebuild its index at startup, per 100 GiB.
//!
//! Fills a tier of SIZE GiB of 1 MiB blocks in DIR (written through the tier's own writer),
//! closes it, opens it again and reports the time to rebuild the index (reads are `O_DIRECT`,
//! so the page cache does not help), scaled to 100 GiB.
//!
//! `cargo run --release -p rangecache-dataplane --example disk_recovery -- DIR [SIZE_GIB]`
//! (DIR must exist; the tier's file is removed at the end).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rangecache_dataplane::cache::disk::FILE_NAME;
use rangecache_dataplane::cache::{BlockKey, DiskConfig, DiskTier, ObjectId};

const BS: u64 = 1 << 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: disk_recovery DIR [SIZE_GIB]");
    let gib: u64 = args
        .next()
        .map_or(4, |s| s.parse().expect("SIZE_GIB is a number"));
    let config = DiskConfig::new(&dir, gib << 30, BS);
    let tier = DiskTier::open(&config).expect("open the tier");
    let slots = tier.stats().capacity / BS;
    let block = Bytes::from(vec![0x5au8; BS as usize]);
    let etag: Arc<str> = Arc::from("\"0123456789abcdef0123456789abcdef\"");
    let started = Instant::now();
    for i in 0..slots {
        let object = ObjectId::new(
            "origin",
            "bucket",
            &format!("warehouse/part-{:05}.parquet", i / 64),
        );
        let key = BlockKey::new(object, etag.clone(), i % 64);
        while !tier.admit(&key, &block) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    assert!(tier.flush(Duration::from_secs(600)));
    let wrote = started.elapsed();
    let blocks = tier.stats().blocks;
    drop(tier);

    let tier = DiskTier::open(&config).expect("reopen the tier");
    let s = tier.stats();
    assert_eq!(s.recovered_blocks, blocks);
    let per_100 = s.recovery_seconds * 100.0 / gib as f64;
    println!(
        "wrote {blocks} blocks of 1 MiB in {:.1}s ({:.0} MB/s); index rebuilt in {:.3}s \
         ({:.0} headers/s) = {per_100:.2}s per 100 GiB; {:?} I/O",
        wrote.as_secs_f64(),
        (blocks * BS) as f64 / wrote.as_secs_f64() / 1e6,
        s.recovery_seconds,
        blocks as f64 / s.recovery_seconds,
        s.mode
    );
    drop(tier);
    let _ = std::fs::remove_file(std::path::Path::new(&dir).join(FILE_NAME));
}
