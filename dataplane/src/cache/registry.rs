//! A sharded registry of work in flight, shared by all workers: the first caller for a key
//! leads (does the work), later callers follow (wait on the leader's result).
//!
//! Used for block fills and for metadata lookups. Locks are held only to look up or insert;
//! never across an await.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::{Arc, Mutex, MutexGuard};

const SHARDS: usize = 64;

/// One shard: the keys in flight that hash to it.
type Shard<K, V> = HashMap<K, Arc<V>>;

/// The caller's role for one key.
pub enum Role<V, R> {
    /// The work is already done: here is its result (from `recheck`).
    Ready(R),
    /// Someone else is doing it: wait on this.
    Follow(Arc<V>),
    /// Do it, publish the result through this, then [`Registry::release`] the key.
    Lead(Arc<V>),
}

/// Keys with work in flight, each with the shared state its followers wait on.
pub struct Registry<K, V> {
    shards: Box<[Mutex<Shard<K, V>>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl<K: Hash + Eq + Clone, V> Default for Registry<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone, V> Registry<K, V> {
    /// An empty registry.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, Shard<K, V>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // Only inserts and removals happen under the lock: a poisoned map is still consistent.
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follow the work in flight for `key`; else return `recheck()`'s result if it has one
    /// (the work finished since the caller last looked); else lead with `make()`.
    ///
    /// Leaders publish their result where `recheck` finds it *before* they release the key,
    /// and `recheck` runs under the registry lock, so two overlapping callers never both lead.
    pub fn claim<R>(
        &self,
        key: &K,
        recheck: impl FnOnce() -> Option<R>,
        make: impl FnOnce() -> V,
    ) -> Role<V, R> {
        let mut shard = self.shard(key);
        if let Some(v) = shard.get(key) {
            return Role::Follow(v.clone());
        }
        if let Some(r) = recheck() {
            return Role::Ready(r);
        }
        let v = Arc::new(make());
        shard.insert(key.clone(), v.clone());
        Role::Lead(v)
    }

    /// Remove `key` if it still maps to `v` (the leader is done or gave up).
    pub fn release(&self, key: &K, v: &Arc<V>) {
        let mut shard = self.shard(key);
        if shard.get(key).is_some_and(|cur| Arc::ptr_eq(cur, v)) {
            shard.remove(key);
        }
    }

    /// True when work for `key` is in flight now.
    pub fn contains(&self, key: &K) -> bool {
        self.shard(key).contains_key(key)
    }

    /// Keys in flight now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    /// True when nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leader_then_followers_then_ready() {
        let reg: Registry<u32, u8> = Registry::new();
        let lead = match reg.claim(&1, || None::<u8>, || 7) {
            Role::Lead(v) => v,
            _ => panic!("first caller leads"),
        };
        assert!(
            matches!(reg.claim(&1, || Some(0u8), || 9), Role::Follow(v) if Arc::ptr_eq(&v, &lead))
        );
        reg.release(&1, &lead);
        assert!(matches!(reg.claim(&1, || Some(5u8), || 9), Role::Ready(5)));
        assert!(reg.is_empty());
    }
}
