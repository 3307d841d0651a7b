//! The disk tier under the read pipeline, on both io drivers, against the in-process fake
//! origin: a restart serves from disk after one HEAD, a damaged block is fetched again from
//! the origin, a part of a block reads only its chunks and promotes the block on reuse, and a
//! working set larger than RAM is read from disk, not from the origin.

mod support;

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use rangecache_dataplane::cache::disk::FILE_NAME;
use rangecache_dataplane::cache::range::RangeSpec;
use rangecache_dataplane::cache::read::ReadEnv;
use rangecache_dataplane::cache::{Cache, DiskConfig, DiskTier};
use rangecache_dataplane::Metrics;
use support::fake_origin::FakeOrigin;
use support::pipeline::{self, from_to, read_all, request};

const BS: u64 = 64 * 1024;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "disk-tier-it-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cache(dir: &Dir, memory: u64, disk: u64) -> Arc<Cache> {
    cache_of(dir, BS, memory, disk)
}

fn cache_of(dir: &Dir, bs: u64, memory: u64, disk: u64) -> Arc<Cache> {
    let tier = DiskTier::open(&DiskConfig {
        ram_blocks: (memory / bs) as usize,
        ..DiskConfig::new(&dir.0, disk, bs)
    })
    .unwrap();
    let config = pipeline::config(bs, memory, 4 * bs, 64 << 20);
    Arc::new(Cache::with_disk(config, Some(tier)))
}

/// Flip the byte at `offset` of the data of every one of the file's first `slots` slots
/// (blocks of `bs`): whichever slot holds a block, that byte of it is damaged.
fn damage(dir: &Dir, bs: u64, slots: u64, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.0.join(FILE_NAME))
        .unwrap();
    for s in 0..slots {
        let at = 4096 + s * (4096 + bs) + 4096 + offset;
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        f.write_all_at(&[!b[0]], at).unwrap();
    }
    f.sync_all().unwrap();
}

/// Read `key` whole twice through a fresh cache in `dir` (the second pass writes every block
/// to disk), then drop that cache: the next one starts with empty RAM and the blocks on disk.
async fn warm_disk(dir: &Dir, bs: u64, origin: &Arc<FakeOrigin>, key: &str, len: u64) {
    let cache = cache_of(dir, bs, 64 << 20, 32 << 20);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    for _ in 0..2 {
        read_all(&env, origin, &request(key, from_to(0, len - 1)))
            .await
            .unwrap();
        settle(&cache).await;
    }
    assert_eq!(
        cache.disk.as_ref().unwrap().stats().blocks,
        len.div_ceil(bs)
    );
}

/// Wait until no fill is in flight and every block queued for the disk is written.
async fn settle(cache: &Cache) {
    pipeline::settle(cache).await;
    if let Some(d) = &cache.disk {
        assert!(d.flush(Duration::from_secs(10)));
    }
}

#[monoio::test_all(timer_enabled = true)]
async fn after_a_restart_blocks_come_from_disk_after_one_head() {
    let dir = Dir::new("restart");
    let origin = FakeOrigin::new();
    let data = FakeOrigin::pattern(6 * BS as usize + 77, 3);
    origin.put("obj", data.clone());
    {
        let cache = cache(&dir, 64 << 20, 32 << 20);
        let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
        // Read once: remembered only; read again (RAM hits): written.
        for _ in 0..2 {
            let got = read_all(
                &env,
                &origin,
                &request("obj", from_to(0, data.len() as u64 - 1)),
            )
            .await
            .unwrap()
            .1;
            assert_eq!(got, data);
            settle(&cache).await;
        }
        assert_eq!(cache.disk.as_ref().unwrap().stats().blocks, 7);
    }
    let gets_before = origin.gets().len();
    let heads_before = origin.heads();

    // A new process: empty RAM, the same disk.
    let cache = cache(&dir, 64 << 20, 32 << 20);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    let (first, last) = (BS + 100, 5 * BS + 9);
    let got = read_all(&env, &origin, &request("obj", from_to(first, last)))
        .await
        .unwrap()
        .1;
    assert_eq!(got, data[first as usize..=last as usize]);
    assert_eq!(
        origin.gets().len(),
        gets_before,
        "no origin GET for blocks on disk"
    );
    assert_eq!(
        origin.heads(),
        heads_before + 1,
        "the metadata is revalidated"
    );
    settle(&cache).await;
    let disk = cache.disk.as_ref().unwrap().stats();
    assert_eq!((disk.hits, disk.checksum_failures), (5, 0));
    // Blocks 2-4 were read whole and promoted into RAM; of blocks 1 and 5 only the parts
    // wanted were read. Read again: those two are read whole and promoted (a part of them was
    // read just before); then everything is in RAM.
    for hits in [7, 7] {
        let got = read_all(&env, &origin, &request("obj", from_to(first, last)))
            .await
            .unwrap()
            .1;
        assert_eq!(got, data[first as usize..=last as usize]);
        settle(&cache).await;
        assert_eq!(cache.disk.as_ref().unwrap().stats().hits, hits);
    }
    assert_eq!(origin.gets().len(), gets_before);
}

#[monoio::test_all(timer_enabled = true)]
async fn a_part_of_a_block_reads_only_its_chunks_and_promotes_the_block_on_reuse() {
    let dir = Dir::new("part");
    let origin = FakeOrigin::new();
    let data = FakeOrigin::pattern(3 * BS as usize, 5);
    origin.put("obj", data.clone());
    warm_disk(&dir, BS, &origin, "obj", 3 * BS).await;
    // 64 KiB blocks are checksummed in 16 KiB chunks: damage chunk 0 of every block.
    damage(&dir, BS, 3, 100);
    let cache = cache(&dir, 64 << 20, 32 << 20);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    let gets = origin.gets().len();
    let read = |first: u64, last: u64| {
        let (env, origin) = (&env, &origin);
        async move {
            read_all(env, origin, &request("obj", from_to(first, last)))
                .await
                .unwrap()
                .1
        }
    };
    // Within chunks 2 and 3 of block 1: read from disk alone (the header page and those two
    // chunks), the damaged chunk 0 never read.
    let (a, b) = (BS + 40_000, BS + 50_000);
    assert_eq!(read(a, b).await, data[a as usize..=b as usize]);
    settle(&cache).await;
    let disk = cache.disk.as_ref().unwrap().stats();
    assert_eq!(
        (disk.hits, disk.part_hits, disk.checksum_failures),
        (1, 1, 0)
    );
    assert_eq!(disk.read_bytes, 4096 + 2 * 16384);
    assert_eq!(origin.gets().len(), gets, "no origin GET");
    // A part of block 1 again: the block is read whole to be promoted; its chunk 0 fails its
    // check, so it comes from the origin instead, right.
    let (a, b) = (BS + 10, BS + 20);
    assert_eq!(read(a, b).await, data[a as usize..=b as usize]);
    settle(&cache).await;
    let disk = cache.disk.as_ref().unwrap().stats();
    assert_eq!((disk.hits, disk.checksum_failures), (1, 1));
    assert_eq!(origin.gets().len(), gets + 1);
    // Now in RAM: a third part costs neither a disk read nor a GET.
    let (a, b) = (BS + 60_000, BS + 60_010);
    assert_eq!(read(a, b).await, data[a as usize..=b as usize]);
    let disk = cache.disk.as_ref().unwrap().stats();
    assert_eq!((disk.hits, disk.misses), (1, 0));
    assert_eq!(origin.gets().len(), gets + 1);
}

#[monoio::test_all(timer_enabled = true)]
async fn a_damaged_block_on_disk_is_fetched_from_the_origin_instead() {
    let dir = Dir::new("damage");
    let origin = FakeOrigin::new();
    let data = FakeOrigin::pattern(4 * BS as usize, 9);
    origin.put("obj", data.clone());
    {
        let cache = cache(&dir, 64 << 20, 32 << 20);
        let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
        for _ in 0..2 {
            read_all(&env, &origin, &request("obj", from_to(0, 4 * BS - 1)))
                .await
                .unwrap();
            settle(&cache).await;
        }
        assert_eq!(cache.disk.as_ref().unwrap().stats().blocks, 4);
    }
    // Flip a byte in the middle of every slot's data: whichever slot holds a block, it fails.
    damage(&dir, BS, 4, BS / 2);

    let cache = cache(&dir, 64 << 20, 32 << 20);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    let gets_before = origin.gets().len();
    let got = read_all(&env, &origin, &request("obj", from_to(0, 4 * BS - 1)))
        .await
        .unwrap()
        .1;
    assert_eq!(got, data, "never a damaged byte");
    assert!(
        origin.gets().len() > gets_before,
        "fetched from the origin again"
    );
    settle(&cache).await;
    let disk = cache.disk.as_ref().unwrap().stats();
    assert_eq!((disk.checksum_failures, disk.hits), (4, 0));
    // The blocks' first pieces went to the client from disk before the damaged one was
    // read; what the cache kept is still each block whole and right.
    let gets_now = origin.gets().len();
    let again = read_all(&env, &origin, &request("obj", from_to(0, 4 * BS - 1)))
        .await
        .unwrap()
        .1;
    assert_eq!(again, data, "the stored blocks");
    assert_eq!(origin.gets().len(), gets_now, "served from RAM");
}

#[monoio::test_all(timer_enabled = true)]
async fn a_block_damaged_past_its_first_pieces_is_finished_from_the_origin() {
    // 1 MiB blocks are read from disk in pieces, each handed on once it checks out: damage
    // past the first pieces is found after they went to the client.
    const MIB: u64 = 1 << 20;
    let dir = Dir::new("damage-late");
    let origin = FakeOrigin::new();
    let data = FakeOrigin::pattern(2 * MIB as usize, 5);
    origin.put("obj", data.clone());
    warm_disk(&dir, MIB, &origin, "obj", 2 * MIB).await;
    let damaged_at = 3 * MIB / 4 + 100;
    damage(&dir, MIB, 2, damaged_at);

    let cache = cache_of(&dir, MIB, 64 << 20, 32 << 20);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    let gets_before = origin.gets().len();
    let req = request("obj", from_to(0, 2 * MIB - 1));
    let got = read_all(&env, &origin, &req).await.unwrap().1;
    assert_eq!(got, data, "never a damaged byte");
    settle(&cache).await;
    let disk = cache.disk.as_ref().unwrap().stats();
    assert_eq!((disk.checksum_failures, disk.hits), (2, 0));
    // Each block's checked pieces came from disk; only the rest, from the damaged piece's
    // start, came from the origin.
    let piece = rangecache_dataplane::cache::disk::PIECE as u64;
    let refills: Vec<u64> = origin.gets()[gets_before..]
        .iter()
        .filter(|g| g.if_match.is_some())
        .map(|g| match g.range {
            RangeSpec::FromTo { first, .. } => first % MIB,
            r => panic!("{r:?}"),
        })
        .collect();
    assert_eq!(refills, [damaged_at / piece * piece; 2], "{refills:?}");
    // What the cache kept is each block whole and right.
    let gets_now = origin.gets().len();
    let again = read_all(&env, &origin, &req).await.unwrap().1;
    assert_eq!(again, data, "the stored blocks");
    assert_eq!(origin.gets().len(), gets_now, "served from RAM");
}

#[monoio::test_all(timer_enabled = true)]
async fn a_block_read_once_is_not_written() {
    let dir = Dir::new("once");
    let origin = FakeOrigin::new();
    origin.put("scan", FakeOrigin::pattern(8 * BS as usize, 4));
    let cache = cache(&dir, 64 << 20, 32 << 20);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    read_all(&env, &origin, &request("scan", from_to(0, 8 * BS - 1)))
        .await
        .unwrap();
    settle(&cache).await;
    let disk = cache.disk.as_ref().unwrap().stats();
    assert_eq!(
        (disk.blocks, disk.writes),
        (0, 0),
        "a one-pass scan never reaches the disk"
    );
}

/// Read objects `o0`, `o1`, ... (`objects`, each 16 blocks) whole, one after another, twice
/// over, checking every byte and settling the cache after each.
async fn read_each_twice(
    env: &Rc<ReadEnv>,
    origin: &Arc<FakeOrigin>,
    cache: &Cache,
    objects: &[Bytes],
) {
    for _ in 0..2 {
        for (i, d) in objects.iter().enumerate() {
            let key = format!("o{i}");
            let got = read_all(env, origin, &request(&key, from_to(0, 16 * BS - 1)))
                .await
                .unwrap()
                .1;
            assert_eq!(&got, d);
            settle(cache).await;
        }
    }
}

#[monoio::test_all(timer_enabled = true)]
async fn a_working_set_larger_than_ram_is_served_from_disk() {
    let dir = Dir::new("larger");
    let origin = FakeOrigin::new();
    // 64 blocks of objects against RAM for 16 blocks and disk for 128.
    let objects: Vec<_> = (0..4)
        .map(|i| {
            let d = FakeOrigin::pattern(16 * BS as usize, 20 + i);
            origin.put(&format!("o{i}"), d.clone());
            d
        })
        .collect();
    let cache = cache(&dir, 16 * (BS + 256), 4096 + 128 * (4096 + BS));
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    // Two passes: the first remembers every block, the second misses RAM again and writes it.
    read_each_twice(&env, &origin, &cache, &objects).await;
    let gets_after_warm = origin.gets().len();
    read_each_twice(&env, &origin, &cache, &objects).await;
    assert_eq!(
        origin.gets().len(),
        gets_after_warm,
        "every block from RAM or disk"
    );
    assert!(cache.disk.as_ref().unwrap().stats().hits >= 64);
}
