//! Which blocks the disk tier takes, and when: on their **second access**. A block fetched
//! from the origin for the first time is only remembered (by the hash of its key, in a FIFO
//! window as long as the disk has slots); it is written when it is read again, from RAM (a
//! hit) or from the origin (a second miss). One-pass scans therefore never reach the disk,
//! the disk writes about a quarter of what admitting every fill would, and what any reuse
//! touched is on disk for the next start.
//!
//! `benches/benches/disk_policy.rs` compares this with admitting every fill, admitting on RAM
//! eviction and admitting on a second miss, on Zipf traces with a scan and with a restart.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard};

use crate::cache::BlockKey;

const SHARDS: usize = 16;
const MIN_PER_SHARD: usize = 256;

/// Key hashes in arrival order, at most `cap` of them: the oldest is forgotten first.
#[derive(Default)]
struct Fifo {
    set: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Fifo {
    /// Remember `h` (once), forgetting the oldest beyond `cap`.
    fn insert(&mut self, h: u64, cap: usize) {
        if self.set.insert(h) {
            self.order.push_back(h);
        }
        while self.order.len() > cap {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
    }

    /// Forget `h`; true when it was remembered. (Its place in `order` goes with the oldest.)
    fn remove(&mut self, h: u64) -> bool {
        self.set.remove(&h)
    }
}

#[derive(Default)]
struct Shard {
    /// Keys accessed once, oldest first.
    seen: Fifo,
    /// Keys queued for writing.
    pending: HashSet<u64>,
    /// Keys whose write was dropped and not written since, oldest first: a block offered
    /// again and dropped again is one drop, not one per offer.
    dropped: Fifo,
}

/// The admission filter. `Send + Sync`; each call locks one shard briefly.
pub(super) struct Admission {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
}

/// A key's identity in the filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ticket(u64);

impl Admission {
    /// A filter remembering up to `window` keys accessed once.
    pub(super) fn new(window: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            // Keys hash unevenly over shards: room for twice a shard's share, and for a few
            // hundred keys however small the disk (a u64 each).
            per_shard: (2 * window.div_ceil(SHARDS)).max(MIN_PER_SHARD),
            hasher: RandomState::new(),
        }
    }

    pub(super) fn ticket(&self, key: &BlockKey) -> Ticket {
        Ticket(self.hasher.hash_one(key))
    }

    fn shard(&self, t: Ticket) -> MutexGuard<'_, Shard> {
        self.shards[t.0 as usize % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// A block came from the origin: true when it should be written now (its second access).
    pub(super) fn on_fill(&self, t: Ticket) -> bool {
        let mut s = self.shard(t);
        if s.pending.contains(&t.0) {
            return false;
        }
        if s.seen.remove(t.0) {
            s.pending.insert(t.0);
            return true;
        }
        self.remember(&mut s, t);
        false
    }

    /// Note `t` as accessed once, forgetting the oldest beyond the window.
    fn remember(&self, s: &mut Shard, t: Ticket) {
        s.seen.insert(t.0, self.per_shard);
    }

    /// A block not on disk was read from RAM: true when it should be written now (not queued
    /// already).
    pub(super) fn on_hit(&self, t: Ticket) -> bool {
        let mut s = self.shard(t);
        s.seen.remove(t.0);
        s.pending.insert(t.0)
    }

    /// The block's write is done: it may be offered again.
    pub(super) fn settled(&self, t: Ticket) {
        let mut s = self.shard(t);
        s.pending.remove(&t.0);
        s.dropped.remove(t.0);
    }

    /// The block's write was dropped (queue full): it was accessed twice, so its next access
    /// offers it again rather than starting over. True when this is the block's first drop
    /// since it was last written (the one to count).
    pub(super) fn dropped(&self, t: Ticket) -> bool {
        let mut s = self.shard(t);
        s.pending.remove(&t.0);
        self.remember(&mut s, t);
        let first = !s.dropped.set.contains(&t.0);
        s.dropped.insert(t.0, self.per_shard);
        first
    }
}

/// Which disk hits for *part* of a block promote the block into RAM: one whose part was read
/// before, within about as many distinct blocks as RAM holds. A range of a block read once is
/// read from disk alone (only the chunks it covers, not the whole block); the block is read
/// whole and promoted on its second partial read while it would still be in RAM, i.e. when
/// promoting it the first time would have made that read a RAM hit.
pub(super) struct Reuse {
    shards: Box<[Mutex<Fifo>]>,
    per_shard: usize,
    hasher: RandomState,
}

impl Reuse {
    /// A filter remembering about `window` blocks (the RAM tier's capacity in blocks): no
    /// more than that, so that a block is promoted only when RAM would still have held it
    /// (remembering more promotes blocks RAM evicts before their next read, each a whole-block
    /// disk read for a part's worth of use).
    pub(super) fn new(window: usize) -> Self {
        let shards = SHARDS.min(window.max(1));
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            per_shard: window.max(1).div_ceil(shards),
            hasher: RandomState::new(),
        }
    }

    /// Part of block `key` is read from disk: true when a part of it was read recently (it
    /// should now be read whole and promoted); otherwise the read is remembered.
    pub(super) fn again(&self, key: &BlockKey) -> bool {
        let h = self.hasher.hash_one(key);
        let mut s = self.shards[h as usize % self.shards.len()]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if s.remove(h) {
            return true;
        }
        s.insert(h, self.per_shard);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::ObjectId;
    use std::sync::Arc;

    fn t(a: &Admission, i: u64) -> Ticket {
        a.ticket(&BlockKey::new(
            ObjectId::new("o", "b", "k"),
            Arc::from("e"),
            i,
        ))
    }

    #[test]
    fn a_block_is_written_on_its_second_access_once() {
        let a = Admission::new(64);
        assert!(!a.on_fill(t(&a, 1)), "first fill: remembered only");
        assert!(a.on_fill(t(&a, 1)), "second fill: written");
        assert!(!a.on_fill(t(&a, 1)), "queued already");
        assert!(!a.on_hit(t(&a, 1)), "queued already");
        a.settled(t(&a, 1));
        assert!(!a.on_fill(t(&a, 2)));
        assert!(a.on_hit(t(&a, 2)), "a RAM hit is the second access");
        assert!(!a.on_hit(t(&a, 2)));
        assert!(a.dropped(t(&a, 2)), "the first drop counts");
        assert!(
            a.on_fill(t(&a, 2)),
            "a dropped write is offered again at the next access"
        );
        assert!(!a.dropped(t(&a, 2)), "dropped again: the same drop");
        assert!(a.on_hit(t(&a, 2)));
        a.settled(t(&a, 2));
        assert!(a.on_hit(t(&a, 2)), "written, then offered again");
        assert!(a.dropped(t(&a, 2)), "a drop after a write counts again");
    }

    #[test]
    fn a_part_read_again_within_the_window_promotes_once() {
        let r = Reuse::new(64);
        let k = |i: u64| BlockKey::new(ObjectId::new("o", "b", "k"), Arc::from("e"), i);
        assert!(!r.again(&k(1)), "first part read: from disk alone");
        assert!(r.again(&k(1)), "second: read whole and promoted");
        assert!(!r.again(&k(1)), "forgotten once promoted");
        // Read again only after many other blocks (far more than RAM holds): not promoted.
        assert!(!r.again(&k(2)));
        for i in 100..100 + 64 * 64 {
            r.again(&k(i));
        }
        assert!(!r.again(&k(2)), "beyond the window: a first read again");
        // A RAM tier of 4 blocks: at most 4 remembered (one per shard), so 64 other parts
        // later it is forgotten (the odds that none of them lands in its shard: 0.75^64).
        let small = Reuse::new(4);
        assert_eq!(small.shards.len() * small.per_shard, 4);
        assert!(!small.again(&k(7)));
        for i in 200..264 {
            small.again(&k(i));
        }
        assert!(!small.again(&k(7)), "RAM would have evicted it");
    }

    #[test]
    fn the_window_forgets_the_oldest() {
        let a = Admission::new(SHARDS);
        // MIN_PER_SHARD per shard: this many other keys push key 0 out of its shard.
        assert!(!a.on_fill(t(&a, 0)));
        for i in 1..=(SHARDS * MIN_PER_SHARD * 4) as u64 {
            a.on_fill(t(&a, i));
        }
        assert!(!a.on_fill(t(&a, 0)), "forgotten: a first access again");
    }
}
