//! Driving the read pipeline in tests: a cache without prefetch, requests, reading a body to
//! its end, counters summed over workers, and waiting for background fills.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::cache::range::RangeSpec;
use rangecache_dataplane::cache::read::{self, Answer, BodyStream, ReadEnv, ReadRequest};
use rangecache_dataplane::cache::{Cache, CacheConfig, ObjectId, PrefetchConfig};
use rangecache_dataplane::{ErrorKind, Metrics, WorkerMetrics};

use super::fake_origin::{FakeFetch, FakeOrigin};

/// The sizing of a cache of `memory` bytes in blocks of `block_size`, a response window of
/// `window` bytes and an in-flight budget of `inflight`, with prefetch off: these tests count
/// origin bytes exactly (tests/prefetch.rs tests fetching ahead).
pub fn config(block_size: u64, memory: u64, window: u64, inflight: u64) -> CacheConfig {
    CacheConfig {
        memory,
        block_size,
        metadata_ttl: Duration::from_secs(60),
        metadata_entries: 1000,
        readahead_window: window,
        inflight_memory: inflight,
        pretouch: false,
        prefetch: PrefetchConfig {
            enabled: false,
            ..PrefetchConfig::default()
        },
    }
}

/// A RAM-only cache sized by [`config`].
pub fn cache(block_size: u64, memory: u64, window: u64, inflight: u64) -> Arc<Cache> {
    Arc::new(Cache::new(config(block_size, memory, window, inflight)))
}

/// Run `f` to completion on a fresh single-thread runtime (epoll driver, timers on).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap()
        .block_on(f)
}

/// Read `req` to its end from `workers` threads at once, each its own worker of `cache`
/// (released together by a barrier), and wait for their fills: the bytes each got.
pub fn read_on_workers(
    cache: &Arc<Cache>,
    metrics: &Arc<Metrics>,
    origin: &Arc<FakeOrigin>,
    workers: usize,
    req: &ReadRequest<'static>,
) -> Vec<Vec<u8>> {
    let barrier = Arc::new(std::sync::Barrier::new(workers));
    let threads: Vec<_> = (0..workers)
        .map(|w| {
            let (cache, metrics, origin, barrier) = (
                cache.clone(),
                metrics.clone(),
                origin.clone(),
                barrier.clone(),
            );
            let req = req.clone();
            std::thread::spawn(move || {
                block_on(async move {
                    let env = env(&cache, &metrics, w);
                    barrier.wait();
                    let got = read_all(&env, &origin, &req).await.unwrap().1;
                    settle(&cache).await;
                    got
                })
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

/// The pipeline of worker `worker`.
pub fn env(cache: &Arc<Cache>, metrics: &Arc<Metrics>, worker: usize) -> Rc<ReadEnv> {
    ReadEnv::new(cache.clone(), metrics.clone(), worker)
}

/// A plain GET of `key` (the whole object when `range` is `None`).
pub fn request(key: &str, range: Option<RangeSpec>) -> ReadRequest<'static> {
    ReadRequest {
        object: ObjectId::new("origin", "bucket", key),
        range,
        preconditions: Default::default(),
        head_only: false,
        wants_checksums: false,
        budget_wait: Duration::from_secs(5),
    }
}

/// `bytes=first-last`.
pub fn from_to(first: u64, last: u64) -> Option<RangeSpec> {
    Some(RangeSpec::FromTo { first, last })
}

/// Open `req` (of an object `origin` holds, answered with bytes) and return its body, primed.
pub async fn open_body(
    env: &Rc<ReadEnv>,
    origin: &Arc<FakeOrigin>,
    req: &ReadRequest<'_>,
) -> BodyStream<FakeFetch> {
    let fetch = Rc::new(origin.fetch(req.object.key()));
    let Answer::Object {
        body: Some(body), ..
    } = read::open(env, fetch, req).await.unwrap()
    else {
        panic!("body expected");
    };
    body
}

/// Read `req` to its end: the status (206 or 200) and the bytes, or the error that cut it.
pub async fn read_all(
    env: &Rc<ReadEnv>,
    origin: &Arc<FakeOrigin>,
    req: &ReadRequest<'_>,
) -> Result<(bool, Vec<u8>), (ErrorKind, Vec<u8>)> {
    let fetch = Rc::new(origin.fetch(req.object.key()));
    let answer = read::open(env, fetch, req)
        .await
        .map_err(|e| (e.kind(), vec![]))?;
    let Answer::Object { partial, body, .. } = answer else {
        panic!("not an object answer");
    };
    let mut got = Vec::new();
    if let Some(mut body) = body {
        loop {
            match body.next().await {
                Ok(Some(p)) => got.extend_from_slice(&p),
                Ok(None) => break,
                Err(e) => return Err((e.kind(), got)),
            }
        }
    }
    Ok((partial, got))
}

/// Once the fills are over, read `req` again and check that the store serves `expected`
/// without asking the origin: what the fills stored is right, not only what they streamed.
pub async fn assert_stored(
    env: &Rc<ReadEnv>,
    cache: &Cache,
    origin: &Arc<FakeOrigin>,
    req: &ReadRequest<'_>,
    expected: &[u8],
) {
    settle(cache).await;
    let gets = origin.gets().len();
    let (_, again) = read_all(env, origin, req).await.unwrap();
    assert_eq!(again, expected, "the stored blocks");
    assert_eq!(
        origin.gets().len(),
        gets,
        "no origin GET for the stored blocks"
    );
}

/// How many bytes `spans` (sorted) cover, checked not to overlap: each byte asked for once.
pub fn disjoint_bytes(spans: &[(u64, u64)]) -> u64 {
    for w in spans.windows(2) {
        assert!(
            w[1].0 > w[0].1,
            "overlapping fills {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    spans.iter().map(|(a, b)| b - a + 1).sum()
}

/// A counter summed over every worker.
pub fn counter(m: &Metrics, f: impl Fn(&WorkerMetrics) -> u64) -> u64 {
    (0..m.len()).map(|i| f(m.worker(i))).sum()
}

/// Wait until nothing is in flight (fills finishing in the background).
pub async fn settle(cache: &Cache) {
    for _ in 0..500 {
        if cache.inflight.is_empty() && cache.budget.stats().used == 0 {
            return;
        }
        monoio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!(
        "still in flight: {} fills, {} budget bytes",
        cache.inflight.len(),
        cache.budget.stats().used
    );
}
