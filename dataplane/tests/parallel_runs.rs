//! A demand read of many missing blocks is fetched by parallel origin GETs (runs of at least
//! 2 MiB, up to four at once within the response's window), on both io drivers. What must hold
//! whatever the split: every byte is fetched once (also across a cut and its resume), fills
//! start and end on block boundaries and carry `If-Match`, a response never has more fetched
//! ahead than its window, and one response's bytes come from one object version.

mod support;

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::cache::range::RangeSpec;
use rangecache_dataplane::cache::read;
use rangecache_dataplane::cache::Cache;
use rangecache_dataplane::{ErrorKind, Metrics};
use support::fake_origin::{FakeOrigin, Fault, SeenGet};
use support::pipeline::{
    self, block_on, counter, disjoint_bytes, env, from_to, read_all, read_on_workers, request,
    settle,
};

const BS: u64 = 1 << 20;
/// The response window: eight blocks, split over four runs of two.
const WINDOW: u64 = 8 * BS;
const BLOCKS: u64 = 24;

fn cache() -> Arc<Cache> {
    pipeline::cache(BS, 256 << 20, WINDOW, 256 << 20)
}

/// A cold object of [`BLOCKS`] blocks whose metadata (and block 0) is cached, so the next read
/// plans its fills without a first fetch. Returns its bytes and ETag.
async fn known_object(
    env: &Rc<read::ReadEnv>,
    origin: &Arc<FakeOrigin>,
    key: &str,
    seed: u8,
) -> (bytes::Bytes, String) {
    let data = FakeOrigin::pattern((BLOCKS * BS) as usize, seed);
    let etag = origin.put(key, data.clone());
    read_all(env, origin, &request(key, from_to(0, 9)))
        .await
        .unwrap();
    settle(&env.cache).await;
    (data, etag)
}

/// The byte spans `gets` asked for, sorted, checked to be fills of `etag` ending on block
/// boundaries.
fn fill_spans(gets: &[SeenGet], etag: &str, size: u64) -> Vec<(u64, u64)> {
    let mut spans: Vec<(u64, u64)> = gets
        .iter()
        .map(|g| {
            assert_eq!(
                g.if_match.as_deref(),
                Some(etag),
                "fill without If-Match: {g:?}"
            );
            let RangeSpec::FromTo { first, last } = g.range else {
                panic!("fill not a closed range: {g:?}");
            };
            let last = last.min(size - 1);
            assert!(
                (last + 1) % BS == 0 || last + 1 == size,
                "fill ends mid-block: {g:?}"
            );
            (first, last)
        })
        .collect();
    spans.sort();
    spans
}

#[monoio::test_all(timer_enabled = true)]
async fn a_long_cold_read_is_fetched_by_parallel_runs_each_byte_once() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let (data, etag) = known_object(&env, &origin, "long", 1).await;
    let before = origin.gets().len();
    let sent_before = origin.bytes_sent.load(Relaxed);
    // A bandwidth per stream, so that runs overlap in time.
    origin.set_chunk_delay(Duration::from_millis(1));
    let req = request("long", from_to(BS, BLOCKS * BS - 1));
    let (_, got) = read_all(&env, &origin, &req).await.unwrap();
    assert_eq!(got, data[BS as usize..]);
    settle(&cache).await;
    let fills = &origin.gets()[before..];
    for g in fills {
        let RangeSpec::FromTo { first, .. } = g.range else {
            unreachable!()
        };
        assert_eq!(first % BS, 0, "fill not block-aligned: {g:?}");
    }
    let spans = fill_spans(fills, &etag, BLOCKS * BS);
    assert_eq!(disjoint_bytes(&spans), (BLOCKS - 1) * BS);
    assert_eq!(
        origin.bytes_sent.load(Relaxed) - sent_before,
        (BLOCKS - 1) * BS,
        "every byte fetched once"
    );
    // Parallel: several GETs open at once, never more than the window has blocks.
    let open = origin.max_open_bodies();
    assert!(
        (2..=WINDOW / BS).contains(&open),
        "{open} GETs open at once"
    );
    assert!(
        fills.len() >= 4,
        "{} fills for {} blocks",
        fills.len(),
        BLOCKS - 1
    );
}

#[test]
fn parallel_runs_of_readers_on_two_workers_fetch_each_byte_once() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(2)), FakeOrigin::new());
    let (data, etag) = block_on({
        let (cache, metrics, origin) = (cache.clone(), metrics.clone(), origin.clone());
        async move { known_object(&env(&cache, &metrics, 0), &origin, "shared", 2).await }
    });
    let (before, sent_before) = (origin.gets().len(), origin.bytes_sent.load(Relaxed));
    origin.set_chunk_delay(Duration::from_millis(1));
    let req = request("shared", from_to(BS, BLOCKS * BS - 1));
    for got in read_on_workers(&cache, &metrics, &origin, 2, &req) {
        assert_eq!(got, data[BS as usize..]);
    }
    // A run asks for blocks it has not claimed yet; when the other reader claims one first,
    // the run skips it and closes its body there: GETs may ask for overlapping bytes, but
    // each byte is fetched once.
    fill_spans(&origin.gets()[before..], &etag, BLOCKS * BS);
    assert_eq!(
        origin.bytes_sent.load(Relaxed) - sent_before,
        (BLOCKS - 1) * BS,
        "every byte fetched once, whichever worker led each run"
    );
}

#[monoio::test_all(timer_enabled = true)]
async fn a_long_first_read_sends_its_whole_first_window_at_once() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern((BLOCKS * BS) as usize, 5);
    origin.put("first", data.clone());
    origin.set_chunk_delay(Duration::from_millis(1));
    // Nothing known of the object: the read's first GET also brings the metadata.
    let req = request("first", from_to(0, WINDOW - 1));
    let (_, got) = read_all(&env, &origin, &req).await.unwrap();
    assert_eq!(got, data[..WINDOW as usize]);
    settle(&cache).await;
    let gets = origin.gets();
    // The first fetch asks for one split run (2 MiB), not the whole 8 MiB on one stream.
    assert_eq!(
        gets[0].range,
        RangeSpec::FromTo {
            first: 0,
            last: 2 * BS - 1
        }
    );
    // The rest of the window goes out beside it, before the ETag is known (no If-Match),
    // in runs on block boundaries, each byte once; every early GET was used.
    assert!(gets.iter().all(|g| g.if_match.is_none()), "{gets:?}");
    let spans = origin.get_spans();
    assert!(spans.iter().all(|&(_, b)| (b + 1) % BS == 0), "{spans:?}");
    assert_eq!(disjoint_bytes(&spans), WINDOW);
    assert_eq!(counter(&metrics, |m| m.early_fetches.load(Relaxed)), 3);
    assert_eq!(
        counter(&metrics, |m| m.early_fetches_unused.load(Relaxed)),
        0
    );
    assert!(origin.max_open_bodies() >= 2);
}

#[monoio::test_all(timer_enabled = true)]
async fn a_slow_client_of_parallel_runs_holds_at_most_its_window() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    known_object(&env, &origin, "slow", 3).await;
    let sent_before = origin.bytes_sent.load(Relaxed);
    let req = request("slow", from_to(BS, BLOCKS * BS - 1));
    let mut body = pipeline::open_body(&env, &origin, &req).await;
    let mut taken = 0u64;
    while taken < BLOCKS * BS / 2 {
        let p = body.next().await.unwrap().unwrap();
        taken += p.len() as u64;
        // A slow reader: the runs get time to run ahead if anything let them.
        monoio::time::sleep(Duration::from_millis(1)).await;
        let sent = origin.bytes_sent.load(Relaxed) - sent_before;
        assert!(
            sent <= taken + WINDOW + BS,
            "origin sent {sent} bytes for a client that took {taken} (window {WINDOW})"
        );
        assert!(cache.budget.stats().used <= WINDOW + BS);
    }
    drop(body);
    settle(&cache).await;
    assert!(origin.bytes_sent.load(Relaxed) - sent_before < (BLOCKS - 1) * BS);
}

#[monoio::test_all(timer_enabled = true)]
async fn a_cut_in_one_of_parallel_runs_is_resumed_from_its_next_byte_with_if_match() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let (data, etag) = known_object(&env, &origin, "cut", 4).await;
    let (before, sent_before) = (origin.gets().len(), origin.bytes_sent.load(Relaxed));
    // The next GET (one of the first runs) breaks off inside its second block.
    origin.push_fault(Fault::CutAfter(BS as usize + 5000));
    let (_, got) = read_all(&env, &origin, &request("cut", from_to(BS, BLOCKS * BS - 1)))
        .await
        .unwrap();
    assert_eq!(got, data[BS as usize..]);
    settle(&cache).await;
    assert_eq!(counter(&metrics, |m| m.fill_resumes.load(Relaxed)), 1);
    let fills = &origin.gets()[before..];
    let cut = &fills[0];
    let RangeSpec::FromTo { first, .. } = cut.range else {
        unreachable!()
    };
    let resumed: Vec<_> = fills
        .iter()
        .filter(|g| matches!(g.range, RangeSpec::FromTo { first: f, .. } if f % BS != 0))
        .collect();
    assert_eq!(resumed.len(), 1, "{fills:?}");
    assert!(
        matches!(resumed[0].range, RangeSpec::FromTo { first: f, .. } if f == first + BS + 5000),
        "resumed at {:?}, cut GET {cut:?}",
        resumed[0].range
    );
    assert_eq!(resumed[0].if_match.as_deref(), Some(etag.as_str()));
    // The resume asks only for what the cut left: together, each byte once.
    assert_eq!(
        origin.bytes_sent.load(Relaxed) - sent_before,
        (BLOCKS - 1) * BS
    );
}

#[monoio::test_all(timer_enabled = true)]
async fn a_version_change_during_parallel_runs_cuts_without_mixing_versions() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let (old, _) = known_object(&env, &origin, "swap", 5).await;
    // One run's body is replaced under it after 1.5 blocks; its resume and every later run
    // meet the new ETag with If-Match.
    origin.set_chunk_delay(Duration::from_millis(1));
    origin.push_fault(Fault::ReplaceAfter(BS as usize + BS as usize / 2));
    let (kind, got) = read_all(
        &env,
        &origin,
        &request("swap", from_to(BS, BLOCKS * BS - 1)),
    )
    .await
    .unwrap_err();
    assert_eq!(kind, ErrorKind::Changed);
    assert!(got.len() < old.len() - BS as usize);
    assert_eq!(
        got,
        old[BS as usize..BS as usize + got.len()],
        "only the old version's bytes were handed out"
    );
    settle(&cache).await;
    let (_, fresh) = read_all(
        &env,
        &origin,
        &request("swap", from_to(BS, BLOCKS * BS - 1)),
    )
    .await
    .unwrap();
    assert_eq!(
        fresh,
        FakeOrigin::pattern((BLOCKS * BS) as usize, 99)[BS as usize..]
    );
    settle(&cache).await;
}
