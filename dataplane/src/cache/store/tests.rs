//! The block store against a trivially correct model, plus the edge cases one at a time.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use proptest::prelude::*;

use super::*;

fn key(origin: &str, bucket: &str, object: &str, etag: &str, index: u64) -> BlockKey {
    BlockKey::new(ObjectId::new(origin, bucket, object), etag.into(), index)
}

/// `len` bytes no other serial produces (for `len >= 8`), so a stale block is told apart.
fn block(serial: u64, len: usize) -> Bytes {
    let seed = serial.to_le_bytes();
    (0..len)
        .map(|i| seed[i % 8] ^ (i / 8) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn weight(b: &Bytes) -> u64 {
    b.len() as u64 + ENTRY_OVERHEAD
}

// ---- the model test -------------------------------------------------------------------------

const ORIGINS: [&str; 2] = ["o", "o/a"];
const BUCKETS: [&str; 3] = ["a", "a/b", "ab"];
const OBJECTS: [&str; 4] = ["c", "b/c", "cd", ""];
const ETAGS: [&str; 2] = ["\"e1\"", "\"e2\""];
const INDEXES: u64 = 3;
const PREFIXES: [&str; 5] = ["", "c", "b/", "cd", "x"];

/// A key of the small key space, as indexes into the tables above.
#[derive(Debug, Clone, Copy)]
struct Ix(usize, usize, usize, usize, u64);

impl Ix {
    fn key(self) -> BlockKey {
        key(
            ORIGINS[self.0],
            BUCKETS[self.1],
            OBJECTS[self.2],
            ETAGS[self.3],
            self.4,
        )
    }
}

fn all_keys() -> Vec<BlockKey> {
    let mut keys = Vec::new();
    for o in 0..ORIGINS.len() {
        for b in 0..BUCKETS.len() {
            for k in 0..OBJECTS.len() {
                for e in 0..ETAGS.len() {
                    for i in 0..INDEXES {
                        keys.push(Ix(o, b, k, e, i).key());
                    }
                }
            }
        }
    }
    keys
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Ix, usize),
    Get(Ix),
    Remove(Ix),
    PurgeBucket(usize, usize),
    PurgeObject(usize, usize, usize),
    PurgePrefix(usize, usize, usize),
    PurgeAll,
}

fn ix() -> impl Strategy<Value = Ix> {
    (
        0..ORIGINS.len(),
        0..BUCKETS.len(),
        0..OBJECTS.len(),
        0..ETAGS.len(),
        0..INDEXES,
    )
        .prop_map(|(o, b, k, e, i)| Ix(o, b, k, e, i))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (ix(), prop_oneof![0usize..8, 8usize..400]).prop_map(|(k, len)| Op::Insert(k, len)),
        8 => ix().prop_map(Op::Get),
        1 => ix().prop_map(Op::Remove),
        1 => (0..ORIGINS.len(), 0..BUCKETS.len()).prop_map(|(o, b)| Op::PurgeBucket(o, b)),
        1 => (0..ORIGINS.len(), 0..BUCKETS.len(), 0..OBJECTS.len())
            .prop_map(|(o, b, k)| Op::PurgeObject(o, b, k)),
        1 => (0..ORIGINS.len(), 0..BUCKETS.len(), 0..PREFIXES.len())
            .prop_map(|(o, b, p)| Op::PurgePrefix(o, b, p)),
        1 => Just(Op::PurgeAll),
    ]
}

/// What the model expects of the counters, tallied from the calls' results.
#[derive(Default)]
struct Tally {
    gets: u64,
    hits: u64,
    removed: u64,
}

/// Checks everything observable after one operation: contents against the model, the budget,
/// and the counters against each other.
fn check(store: &BlockStore, model: &HashMap<BlockKey, Bytes>, tally: &Tally, keys: &[BlockKey]) {
    let mut weight_held = 0;
    let mut blocks_held = 0;
    for k in keys {
        if let Some(got) = store.peek(k) {
            // Only what was inserted last under this very key, and not purged since.
            assert_eq!(Some(&got), model.get(k), "{k:?}");
            weight_held += weight(&got);
            blocks_held += 1;
        }
    }
    let s = store.stats();
    assert!(s.bytes <= s.capacity, "{s:?}");
    assert_eq!((s.bytes, s.blocks), (weight_held, blocks_held), "{s:?}");
    assert_eq!(s.hits + s.misses, tally.gets, "{s:?}");
    assert_eq!(s.hits, tally.hits, "{s:?}");
    assert_eq!(s.removals, tally.removed, "{s:?}");
    assert_eq!(
        s.insertions,
        s.evictions + s.replacements + s.removals + s.blocks,
        "every admitted block is held or was counted leaving: {s:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn behaves_like_a_lossy_map(
        capacity in prop_oneof![1 => Just(0u64), 2 => 100u64..2_000, 4 => 2_000u64..20_000],
        block_size in prop_oneof![Just(1u64), Just(64), Just(400)],
        shards in 1usize..8,
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let store = BlockStore::with_options(capacity, block_size, StoreOptions::new().shards(shards));
        prop_assert_eq!(store.is_enabled(), capacity > 0);
        let keys = all_keys();
        let mut model: HashMap<BlockKey, Bytes> = HashMap::new();
        let mut tally = Tally::default();
        for (serial, op) in ops.into_iter().enumerate() {
            match op {
                Op::Insert(k, len) => {
                    let b = block(serial as u64, len);
                    model.insert(k.key(), b.clone());
                    store.insert(k.key(), b);
                }
                Op::Get(k) => {
                    let got = store.get(&k.key());
                    tally.gets += 1;
                    if let Some(got) = got {
                        prop_assert_eq!(Some(&got), model.get(&k.key()));
                        tally.hits += 1;
                    }
                }
                Op::Remove(k) => {
                    let held = store.peek(&k.key()).is_some();
                    prop_assert_eq!(store.remove(&k.key()), held);
                    model.remove(&k.key());
                    tally.removed += held as u64;
                }
                Op::PurgeBucket(o, b) => {
                    let pred = |id: &ObjectId| id.origin() == ORIGINS[o] && id.bucket() == BUCKETS[b];
                    purge(&store, &mut model, &mut tally, &keys, pred);
                }
                Op::PurgeObject(o, b, k) => {
                    let pred = |id: &ObjectId| {
                        id.origin() == ORIGINS[o] && id.bucket() == BUCKETS[b] && id.key() == OBJECTS[k]
                    };
                    purge(&store, &mut model, &mut tally, &keys, pred);
                }
                Op::PurgePrefix(o, b, p) => {
                    let pred = |id: &ObjectId| {
                        id.origin() == ORIGINS[o]
                            && id.bucket() == BUCKETS[b]
                            && id.key().starts_with(PREFIXES[p])
                    };
                    purge(&store, &mut model, &mut tally, &keys, pred);
                }
                Op::PurgeAll => purge(&store, &mut model, &mut tally, &keys, |_| true),
            }
            check(&store, &model, &tally, &keys);
        }
    }

    #[test]
    fn object_ids_round_trip_and_never_collide(
        a in ("\\PC{0,6}", "\\PC{0,6}", "\\PC{0,6}"),
        b in ("\\PC{0,6}", "\\PC{0,6}", "\\PC{0,6}"),
    ) {
        let x = ObjectId::new(&a.0, &a.1, &a.2);
        let y = ObjectId::new(&b.0, &b.1, &b.2);
        prop_assert_eq!((x.origin(), x.bucket(), x.key()), (&*a.0, &*a.1, &*a.2));
        prop_assert_eq!(x == y, a == b);
    }
}

/// Purges `pred` from the store and the model; the store must report exactly the matching
/// blocks it held, and none of them may come back.
fn purge(
    store: &BlockStore,
    model: &mut HashMap<BlockKey, Bytes>,
    tally: &mut Tally,
    keys: &[BlockKey],
    pred: impl Fn(&ObjectId) -> bool,
) {
    let matching: Vec<&BlockKey> = keys.iter().filter(|k| pred(&k.object)).collect();
    let held = matching.iter().filter(|k| store.peek(k).is_some()).count() as u64;
    assert_eq!(store.purge(&pred), held);
    tally.removed += held;
    for k in matching {
        model.remove(k);
        assert_eq!(store.peek(k), None);
    }
}

// ---- edge cases -----------------------------------------------------------------------------

#[test]
fn store_and_keys_cross_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<BlockStore>();
    shared::<BlockKey>();
    shared::<ObjectId>();
}

#[test]
fn disabled_store_misses_and_keeps_nothing() {
    let store = BlockStore::new(0, 1 << 20);
    assert!(!store.is_enabled());
    let k = key("o", "b", "k", "\"e\"", 0);
    store.insert(k.clone(), Bytes::from_static(b"data"));
    assert_eq!(store.get(&k), None);
    assert_eq!(store.peek(&k), None);
    assert!(!store.remove(&k));
    assert_eq!(store.purge(|_| true), 0);
    let s = store.stats();
    assert_eq!(s.misses, 1);
    assert_eq!(
        StoreStats { misses: 0, ..s },
        StoreStats::default(),
        "a disabled store holds and counts nothing but misses"
    );
}

#[test]
fn short_last_block_is_kept_and_weighed_by_its_length() {
    const BLOCK: usize = 4096;
    let store = BlockStore::new(1 << 20, BLOCK as u64);
    let object = ObjectId::new("o", "b", "k");
    let etag: Arc<str> = "\"v1\"".into();
    // A 10,000-byte object: blocks of 4096, 4096 and 1808 bytes.
    let size: usize = 10_000;
    let blocks: Vec<Bytes> = (0..size.div_ceil(BLOCK))
        .map(|i| block(i as u64, BLOCK.min(size - i * BLOCK)))
        .collect();
    for (i, b) in blocks.iter().enumerate() {
        store.insert(
            BlockKey::new(object.clone(), etag.clone(), i as u64),
            b.clone(),
        );
    }
    for (i, b) in blocks.iter().enumerate() {
        let got = store.get(&BlockKey::new(object.clone(), etag.clone(), i as u64));
        assert_eq!(got.as_ref(), Some(b));
    }
    assert_eq!(blocks[2].len(), 1808);
    let s = store.stats();
    assert_eq!(s.blocks, 3);
    assert_eq!(s.bytes, size as u64 + 3 * ENTRY_OVERHEAD);
    assert_eq!(s.block_bytes(), size as u64);
    // Another version of the same object is another set of keys.
    assert_eq!(store.get(&BlockKey::new(object, "\"v2\"".into(), 0)), None);
}

#[test]
fn budget_holds_when_it_does_not_divide_among_shards() {
    let capacity = 1_000_003;
    let store = BlockStore::with_options(capacity, 1000, StoreOptions::new().shards(8));
    for i in 0..10_000u64 {
        let len = 500 + (i as usize * 7919) % 600; // 500..1100 bytes, some over the hint
        store.insert(key("o", "b", "k", "\"e\"", i), block(i, len));
        assert!(store.stats().bytes <= capacity);
    }
    let s = store.stats();
    assert!(s.evictions > 0, "{s:?}");
    assert_eq!(s.insertions, s.evictions + s.blocks, "{s:?}");
    // Most of the budget is in use: the shards' budgets add up to nearly the total.
    assert!(s.bytes > capacity * 9 / 10, "{s:?}");
}

#[test]
fn oversized_block_is_counted_not_kept() {
    let store = BlockStore::new(64 << 10, 1024);
    let k = key("o", "b", "k", "\"e\"", 0);
    store.insert(k.clone(), block(1, 1000));
    assert!(store.peek(&k).is_some());
    // Larger than the whole budget: dropped, and it takes the old block with it rather than
    // leaving a block the caller meant to overwrite.
    store.insert(k.clone(), block(2, 100 << 10));
    assert_eq!(store.peek(&k), None);
    let s = store.stats();
    assert_eq!(
        (s.insertions, s.replacements, s.rejections),
        (1, 1, 1),
        "{s:?}"
    );
    assert_eq!((s.blocks, s.bytes), (0, 0));
}

#[test]
fn reinserting_a_key_replaces_its_block() {
    let store = BlockStore::new(1 << 20, 1024);
    let k = key("o", "b", "k", "\"e\"", 7);
    store.insert(k.clone(), block(1, 100));
    store.insert(k.clone(), block(2, 200));
    assert_eq!(store.get(&k), Some(block(2, 200)));
    let s = store.stats();
    assert_eq!((s.insertions, s.replacements, s.evictions), (2, 1, 0));
    assert_eq!(s.bytes, 200 + ENTRY_OVERHEAD);
}

/// A hot set read over and over survives one pass over twice the budget of other blocks.
#[test]
fn a_scan_does_not_flush_the_hot_set() {
    const BLOCK: usize = 1024;
    let blocks = 256;
    let store = BlockStore::with_options(
        blocks * (BLOCK as u64 + ENTRY_OVERHEAD),
        BLOCK as u64,
        StoreOptions::new().shards(1),
    );
    let hot: Vec<BlockKey> = (0..blocks / 2)
        .map(|i| key("o", "b", "hot", "\"e\"", i))
        .collect();
    let read = |k: &BlockKey| {
        if store.get(k).is_none() {
            store.insert(k.clone(), block(k.index, BLOCK));
        }
    };
    for _ in 0..3 {
        hot.iter().for_each(read);
    }
    for i in 0..2 * blocks {
        read(&key("o", "b", "scan", "\"e\"", i));
    }
    let held = hot.iter().filter(|k| store.peek(k).is_some()).count();
    assert!(
        held * 10 >= hot.len() * 9,
        "{held} of {} hot blocks left",
        hot.len()
    );
}

#[test]
fn concurrent_use_never_mixes_blocks_up() {
    let store = Arc::new(BlockStore::with_options(
        200 * (256 + ENTRY_OVERHEAD),
        256,
        StoreOptions::new().shards(4),
    ));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let object = ObjectId::new("o", "b", "shared");
                for n in 0..20_000u64 {
                    let i = (n * 31 + t * 7) % 500;
                    let k = BlockKey::new(object.clone(), "\"e\"".into(), i);
                    // Every writer stores the same bytes for a key: what a fill would do.
                    match store.get(&k) {
                        Some(b) => assert_eq!(b, block(i, 256)),
                        None => store.insert(k, block(i, 256)),
                    }
                    if n % 5000 == 0 {
                        store.purge(|id| id.key() == "shared");
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let s = store.stats();
    assert!(s.bytes <= s.capacity);
    assert_eq!(s.hits + s.misses, 80_000);
    assert_eq!(
        s.insertions,
        s.evictions + s.replacements + s.removals + s.blocks,
        "{s:?}"
    );
}
