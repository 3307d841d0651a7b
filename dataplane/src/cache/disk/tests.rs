//! The disk tier against a real file: round trips on both io drivers, restart, damage,
//! foreign files, purge and replacement.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::format::{slot_size, PAGE};
use super::*;

const BS: u64 = 64 << 10;

/// A fresh directory under the target directory (a real disk file system, not tmpfs), removed
/// on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let base = std::env::var_os("CARGO_TARGET_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!(
            "disk-tier-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key(k: &str, i: u64) -> BlockKey {
    BlockKey::new(
        ObjectId::new("origin", "bucket", k),
        Arc::from("\"etag\""),
        i,
    )
}

fn block(seed: u8, len: usize) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

/// A tier of `slots` slots with one writer, so blocks written together land in slots in
/// the order given (tests that damage slot N rely on it).
fn open(dir: &TempDir, slots: u64) -> Arc<DiskTier> {
    let config = DiskConfig {
        writers: 1,
        ..DiskConfig::new(dir.path(), PAGE as u64 + slots * slot_size(BS), BS)
    };
    DiskTier::open(&config).unwrap()
}

fn flush(tier: &DiskTier) {
    assert!(
        tier.flush(Duration::from_secs(10)),
        "writes flushed in time"
    );
}

/// Write `blocks` and wait until they are on disk.
fn fill(tier: &DiskTier, blocks: &[(BlockKey, Bytes)]) {
    for (k, b) in blocks {
        // The queue holds 1,024 blocks of 64 KiB: none of these tests fills it.
        assert!(tier.admit(k, b));
    }
    flush(tier);
}

fn slot_offset(slot: u64) -> u64 {
    PAGE as u64 + slot * slot_size(BS)
}

fn file(dir: &TempDir) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.path().join(FILE_NAME))
        .unwrap()
}

#[monoio::test_all]
async fn blocks_round_trip_and_survive_a_restart() {
    let dir = TempDir::new("restart");
    let blocks: Vec<_> = (0..5)
        .map(|i| {
            (
                key("obj", i),
                block(i as u8, if i == 4 { 1000 } else { BS as usize }),
            )
        })
        .collect();
    let tier = open(&dir, 16);
    fill(&tier, &blocks);
    for (k, b) in &blocks {
        assert_eq!(tier.read(k).await.as_ref(), Some(b));
    }
    assert_eq!(tier.stats().blocks, 5);
    assert!(tier.holds_object(&ObjectId::new("origin", "bucket", "obj")));
    drop(tier);

    let tier = open(&dir, 16);
    let s = tier.stats();
    assert_eq!((s.recovered_blocks, s.blocks, s.recovered_torn), (5, 5, 0));
    for (k, b) in &blocks {
        assert_eq!(tier.read(k).await.as_ref(), Some(b), "{k:?} after restart");
    }
    assert_eq!(tier.stats().hits, 5);
    // New writes go on after the recovered ones, not over them.
    fill(&tier, &[(key("new", 0), block(9, 10))]);
    for (k, b) in &blocks {
        assert_eq!(tier.read(k).await.as_ref(), Some(b));
    }
}

#[monoio::test_all]
async fn a_damaged_block_is_a_counted_miss_never_bytes() {
    let dir = TempDir::new("damage");
    let tier = open(&dir, 8);
    let blocks: Vec<_> = (0..3)
        .map(|i| (key("d", i), block(i as u8, BS as usize)))
        .collect();
    fill(&tier, &blocks);
    // Flip one bit in the middle of slot 1's data, behind the tier's back.
    let f = file(&dir);
    let at = slot_offset(1) + PAGE as u64 + 1234;
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, at).unwrap();
    f.write_all_at(&[byte[0] ^ 0x10], at).unwrap();
    f.sync_all().unwrap();

    // Writers run side by side, so which block slot 1 holds is not fixed: exactly one fails.
    let mut served = 0;
    for (k, b) in &blocks {
        match tier.read(k).await {
            Some(got) => {
                assert_eq!(&got, b);
                served += 1;
            }
            None => assert!(!tier.contains(k), "a damaged block is forgotten"),
        }
    }
    let s = tier.stats();
    assert_eq!((served, s.checksum_failures, s.hits), (2, 1, 2));
}

#[monoio::test_all]
async fn a_torn_tail_and_a_torn_header_are_dropped_at_restart_or_read() {
    let dir = TempDir::new("torn");
    let tier = open(&dir, 8);
    let blocks: Vec<_> = (0..4)
        .map(|i| (key("t", i), block(i as u8, BS as usize)))
        .collect();
    fill(&tier, &blocks);
    drop(tier);
    let f = file(&dir);
    // The last slot's write stopped half-way (the file ends inside its data)...
    f.set_len(slot_offset(3) + PAGE as u64 + BS / 2).unwrap();
    // ...and slot 1's header got garbage in it.
    f.write_all_at(&[0xff; 16], slot_offset(1) + 100).unwrap();
    f.sync_all().unwrap();
    drop(f);

    let tier = open(&dir, 8);
    let s = tier.stats();
    assert_eq!((s.recovered_blocks, s.recovered_torn), (3, 1));
    assert!(!tier.contains(&blocks[1].0));
    assert_eq!(
        tier.read(&blocks[3].0).await,
        None,
        "the torn tail is not served"
    );
    assert_eq!(tier.stats().checksum_failures, 1);
    for i in [0, 2] {
        assert_eq!(tier.read(&blocks[i].0).await.as_ref(), Some(&blocks[i].1));
    }
}

#[test]
fn foreign_files_are_refused_or_ignored_and_a_missing_path_is_an_error() {
    let dir = TempDir::new("foreign");
    std::fs::write(dir.path().join("notes.txt"), b"someone else's").unwrap();
    let tier = open(&dir, 4);
    drop(tier);
    assert_eq!(
        std::fs::read(dir.path().join("notes.txt")).unwrap(),
        b"someone else's",
        "other files in the directory are left alone"
    );

    std::fs::write(dir.path().join(FILE_NAME), vec![b'x'; 3 * PAGE]).unwrap();
    let err = DiskTier::open(&DiskConfig::new(dir.path(), 1 << 20, BS)).unwrap_err();
    assert!(
        err.to_string().contains("not a rangecache disk cache file"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.path().join(FILE_NAME)).unwrap().len(),
        3 * PAGE
    );

    let missing = dir.path().join("nope");
    let err = DiskTier::open(&DiskConfig::new(&missing, 1 << 20, BS)).unwrap_err();
    assert!(err.to_string().contains("cache.disk.path"), "{err}");
    let not_dir = dir.path().join("notes.txt");
    let err = DiskTier::open(&DiskConfig::new(&not_dir, 1 << 20, BS)).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn a_second_process_cannot_share_the_file() {
    let dir = TempDir::new("lock");
    let _tier = open(&dir, 4);
    // flock locks are per open file description: a second open is refused like another
    // process would be.
    let err = DiskTier::open(&DiskConfig::new(dir.path(), 1 << 20, BS)).unwrap_err();
    assert!(err.to_string().contains("in use"), "{err}");
}

#[test]
fn another_block_size_starts_afresh() {
    let dir = TempDir::new("resize");
    let tier = open(&dir, 4);
    fill(&tier, &[(key("a", 0), block(1, 100))]);
    drop(tier);
    let tier = DiskTier::open(&DiskConfig::new(dir.path(), 8 << 20, 2 * BS)).unwrap();
    assert_eq!(tier.stats().blocks, 0);
}

#[monoio::test_all]
async fn purged_blocks_are_gone_and_stay_gone_after_a_restart() {
    let dir = TempDir::new("purge");
    let tier = open(&dir, 8);
    let blocks: Vec<_> = ["keep", "drop/a", "drop/b"]
        .iter()
        .map(|k| (key(k, 0), block(7, 500)))
        .collect();
    fill(&tier, &blocks);
    assert_eq!(tier.purge(|o| o.key().starts_with("drop/")), 2);
    assert_eq!(tier.read(&blocks[1].0).await, None);
    flush(&tier);
    drop(tier);
    let tier = open(&dir, 8);
    assert_eq!(tier.stats().blocks, 1);
    assert_eq!(tier.read(&blocks[0].0).await.as_ref(), Some(&blocks[0].1));
}

#[monoio::test_all]
async fn a_full_tier_replaces_blocks_and_never_serves_a_replaced_one() {
    let dir = TempDir::new("replace");
    let tier = open(&dir, 3);
    let blocks: Vec<_> = (0..6)
        .map(|i| (key("r", i), block(i as u8, 4096)))
        .collect();
    fill(&tier, &blocks[..3]);
    // Block 0 is read: it survives the next write, block 1 does not.
    assert!(tier.read(&blocks[0].0).await.is_some());
    fill(&tier, &blocks[3..4]);
    assert!(tier.contains(&blocks[0].0) && !tier.contains(&blocks[1].0));
    fill(&tier, &blocks[4..]);
    let s = tier.stats();
    assert_eq!((s.blocks, s.capacity), (3, 3 * BS));
    for (k, b) in &blocks {
        if let Some(got) = tier.read(k).await {
            assert_eq!(&got, b);
        }
    }
    drop(tier);
    let tier = open(&dir, 3);
    assert_eq!(tier.stats().blocks, 3, "no replaced block comes back");
    for (k, b) in &blocks {
        if let Some(got) = tier.read(k).await {
            assert_eq!(&got, b);
        }
    }
}

/// A blocking pool that counts the tasks it is handed.
#[derive(Clone)]
struct CountingPool {
    inner: monoio::blocking::DefaultThreadPool,
    tasks: Arc<std::sync::atomic::AtomicUsize>,
}

impl monoio::blocking::ThreadPool for CountingPool {
    fn schedule_task(&self, task: monoio::blocking::BlockingTask) {
        self.tasks.fetch_add(1, Relaxed);
        self.inner.schedule_task(task);
    }
}

#[test]
fn on_the_epoll_driver_reads_run_on_the_blocking_pool() {
    let dir = TempDir::new("pool");
    let tier = open(&dir, 16);
    let blocks: Vec<_> = (0..3)
        .map(|i| (key("obj", i), block(i as u8, BS as usize)))
        .collect();
    fill(&tier, &blocks);
    let pool = CountingPool {
        inner: monoio::blocking::DefaultThreadPool::new(2),
        tasks: Arc::default(),
    };
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .attach_thread_pool(Box::new(pool.clone()))
        .build()
        .unwrap();
    rt.block_on(async {
        read_on_blocking_pool();
        for (k, b) in &blocks {
            assert_eq!(tier.read(k).await.as_ref(), Some(b));
        }
        // Part of a block: the header and the chunk, two reads.
        let (at, part) = tier
            .read_range(&blocks[1].0, 20_000..20_100, BS as usize)
            .await
            .unwrap();
        assert_eq!(
            &part[20_000 - at..20_100 - at],
            &blocks[1].1[20_000..20_100]
        );
    });
    assert_eq!(
        pool.tasks.load(Relaxed),
        3 + 2,
        "every read went to the pool"
    );
    assert_eq!(tier.stats().hits, 4);
}
