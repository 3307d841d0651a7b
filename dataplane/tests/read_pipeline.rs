//! The read pipeline (`cache::read`) end to end against an in-process fake origin, on both
//! io drivers: hits, coalescing across workers, re-plans, retries, resumes, cuts, the window
//! and the in-flight budget.

mod support;

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use rangecache_dataplane::cache::range::RangeSpec;
use rangecache_dataplane::cache::read::{self, Answer};
use rangecache_dataplane::cache::Cache;
use rangecache_dataplane::{ErrorKind, Metrics};
use support::fake_origin::{FakeOrigin, Fault};
use support::pipeline::{
    self, assert_stored, counter, env, from_to, read_all, read_on_workers, request, settle,
};

const BS: u64 = 64 * 1024;

fn cache_with(memory: u64, window: u64, inflight: u64) -> Arc<Cache> {
    pipeline::cache(BS, memory, window, inflight)
}

fn cache() -> Arc<Cache> {
    cache_with(64 << 20, 4 * BS, 64 << 20)
}

#[monoio::test_all(timer_enabled = true)]
async fn a_cold_read_then_a_hit_without_the_origin() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern(10 * BS as usize + 123, 1);
    origin.put("obj", data.clone());
    // Starts inside block 1: the first GET starts at the client's first byte, the head of
    // block 1 is fetched beside it.
    let req = request("obj", from_to(BS + 1000, 4 * BS + 5));
    let (partial, got) = read_all(&env, &origin, &req).await.unwrap();
    assert!(partial);
    assert_eq!(got, data[(BS + 1000) as usize..=(4 * BS + 5) as usize]);
    let gets = origin.gets();
    assert!(
        gets.iter()
            .any(|g| matches!(g.range, RangeSpec::FromTo { first, .. } if first == BS + 1000)),
        "{gets:?}"
    );
    settle(&cache).await;
    let before = origin.gets().len();
    let (_, again) = read_all(&env, &origin, &req).await.unwrap();
    assert_eq!(again, got);
    // The whole of block 1 is cached too: a read from its start is a hit.
    let (_, head) = read_all(&env, &origin, &request("obj", from_to(BS, BS + 999)))
        .await
        .unwrap();
    assert_eq!(head, data[BS as usize..(BS + 1000) as usize]);
    assert_eq!(origin.gets().len(), before, "hits asked the origin");
    assert!(counter(&metrics, |m| m.cache_block_hits.load(Relaxed)) >= 5);
}

#[monoio::test_all(timer_enabled = true)]
async fn a_whole_object_read_and_a_suffix() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern(3 * BS as usize + 17, 2);
    origin.put("whole", data.clone());
    let (partial, got) = read_all(&env, &origin, &request("whole", None))
        .await
        .unwrap();
    assert!(!partial);
    assert_eq!(got, data);
    let (_, tail) = read_all(
        &env,
        &origin,
        &request("whole", Some(RangeSpec::Suffix { len: 100 })),
    )
    .await
    .unwrap();
    assert_eq!(tail, data[data.len() - 100..]);
    settle(&cache).await;
}

#[test]
fn one_miss_is_fetched_once_for_readers_on_two_workers() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(2)), FakeOrigin::new());
    let data = FakeOrigin::pattern(8 * BS as usize, 3);
    origin.put("shared", data.clone());
    origin.set_chunk_delay(Duration::from_millis(2));
    let req = request("shared", from_to(0, 8 * BS - 1));
    for got in read_on_workers(&cache, &metrics, &origin, 2, &req) {
        assert_eq!(got, data);
    }
    let fetched: u64 = origin.bytes_sent.load(Relaxed);
    assert_eq!(
        fetched,
        8 * BS,
        "every byte fetched once, whichever worker led; origin saw {:?}",
        origin.gets()
    );
    assert!(origin.heads() == 0);
}

#[monoio::test_all(timer_enabled = true)]
async fn a_changed_object_is_replanned_once_and_served_whole_from_its_new_version() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    origin.put("v", FakeOrigin::pattern(4 * BS as usize, 4));
    read_all(&env, &origin, &request("v", from_to(0, 10)))
        .await
        .unwrap();
    settle(&cache).await;
    // Replaced behind the cache's back: the cached metadata still names the old ETag.
    let new = FakeOrigin::pattern(4 * BS as usize, 5);
    let new_etag = origin.put("v", new.clone());
    let (_, got) = read_all(&env, &origin, &request("v", from_to(2 * BS, 3 * BS + 9)))
        .await
        .unwrap();
    assert_eq!(got, new[2 * BS as usize..=(3 * BS + 9) as usize]);
    assert_eq!(counter(&metrics, |m| m.replans.load(Relaxed)), 1);
    let last = origin.gets().pop().unwrap();
    assert!(last.if_match.is_none() || last.if_match.as_deref() == Some(new_etag.as_str()));
    settle(&cache).await;
}

#[monoio::test_all(timer_enabled = true)]
async fn transient_failures_before_the_first_byte_are_retried() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern(4 * BS as usize, 6);
    origin.put("flaky", data.clone());
    origin.push_fault(Fault::Status(503));
    origin.push_fault(Fault::Refuse);
    let (_, got) = read_all(&env, &origin, &request("flaky", from_to(100, 3 * BS)))
        .await
        .unwrap();
    assert_eq!(got, data[100..=(3 * BS) as usize]);
    assert_eq!(counter(&metrics, |m| m.origin_retries.load(Relaxed)), 2);
    // The block's head is still being fetched in the background: let it finish before the
    // next faults are queued, so they meet the next read.
    settle(&cache).await;
    // Four failures in a row are final: the client gets an error, not a hang.
    for _ in 0..4 {
        origin.push_fault(Fault::Status(500));
    }
    let err = read_all(&env, &origin, &request("flaky2", from_to(0, 10))).await;
    assert!(err.is_err());
    settle(&cache).await;
}

#[monoio::test_all(timer_enabled = true)]
async fn a_body_cut_mid_way_is_resumed_from_the_next_byte_with_if_match() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern(6 * BS as usize, 7);
    let etag = origin.put("cut", data.clone());
    origin.push_fault(Fault::CutAfter(BS as usize + 5000));
    let (_, got) = read_all(&env, &origin, &request("cut", from_to(0, 6 * BS - 1)))
        .await
        .unwrap();
    assert_eq!(got, data);
    assert_eq!(counter(&metrics, |m| m.fill_resumes.load(Relaxed)), 1);
    // The resume is the one GET that starts mid-block, at the byte after the cut; with the
    // cut GET it fetched each byte once.
    let gets = origin.gets();
    let resumed: Vec<_> = gets
        .iter()
        .filter(|g| matches!(g.range, RangeSpec::FromTo { first, .. } if first % BS != 0))
        .collect();
    assert_eq!(resumed.len(), 1, "{gets:?}");
    assert_eq!(resumed[0].if_match.as_deref(), Some(etag.as_str()));
    assert!(
        matches!(resumed[0].range, RangeSpec::FromTo { first, .. } if first == BS + 5000),
        "{resumed:?}"
    );
    settle(&cache).await;
    assert_eq!(
        origin.bytes_sent.load(Relaxed),
        6 * BS,
        "every byte fetched once"
    );
}

#[monoio::test_all(timer_enabled = true)]
async fn a_read_into_place_that_times_out_never_serves_what_it_writes_late() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern(4 * BS as usize, 5);
    origin.put("lost", data.clone());
    // Mid-way through block 1 a read into the block's buffer times out; the fake then writes
    // 0xEE over the rest of that buffer, as a kernel finishing the abandoned read could.
    origin.push_fault(Fault::LoseAfter(BS as usize + 5000));
    let req = request("lost", from_to(0, 4 * BS - 1));
    let (_, got) = read_all(&env, &origin, &req).await.unwrap();
    assert_eq!(got, data, "the response");
    assert_eq!(counter(&metrics, |m| m.fill_resumes.load(Relaxed)), 1);
    assert_stored(&env, &cache, &origin, &req, &data).await;
}

#[monoio::test_all(timer_enabled = true)]
async fn bodies_read_as_pieces_fill_the_same_blocks_as_bodies_read_into_place() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern(3 * BS as usize + 100, 6);
    origin.put("pieces", data.clone());
    // Like a chunked origin body: only `next`'s pieces, each copied into the block.
    origin.set_in_place(false);
    origin.push_fault(Fault::CutAfter(BS as usize / 2));
    let req = request("pieces", from_to(100, 3 * BS + 99));
    let (_, got) = read_all(&env, &origin, &req).await.unwrap();
    assert_eq!(got, data.slice(100..));
    assert_stored(&env, &cache, &origin, &req, &data[100..]).await;
}

#[monoio::test_all(timer_enabled = true)]
async fn a_version_change_mid_body_cuts_the_response_without_new_bytes() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let old = FakeOrigin::pattern(6 * BS as usize, 8);
    origin.put("swap", old.clone());
    // The first GET sends 2.5 blocks, the object is replaced, the body resets; the resume's
    // If-Match meets the new ETag.
    origin.push_fault(Fault::ReplaceAfter(2 * BS as usize + BS as usize / 2));
    let (kind, got) = read_all(&env, &origin, &request("swap", from_to(0, 6 * BS - 1)))
        .await
        .unwrap_err();
    assert_eq!(kind, ErrorKind::Changed);
    assert!(!got.is_empty() && got.len() < old.len());
    assert_eq!(
        got,
        old[..got.len()],
        "only the old version's bytes were handed out"
    );
    settle(&cache).await;
    // The next read sees the new version whole.
    let new = origin.fetch("swap");
    drop(new);
    let (_, fresh) = read_all(&env, &origin, &request("swap", from_to(0, 6 * BS - 1)))
        .await
        .unwrap();
    assert_eq!(fresh, FakeOrigin::pattern(6 * BS as usize, 99));
    settle(&cache).await;
}

#[monoio::test_all(timer_enabled = true)]
async fn a_slow_client_holds_at_most_its_window() {
    let window = 4 * BS;
    let (cache, metrics, origin) = (
        cache_with(2 * BS, window, 64 << 20),
        Arc::new(Metrics::new(1)),
        FakeOrigin::new(),
    );
    let env = env(&cache, &metrics, 0);
    let size = 256 * BS;
    origin.put("big", FakeOrigin::pattern(size as usize, 9));
    let req = request("big", from_to(0, size - 1));
    let mut body = pipeline::open_body(&env, &origin, &req).await;
    let mut taken = 0u64;
    for _ in 0..40 {
        let p = body.next().await.unwrap().unwrap();
        taken += p.len() as u64;
        // A slow reader: the origin gets time to run ahead if anything let it.
        monoio::time::sleep(Duration::from_millis(3)).await;
        let sent = origin.bytes_sent.load(Relaxed);
        assert!(
            sent <= taken + window + BS,
            "origin sent {sent} bytes for a client that took {taken} (window {window})"
        );
        assert!(cache.budget.stats().used <= window + BS);
    }
    drop(body);
    settle(&cache).await;
    assert!(origin.bytes_sent.load(Relaxed) < size / 2);
}

#[monoio::test_all(timer_enabled = true)]
async fn a_reader_that_goes_away_mid_fill_leaves_the_others_their_bytes() {
    let (cache, metrics, origin) = (cache(), Arc::new(Metrics::new(1)), FakeOrigin::new());
    let env = env(&cache, &metrics, 0);
    let data = FakeOrigin::pattern(8 * BS as usize, 10);
    origin.put("drop", data.clone());
    origin.set_chunk_delay(Duration::from_millis(3));
    let req = request("drop", from_to(0, 8 * BS - 1));
    let fetch = Rc::new(origin.fetch("drop"));
    let Answer::Object {
        body: Some(mut leader),
        ..
    } = read::open(&env, fetch, &req).await.unwrap()
    else {
        panic!("body expected");
    };
    leader.next().await.unwrap().unwrap();
    // A second reader joins the fills in flight, then the first goes away.
    let (env2, origin2) = (env.clone(), origin.clone());
    let follower = monoio::spawn(async move {
        read_all(&env2, &origin2, &request("drop", from_to(0, 4 * BS - 1))).await
    });
    monoio::time::sleep(Duration::from_millis(5)).await;
    drop(leader);
    let (_, got) = follower.await.unwrap();
    assert_eq!(got, data[..4 * BS as usize]);
    settle(&cache).await;
    assert!(cache.inflight.is_empty());
    assert_eq!(cache.budget.stats().used, 0);
}

#[monoio::test_all(timer_enabled = true)]
async fn a_spent_budget_makes_new_misses_wait_then_fail_busy() {
    let (cache, metrics, origin) = (
        cache_with(64 << 20, 2 * BS, 2 * BS),
        Arc::new(Metrics::new(1)),
        FakeOrigin::new(),
    );
    let env = env(&cache, &metrics, 0);
    origin.put("a", FakeOrigin::pattern(16 * BS as usize, 11));
    origin.put("b", FakeOrigin::pattern(16 * BS as usize, 12));
    // Slow pieces smaller than a block: `a`'s first piece leaves its first block in its window.
    origin.set_chunk(16 * 1024);
    origin.set_chunk_delay(Duration::from_millis(5));
    let fetch = Rc::new(origin.fetch("a"));
    // `a` takes its first piece and stops reading: its window holds the whole budget.
    let Answer::Object {
        body: Some(mut a), ..
    } = read::open(&env, fetch, &request("a", from_to(0, 16 * BS - 1)))
        .await
        .unwrap()
    else {
        panic!("body expected");
    };
    a.next().await.unwrap().unwrap();
    assert_eq!(cache.budget.stats().used, 2 * BS);
    let mut b = request("b", from_to(0, 16 * BS - 1));
    b.budget_wait = Duration::from_millis(50);
    let (kind, _) = read_all(&env, &origin, &b).await.unwrap_err();
    assert_eq!(kind, ErrorKind::Busy);
    let stats = cache.budget.stats();
    assert!(stats.waits >= 1 && stats.timeouts >= 1, "{stats:?}");
    // Once `a` goes away, `b` gets its bytes.
    drop(a);
    settle(&cache).await;
    b.budget_wait = Duration::from_secs(5);
    let (_, got) = read_all(&env, &origin, &b).await.unwrap();
    assert_eq!(got.len(), 16 * BS as usize);
    settle(&cache).await;
}
