//! The disk tier's index in memory: which slot holds which block, and which slot is reused
//! next. Pure bookkeeping, no I/O: the writer asks it for a slot, writes, then publishes; a
//! reader asks where a block is and checks what it reads against the answer.
//!
//! Replacement is CLOCK over the slots in file order: a hit sets the slot's reference bit;
//! the hand clears set bits as it passes and reuses the first slot whose bit is clear. New
//! blocks go where the hand is, so writes sweep the file sequentially, and a block read since
//! the hand last passed survives one more sweep. A one-pass scan therefore replaces unread
//! blocks first.
//!
//! Public so that `benches/benches/disk_policy.rs` can replay traces through the same
//! replacement policy without I/O; the data plane uses it only through [`super::DiskTier`].

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};

use crate::cache::{BlockKey, ObjectId};

/// Where a block lives: its slot, and the sequence number and length its header must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    /// Slot number.
    pub slot: u32,
    /// Sequence number of the write that put it there.
    pub seq: u64,
    /// Bytes of block data.
    pub len: u32,
}

const SHARDS: usize = 64;

/// The slots' owners and the CLOCK hand.
struct Table {
    owners: Vec<Option<BlockKey>>,
    hand: usize,
    /// Slots emptied out of the hand's order (purged, or a stale copy of a rewritten key):
    /// reused before the hand replaces anything.
    free: Vec<usize>,
    /// Vacant slots whose header is being zeroed: not handed out meanwhile.
    busy: HashSet<usize>,
}

impl Table {
    fn vacate(&mut self, slot: usize) {
        if self.owners[slot].take().is_some() {
            self.free.push(slot);
        }
    }
}

/// The index of a disk tier of `slots` slots. `Send + Sync`; lookups lock one shard briefly.
pub struct Index {
    shards: Box<[Mutex<HashMap<BlockKey, Loc>>]>,
    /// Blocks held per object (any version), to answer "does the disk hold this object?".
    objects: Box<[Mutex<HashMap<ObjectId, u32>>]>,
    refs: Box<[AtomicBool]>,
    table: Mutex<Table>,
    hasher: RandomState,
    /// Bytes of block data held.
    bytes: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the maps consistent before the next can start.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Index {
    /// An empty index over `slots` slots.
    pub fn new(slots: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            objects: (0..SHARDS).map(|_| Mutex::default()).collect(),
            refs: (0..slots).map(|_| AtomicBool::new(false)).collect(),
            table: Mutex::new(Table {
                owners: vec![None; slots],
                hand: 0,
                free: Vec::new(),
                busy: HashSet::new(),
            }),
            hasher: RandomState::new(),
            bytes: AtomicU64::new(0),
        }
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.refs.len()
    }

    fn shard(&self, key: &BlockKey) -> MutexGuard<'_, HashMap<BlockKey, Loc>> {
        lock(&self.shards[self.hasher.hash_one(key) as usize % SHARDS])
    }

    fn object_shard(&self, id: &ObjectId) -> MutexGuard<'_, HashMap<ObjectId, u32>> {
        lock(&self.objects[self.hasher.hash_one(id) as usize % SHARDS])
    }

    /// Where `key` is, marking it referenced (a hit).
    pub fn get(&self, key: &BlockKey) -> Option<Loc> {
        let loc = self.shard(key).get(key).copied()?;
        self.refs[loc.slot as usize].store(true, Relaxed);
        Some(loc)
    }

    /// True when `key` is held, without marking it.
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.shard(key).contains_key(key)
    }

    /// True when some block of `object`, of any version, is held.
    pub fn holds_object(&self, object: &ObjectId) -> bool {
        self.object_shard(object).contains_key(object)
    }

    /// The object id the index already holds for these parts, or a new one: recovery shares
    /// one id between an object's blocks.
    pub fn intern(&self, origin: &str, bucket: &str, key: &str) -> ObjectId {
        let id = ObjectId::new(origin, bucket, key);
        match self.object_shard(&id).get_key_value(&id) {
            Some((held, _)) => held.clone(),
            None => id,
        }
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// True when no block is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of block data held.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Relaxed)
    }

    /// Take vacant `slot` out of circulation while its header is zeroed; false when it is
    /// not vacant (reused since) or already being zeroed.
    pub fn begin_zeroing(&self, slot: u32) -> bool {
        let mut t = lock(&self.table);
        t.owners[slot as usize].is_none() && t.busy.insert(slot as usize)
    }

    /// `slot`'s header is zeroed: it may be handed out again.
    pub fn end_zeroing(&self, slot: u32) {
        let mut t = lock(&self.table);
        if t.busy.remove(&(slot as usize)) {
            t.free.push(slot as usize);
        }
    }

    /// Drop `key` if it is still at `loc` (its slot failed a check); true if it was.
    pub fn drop_if_at(&self, key: &BlockKey, loc: Loc) -> bool {
        let mut s = self.shard(key);
        if s.get(key) != Some(&loc) {
            return false;
        }
        s.remove(key);
        drop(s);
        self.bytes.fetch_sub(u64::from(loc.len), Relaxed);
        lock(&self.table).vacate(loc.slot as usize);
        self.forget_object_block(&key.object);
        true
    }

    /// Take the next slot for a write, by CLOCK: the block it held (if any) leaves the index
    /// at once, so no reader is sent to a slot about to be overwritten. Returns the slot and
    /// the key it held.
    pub fn reserve(&self) -> (u32, Option<BlockKey>) {
        let mut t = lock(&self.table);
        while let Some(slot) = t.free.pop() {
            if t.owners[slot].is_none() && !t.busy.contains(&slot) {
                self.refs[slot].store(false, Relaxed);
                return (slot as u32, None);
            }
        }
        let n = t.owners.len();
        // At most one full sweep clearing bits, then the hand's slot is taken regardless
        // (unless its header is being zeroed: the next one then).
        for _ in 0..n {
            let at = t.hand;
            let taken = t.busy.contains(&at);
            if !taken && (t.owners[at].is_none() || !self.refs[at].swap(false, Relaxed)) {
                break;
            }
            t.hand = (at + 1) % n;
        }
        while t.busy.contains(&t.hand) && t.busy.len() < n {
            t.hand = (t.hand + 1) % n;
        }
        let slot = t.hand;
        t.hand = (slot + 1) % n;
        self.refs[slot].store(false, Relaxed);
        let old = t.owners[slot].take();
        drop(t);
        if let Some(k) = &old {
            self.unlink(k, slot as u32);
        }
        (slot as u32, old)
    }

    /// The block just written to `slot` (reserved by [`Index::reserve`]) is readable. A copy
    /// of the same key in another slot is dropped from the index (the slot is left for reuse).
    pub fn publish(&self, key: BlockKey, loc: Loc) {
        let replaced = self.shard(&key).insert(key.clone(), loc);
        self.bytes.fetch_add(u64::from(loc.len), Relaxed);
        if let Some(old) = replaced {
            self.bytes.fetch_sub(u64::from(old.len), Relaxed);
        }
        match replaced {
            Some(old) if old.slot != loc.slot => lock(&self.table).vacate(old.slot as usize),
            Some(_) => {}
            None => {
                *self
                    .object_shard(&key.object)
                    .entry(key.object.clone())
                    .or_insert(0) += 1
            }
        }
        lock(&self.table).owners[loc.slot as usize] = Some(key);
    }

    /// Recovery: `key` found in `loc.slot`. When another slot holds the same key, the higher
    /// sequence number wins. Also places the hand after the newest write seen.
    pub fn recover(&self, key: BlockKey, loc: Loc) {
        let held = self.shard(&key).get(&key).copied();
        match held {
            Some(h) if h.seq >= loc.seq => return,
            Some(h) => lock(&self.table).vacate(h.slot as usize),
            None => {}
        }
        self.publish(key, loc);
    }

    /// Recovery is over: the hand continues after the slot of the newest write, `newest`.
    pub fn set_hand(&self, newest: Option<u32>) {
        let mut t = lock(&self.table);
        let n = t.owners.len();
        t.hand = newest.map_or(0, |s| (s as usize + 1) % n);
    }

    /// Drop every block whose object matches `pred`; returns their locations (for the caller
    /// to invalidate on disk).
    pub fn remove_matching(&self, pred: impl Fn(&ObjectId) -> bool) -> Vec<Loc> {
        let mut gone = Vec::new();
        for shard in self.shards.iter() {
            let mut s = lock(shard);
            s.retain(|k, loc| {
                let keep = !pred(&k.object);
                if !keep {
                    self.bytes.fetch_sub(u64::from(loc.len), Relaxed);
                    gone.push((k.object.clone(), *loc));
                }
                keep
            });
        }
        let mut t = lock(&self.table);
        for (_, loc) in &gone {
            t.vacate(loc.slot as usize);
        }
        drop(t);
        for (object, _) in &gone {
            self.forget_object_block(object);
        }
        gone.into_iter().map(|(_, loc)| loc).collect()
    }

    /// Forget every block (the tier was disabled).
    pub fn clear(&self) {
        self.remove_matching(|_| true);
    }

    fn unlink(&self, key: &BlockKey, slot: u32) {
        let mut s = self.shard(key);
        if s.get(key).is_some_and(|l| l.slot == slot) {
            if let Some(loc) = s.remove(key) {
                self.bytes.fetch_sub(u64::from(loc.len), Relaxed);
            }
            drop(s);
            self.forget_object_block(&key.object);
        }
    }

    fn forget_object_block(&self, object: &ObjectId) {
        let mut o = self.object_shard(object);
        if let Some(n) = o.get_mut(object) {
            *n -= 1;
            if *n == 0 {
                o.remove(object);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn key(k: &str, i: u64) -> BlockKey {
        BlockKey::new(ObjectId::new("o", "b", k), Arc::from("\"e\""), i)
    }

    fn write(ix: &Index, k: BlockKey, seq: u64) -> (u32, Option<BlockKey>) {
        let (slot, old) = ix.reserve();
        ix.publish(k, Loc { slot, seq, len: 1 });
        (slot, old)
    }

    #[test]
    fn slots_fill_in_order_then_the_oldest_unreferenced_is_replaced() {
        let ix = Index::new(3);
        for i in 0..3 {
            assert_eq!(write(&ix, key("a", i), i), (i as u32, None));
        }
        assert!(ix.holds_object(&ObjectId::new("o", "b", "a")));
        // Block 0 was read: it gets a second chance, block 1 goes.
        assert!(ix.get(&key("a", 0)).is_some());
        assert_eq!(write(&ix, key("b", 0), 3), (1, Some(key("a", 1))));
        assert!(!ix.contains(&key("a", 1)));
        assert!(ix.contains(&key("a", 0)));
        // Next: slot 2 (unreferenced), then slot 0 whose bit was cleared on the way past.
        assert_eq!(write(&ix, key("b", 1), 4).1, Some(key("a", 2)));
        assert_eq!(write(&ix, key("b", 2), 5).1, Some(key("a", 0)));
        assert!(!ix.holds_object(&ObjectId::new("o", "b", "a")));
        assert_eq!(ix.len(), 3);
    }

    #[test]
    fn recovery_keeps_the_newest_copy_and_continues_after_it() {
        let ix = Index::new(4);
        let k = key("x", 0);
        ix.recover(
            k.clone(),
            Loc {
                slot: 2,
                seq: 7,
                len: 1,
            },
        );
        ix.recover(
            k.clone(),
            Loc {
                slot: 0,
                seq: 3,
                len: 1,
            },
        );
        ix.recover(
            key("y", 0),
            Loc {
                slot: 1,
                seq: 5,
                len: 1,
            },
        );
        assert_eq!(ix.get(&k).unwrap().slot, 2);
        ix.set_hand(Some(2));
        assert_eq!(ix.reserve(), (3, None));
        assert_eq!(ix.reserve(), (0, None), "slot 0 held the stale copy: free");
        assert_eq!(ix.reserve().1, Some(key("y", 0)));
    }

    #[test]
    fn purge_removes_blocks_and_frees_their_slots() {
        let ix = Index::new(4);
        write(&ix, key("keep", 0), 1);
        write(&ix, key("drop", 0), 2);
        write(&ix, key("drop", 1), 3);
        let gone = ix.remove_matching(|o| o.key() == "drop");
        assert_eq!(gone.len(), 2);
        assert_eq!(ix.len(), 1);
        assert!(!ix.holds_object(&ObjectId::new("o", "b", "drop")));
        // The freed slots are reused before the hand replaces anything.
        let mut reused = [write(&ix, key("n", 0), 4), write(&ix, key("n", 1), 5)];
        reused.sort_by_key(|r| r.0);
        assert_eq!(reused, [(1, None), (2, None)]);
        assert_eq!(write(&ix, key("n", 2), 6), (3, None));
        assert_eq!(write(&ix, key("n", 3), 7).1, Some(key("keep", 0)));
    }

    #[test]
    fn rewriting_a_key_frees_its_old_slot() {
        let ix = Index::new(4);
        write(&ix, key("k", 0), 1);
        let (slot, _) = write(&ix, key("k", 0), 2);
        assert_eq!(ix.get(&key("k", 0)).unwrap().slot, slot);
        assert_eq!(ix.len(), 1);
        ix.clear();
        assert!(ix.is_empty() && !ix.holds_object(&ObjectId::new("o", "b", "k")));
    }
}
