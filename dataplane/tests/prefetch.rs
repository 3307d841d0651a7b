//! Prefetch through the read pipeline against the in-process fake origin: sequential
//! read-ahead and Parquet-aware prefetch serve later reads without origin requests, and never
//! change what a reader receives.

mod support;

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rangecache_dataplane::cache::prefetch::parquet::Layout;
use rangecache_dataplane::cache::range::{ByteRange, RangeSpec};
use rangecache_dataplane::cache::read::{ReadEnv, ReadRequest};
use rangecache_dataplane::cache::{Cache, CacheConfig, ObjectId, PrefetchConfig};
use rangecache_dataplane::Metrics;
use support::fake_origin::FakeOrigin;

const BS: u64 = 16 * 1024;
const PARQUET: &[u8] = include_bytes!("data/pyarrow_index.parquet");

fn cache(max_window: u64) -> Arc<Cache> {
    Arc::new(Cache::new(CacheConfig {
        memory: 64 << 20,
        block_size: BS,
        metadata_ttl: Duration::from_secs(60),
        metadata_entries: 1000,
        readahead_window: 4 * BS,
        inflight_memory: 16 << 20,
        pretouch: false,
        prefetch: PrefetchConfig {
            enabled: true,
            max_window,
            parquet: true,
        },
    }))
}

async fn read(env: &Rc<ReadEnv>, origin: &Arc<FakeOrigin>, key: &str, range: RangeSpec) -> Vec<u8> {
    let req = ReadRequest {
        object: ObjectId::new("origin", "bucket", key),
        range: Some(range),
        preconditions: Default::default(),
        head_only: false,
        wants_checksums: false,
        budget_wait: Duration::from_secs(5),
    };
    let mut body = support::pipeline::open_body(env, origin, &req).await;
    let mut got = Vec::new();
    while let Some(p) = body.next().await.unwrap() {
        got.extend_from_slice(&p);
    }
    got
}

fn from_to(first: u64, last: u64) -> RangeSpec {
    RangeSpec::FromTo { first, last }
}

async fn settle(cache: &Cache) {
    for _ in 0..1000 {
        if cache.inflight.is_empty() && cache.budget.stats().used == 0 {
            return;
        }
        monoio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("prefetches still in flight");
}

/// GETs the origin saw that ask for any byte of `r`.
fn gets_touching(origin: &FakeOrigin, r: ByteRange, size: u64) -> usize {
    origin
        .gets()
        .iter()
        .filter(|g| {
            let (a, b) = match g.range {
                RangeSpec::FromTo { first, last } => (first, last),
                RangeSpec::From { first } => (first, size - 1),
                RangeSpec::Suffix { len } => (size.saturating_sub(len), size - 1),
            };
            a <= r.last && r.first <= b
        })
        .count()
}

#[monoio::test_all(timer_enabled = true)]
async fn a_sequential_reader_finds_the_next_bytes_already_cached() {
    let cache = cache(16 * BS);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    let origin = FakeOrigin::new();
    let size = 64 * BS;
    let data = FakeOrigin::pattern(size as usize, 1);
    origin.put("scan", data.clone());
    let mut at = 0;
    for _ in 0..2 {
        let got = read(&env, &origin, "scan", from_to(at, at + 4 * BS - 1)).await;
        assert_eq!(got, data[at as usize..(at + 4 * BS) as usize]);
        at += 4 * BS;
    }
    settle(&cache).await;
    // The second read opened a window: the next 8 blocks were fetched before anyone asked.
    let ahead = ByteRange::new(8 * BS, 16 * BS - 1);
    assert!(gets_touching(&origin, ahead, size) >= 1);
    let before = origin.gets().len();
    let got = read(&env, &origin, "scan", from_to(8 * BS, 12 * BS - 1)).await;
    assert_eq!(got, data[(8 * BS) as usize..(12 * BS) as usize]);
    let new_gets: Vec<_> = origin.gets()[before..].to_vec();
    assert!(
        new_gets
            .iter()
            .all(|g| !matches!(g.range, RangeSpec::FromTo { first, .. } if first < 12 * BS)),
        "prefetched bytes fetched again: {new_gets:?}"
    );
    settle(&cache).await;
    let stats = cache.stats().prefetch;
    assert!(stats.fetched >= 8 * BS && stats.used >= 4 * BS, "{stats:?}");
}

#[monoio::test_all(timer_enabled = true)]
async fn readers_sharing_a_cursor_get_read_ahead_though_their_reads_arrive_out_of_order() {
    let cache = cache(16 * BS);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    let origin = FakeOrigin::new();
    let size = 64 * BS;
    let data = FakeOrigin::pattern(size as usize, 4);
    origin.put("shared", data.clone());
    // Two connections take the next 4-block range in turn; the second range of each pair
    // reaches the cache first. No read starts where the one before it ended.
    for i in [1u64, 0, 3, 2] {
        let at = i * 4 * BS;
        let got = read(&env, &origin, "shared", from_to(at, at + 4 * BS - 1)).await;
        assert_eq!(got, data[at as usize..(at + 4 * BS) as usize]);
    }
    settle(&cache).await;
    // Range 2 follows range 1: the window opened, and the bytes after range 3 were fetched
    // before anyone asked.
    let ahead = ByteRange::new(16 * BS, 20 * BS - 1);
    assert!(
        gets_touching(&origin, ahead, size) >= 1,
        "no read-ahead: {:?}",
        origin.gets()
    );
    let before = origin.gets().len();
    let got = read(&env, &origin, "shared", from_to(16 * BS, 20 * BS - 1)).await;
    assert_eq!(got, data[(16 * BS) as usize..(20 * BS) as usize]);
    assert!(
        origin.gets()[before..]
            .iter()
            .all(|g| !matches!(g.range, RangeSpec::FromTo { first, .. } if first < 20 * BS)),
        "prefetched bytes fetched again"
    );
    settle(&cache).await;
}

#[monoio::test_all(timer_enabled = true)]
async fn a_random_reader_gets_no_read_ahead() {
    let cache = cache(16 * BS);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    let origin = FakeOrigin::new();
    origin.put("rand", FakeOrigin::pattern(64 * BS as usize, 2));
    for start in [40, 3, 27, 11, 50] {
        read(
            &env,
            &origin,
            "rand",
            from_to(start * BS + 7, start * BS + 1000),
        )
        .await;
    }
    settle(&cache).await;
    assert_eq!(cache.stats().prefetch.fetched, 0);
}

#[monoio::test_all(timer_enabled = true)]
async fn a_parquet_reader_finds_the_next_row_groups_chunk_cached() {
    let cache = cache(64 * BS);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    let origin = FakeOrigin::new();
    let size = PARQUET.len() as u64;
    origin.put("t.parquet", Bytes::from_static(PARQUET));
    let layout = Layout::from_tail(PARQUET, size).unwrap();
    // Footer first, as DuckDB and Polars read it.
    let footer = read(
        &env,
        &origin,
        "t.parquet",
        RangeSpec::Suffix { len: 64 * 1024 },
    )
    .await;
    assert_eq!(footer, PARQUET[PARQUET.len() - 64 * 1024..]);
    settle(&cache).await;
    // Column 1 of row group 0: the same column of row group 1 is fetched behind it.
    let c0 = layout.chunk(0, 1).unwrap();
    let got = read(&env, &origin, "t.parquet", from_to(c0.first, c0.last)).await;
    assert_eq!(got, PARQUET[c0.first as usize..=c0.last as usize]);
    settle(&cache).await;
    let c1 = layout.chunk(1, 1).unwrap();
    let touching = gets_touching(&origin, c1, size);
    assert!(touching >= 1, "row group 1's chunk was not prefetched");
    let got = read(&env, &origin, "t.parquet", from_to(c1.first, c1.last)).await;
    assert_eq!(got, PARQUET[c1.first as usize..=c1.last as usize]);
    assert_eq!(
        gets_touching(&origin, c1, size),
        touching,
        "the prefetched chunk was fetched again"
    );
    // Another column's chunk of row group 1 was not prefetched (the reader never touched it).
    let other = layout.chunk(1, 2).unwrap();
    let inner = ByteRange::new(other.first + BS, other.last - BS);
    assert_eq!(gets_touching(&origin, inner, size), 0);
    settle(&cache).await;
}

#[monoio::test_all(timer_enabled = true)]
async fn a_file_that_is_not_parquet_is_read_without_parquet_prefetch() {
    let cache = cache(64 * BS);
    let env = ReadEnv::new(cache.clone(), Arc::new(Metrics::new(1)), 0);
    let origin = FakeOrigin::new();
    // Ends in PAR1 with a footer length that points at garbage.
    let mut bytes = FakeOrigin::pattern(40 * BS as usize, 3).to_vec();
    let n = bytes.len();
    bytes[n - 8..n - 4].copy_from_slice(&5000u32.to_le_bytes());
    bytes[n - 4..].copy_from_slice(b"PAR1");
    origin.put("fake.parquet", Bytes::from(bytes.clone()));
    let footer = read(
        &env,
        &origin,
        "fake.parquet",
        RangeSpec::Suffix { len: 8000 },
    )
    .await;
    assert_eq!(footer, bytes[n - 8000..]);
    settle(&cache).await;
    let got = read(&env, &origin, "fake.parquet", from_to(3 * BS, 4 * BS)).await;
    assert_eq!(got, bytes[3 * BS as usize..=(4 * BS) as usize]);
    settle(&cache).await;
    assert_eq!(cache.stats().prefetch.fetched, 0);
}
