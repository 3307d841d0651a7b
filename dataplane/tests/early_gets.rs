//! Early GETs: reads of a cold object send the GETs of their first window while its metadata
//! is still being looked up, on both io drivers. What must hold: each byte is still asked
//! for once (readers of one range share one set of GETs), an early GET is used only for the
//! version the lookup found, and one that cannot be used is dropped and counted, never served.

mod support;

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::cache::range::RangeSpec;
use rangecache_dataplane::cache::read::{self, Answer};
use rangecache_dataplane::cache::Cache;
use rangecache_dataplane::Metrics;
use support::fake_origin::FakeOrigin;
use support::pipeline::{self, counter, disjoint_bytes, env, from_to, read_all, request, settle};

const BS: u64 = 1 << 20;
const WINDOW: u64 = 8 * BS;
/// S3-like first-byte latency of the fake origin: long enough that a reader arriving a few
/// milliseconds after the first one finds the lookup still in flight.
const FIRST_BYTE: Duration = Duration::from_millis(40);
/// When the later readers arrive.
const LATER: Duration = Duration::from_millis(5);

fn cache() -> Arc<Cache> {
    pipeline::cache(BS, 256 << 20, WINDOW, 256 << 20)
}

fn early(m: &Metrics) -> (u64, u64) {
    (
        counter(m, |w| w.early_fetches.load(Relaxed)),
        counter(m, |w| w.early_fetches_unused.load(Relaxed)),
    )
}

#[monoio::test_all(timer_enabled = true)]
async fn readers_of_a_cold_object_send_their_gets_beside_the_lookup() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern((2 * WINDOW) as usize, 4);
    origin.put("cold", data.clone());
    origin.set_first_byte(FIRST_BYTE);
    let req = request("cold", from_to(0, WINDOW - 1));
    let (first, second) = monoio::join!(read_all(&env, &origin, &req), async {
        monoio::time::sleep(LATER).await;
        read_all(
            &env,
            &origin,
            &request("cold", from_to(WINDOW, 2 * WINDOW - 1)),
        )
        .await
    });
    assert_eq!(first.unwrap().1, data[..WINDOW as usize]);
    assert_eq!(second.unwrap().1, data[WINDOW as usize..]);
    settle(&cache).await;
    // Every GET went out before the ETag was known (a fill planned after it sends If-Match):
    // the first reader's first fetch and the rest of its window beside it, and the second
    // reader's whole window while it waited for the lookup. Each byte once, in 2 MiB runs.
    let gets = origin.gets();
    assert!(gets.iter().all(|g| g.if_match.is_none()), "{gets:?}");
    let want: Vec<(u64, u64)> = (0..8).map(|i| (i * 2 * BS, (i + 1) * 2 * BS - 1)).collect();
    assert_eq!(origin.get_spans(), want);
    assert_eq!(early(&metrics), (7, 0), "(early GETs, unused)");
    assert_eq!(origin.heads(), 0);
}

#[monoio::test_all(timer_enabled = true)]
async fn readers_of_one_cold_range_share_one_set_of_early_gets() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern((2 * WINDOW) as usize, 6);
    origin.put("herd", data.clone());
    origin.set_first_byte(FIRST_BYTE);
    let herd = |i: u64| {
        let env = env.clone();
        let origin = origin.clone();
        async move {
            monoio::time::sleep(LATER + Duration::from_millis(i)).await;
            let req = request("herd", from_to(WINDOW, 2 * WINDOW - 1));
            read_all(&env, &origin, &req).await.unwrap().1
        }
    };
    let req = request("herd", from_to(0, WINDOW - 1));
    let (lead, a, b, c, d) = monoio::join!(
        read_all(&env, &origin, &req),
        herd(0),
        herd(1),
        herd(2),
        herd(3)
    );
    assert_eq!(lead.unwrap().1, data[..WINDOW as usize]);
    for got in [a, b, c, d] {
        assert_eq!(got, data[WINDOW as usize..]);
    }
    settle(&cache).await;
    assert_eq!(origin.get_spans().len(), 8, "each byte asked for once");
    assert_eq!(early(&metrics), (7, 0), "(early GETs, unused)");
}

#[monoio::test_all(timer_enabled = true)]
async fn early_gets_for_a_missing_object_are_dropped_and_counted() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    origin.set_first_byte(FIRST_BYTE);
    let open = |range: Option<RangeSpec>, after: Duration| {
        let env = env.clone();
        let origin = origin.clone();
        async move {
            monoio::time::sleep(after).await;
            let req = request("missing", range);
            let fetch = Rc::new(origin.fetch("missing"));
            read::open(&env, fetch, &req).await
        }
    };
    let (first, second) = monoio::join!(
        open(from_to(0, WINDOW - 1), Duration::ZERO),
        open(from_to(WINDOW, 2 * WINDOW - 1), LATER)
    );
    // The origin's own answer (404) is passed through to both; nothing early is served.
    assert!(matches!(first, Ok(Answer::PassThrough)));
    assert!(matches!(second, Ok(Answer::PassThrough)));
    settle(&cache).await;
    // Give the dropped early GETs' tasks their answers.
    monoio::time::sleep(FIRST_BYTE * 2).await;
    assert_eq!(early(&metrics), (7, 7), "(early GETs, unused)");
    assert!(!cache
        .early
        .covers(&request("missing", None).object, 0, 2 * WINDOW));
}

#[monoio::test_all(timer_enabled = true)]
async fn an_early_get_of_a_newer_version_is_never_served_with_the_older_one() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let old = FakeOrigin::pattern((2 * WINDOW) as usize, 1);
    let new = FakeOrigin::pattern((2 * WINDOW) as usize, 2);
    origin.put("changing", old.clone());
    origin.set_first_byte(FIRST_BYTE);
    // The first reader's GETs are answered with the old version; then a writer replaces the
    // object, and the second reader's early GETs are answered with the new one, while the
    // lookup (the first reader's first fetch) says old.
    let req = request("changing", from_to(0, WINDOW - 1));
    let (first, second) = monoio::join!(read_all(&env, &origin, &req), async {
        monoio::time::sleep(LATER / 2).await;
        origin.put("changing", new.clone());
        monoio::time::sleep(LATER / 2).await;
        let req = request("changing", from_to(WINDOW, 2 * WINDOW - 1));
        read_all(&env, &origin, &req).await
    });
    assert_eq!(first.unwrap().1, old[..WINDOW as usize], "one version");
    // The second reader saw its early answers were of another version than the lookup's:
    // the object changed, so it looked it up again and got the new version, whole.
    assert_eq!(second.unwrap().1, new[WINDOW as usize..], "one version");
    assert_eq!(counter(&metrics, |w| w.replans.load(Relaxed)), 1);
    settle(&cache).await;
    // What the cache kept is the new version's bytes.
    let (_, again) = read_all(
        &env,
        &origin,
        &request("changing", from_to(WINDOW, 2 * WINDOW - 1)),
    )
    .await
    .unwrap();
    assert_eq!(again, new[WINDOW as usize..]);
}

#[monoio::test_all(timer_enabled = true)]
async fn read_ahead_leaves_the_bytes_of_early_gets_to_their_readers() {
    let mut config = pipeline::config(BS, 256 << 20, WINDOW, 256 << 20);
    config.prefetch.enabled = true;
    let cache = Arc::new(Cache::new(config));
    let (metrics, origin) = (Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern((8 * WINDOW) as usize, 8);
    origin.put("scan", data.clone());
    origin.set_first_byte(FIRST_BYTE);
    // A scan's first wave: four readers of consecutive windows. Once the lookup answers, the
    // second reader's read opens a read-ahead window over the third and fourth readers'
    // bytes, which their early GETs are already bringing.
    let reader = |i: u64| {
        let (env, origin) = (env.clone(), origin.clone());
        async move {
            monoio::time::sleep(LATER * i as u32).await;
            let req = request("scan", from_to(i * WINDOW, (i + 1) * WINDOW - 1));
            read_all(&env, &origin, &req).await.unwrap().1
        }
    };
    let got = monoio::join!(reader(0), reader(1), reader(2), reader(3));
    for (i, got) in [got.0, got.1, got.2, got.3].into_iter().enumerate() {
        let at = i * WINDOW as usize;
        assert_eq!(got, data[at..at + WINDOW as usize], "reader {i}");
    }
    settle(&cache).await;
    let (sent, unused) = early(&metrics);
    assert_eq!((sent, unused), (15, 0), "(early GETs, unused)");
    // Read-ahead fetched only past the readers' bytes, each byte once.
    disjoint_bytes(&origin.get_spans());
}
