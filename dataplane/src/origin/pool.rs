//! A per-worker pool of idle keep-alive connections to origins.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::OriginStream;
use crate::net::BufStream;

/// A pooled connection and when it went idle.
type IdleConn = (Instant, BufStream<OriginStream>);

/// Idle origin connections of one worker, keyed by origin endpoint. Not `Send`: each worker
/// owns its pool, so no lock is ever taken.
#[derive(Default)]
pub struct Pool {
    idle: RefCell<HashMap<String, Vec<IdleConn>>>,
}

impl Pool {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most recently returned idle connection for `key` that is younger than `max_idle_age`
    /// and still looks open; stale ones found on the way are dropped (closed).
    pub fn take(&self, key: &str, max_idle_age: Duration) -> Option<BufStream<OriginStream>> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(key)?;
        while let Some((since, conn)) = list.pop() {
            if since.elapsed() < max_idle_age && conn.get_ref().is_idle_usable() {
                return Some(conn);
            }
        }
        None
    }

    /// Return a connection whose last response was read completely. Keeps at most `max_idle`
    /// per key (the oldest is closed first).
    pub fn put(&self, key: &str, mut conn: BufStream<OriginStream>, max_idle: usize) {
        // Leftover bytes would be read as the next response: such a connection is unusable.
        if max_idle == 0 || !conn.buffer().is_empty() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        let list = idle.entry(key.to_owned()).or_default();
        if list.len() >= max_idle {
            list.remove(0);
        }
        list.push((Instant::now(), conn));
    }

    /// Number of idle connections held (all keys).
    pub fn idle_count(&self) -> usize {
        self.idle.borrow().values().map(Vec::len).sum()
    }
}
