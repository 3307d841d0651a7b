//! The process-wide budget for bytes of block fills in flight (`cache.inflight_memory`).
//!
//! Every block a read claims to fill is charged here before it is claimed, and the charge is
//! returned when the block has been filled *and* its reader has taken it. So however many
//! clients read, and however slowly, the bytes fetched from origins and not yet handed over
//! stay under the budget. A reader that finds the budget spent waits for it (bounded), and
//! both the waits and the time-outs are counted.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use crate::error::{Error, ErrorKind, Side};

/// Bytes charged against a fixed capacity, with waiters woken when charges come back.
/// `Send + Sync`: one per process, shared by every worker.
pub struct Budget {
    capacity: u64,
    used: AtomicU64,
    waiters: Mutex<Vec<Waker>>,
    waits: AtomicU64,
    timeouts: AtomicU64,
}

/// A charge against a [`Budget`], returned when dropped.
pub struct Permit {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::AcqRel);
        let waiters = std::mem::take(&mut *self.budget.lock_waiters());
        waiters.into_iter().for_each(Waker::wake);
    }
}

impl Permit {
    /// The bytes this permit holds.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// What a [`Budget`] has seen, read at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BudgetStats {
    /// The capacity in bytes.
    pub capacity: u64,
    /// Bytes charged now.
    pub used: u64,
    /// Charges that had to wait for bytes to come back.
    pub waits: u64,
    /// Waits that ran out of time (the reader was answered `503 SlowDown` or cut).
    pub timeouts: u64,
}

impl Budget {
    /// A budget of `capacity` bytes.
    pub fn new(capacity: u64) -> Arc<Self> {
        Arc::new(Self {
            capacity,
            used: AtomicU64::new(0),
            waiters: Mutex::new(Vec::new()),
            waits: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
        })
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        // A list of wakers is consistent after any push or take: poisoning changes nothing.
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Charge `bytes` if they fit now. A charge larger than the whole capacity fits only into
    /// an empty budget, so it can never wait forever.
    pub fn try_acquire(self: &Arc<Self>, bytes: u64) -> Option<Permit> {
        self.try_acquire_within(bytes, self.capacity)
    }

    /// Charge `bytes` only if the charges then stay within `limit` (and the capacity): how
    /// optional work (prefetch) leaves room for the reads clients wait on.
    pub fn try_acquire_within(self: &Arc<Self>, bytes: u64, limit: u64) -> Option<Permit> {
        let limit = limit.min(self.capacity);
        let mut used = self.used.load(Ordering::Acquire);
        loop {
            let fits = used + bytes <= limit || (used == 0 && limit == self.capacity);
            if !fits {
                return None;
            }
            match self.used.compare_exchange_weak(
                used,
                used + bytes,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return Some(Permit {
                        budget: self.clone(),
                        bytes,
                    })
                }
                Err(now) => used = now,
            }
        }
    }

    /// Charge `bytes`, waiting up to `wait` for them to come back if the budget is spent.
    /// Fails with [`ErrorKind::Busy`] when the wait ran out.
    pub async fn acquire(self: &Arc<Self>, bytes: u64, wait: Duration) -> Result<Permit, Error> {
        if let Some(p) = self.try_acquire(bytes) {
            return Ok(p);
        }
        self.waits.fetch_add(1, Ordering::Relaxed);
        let waited = monoio::time::timeout(
            wait,
            poll_fn(|cx| {
                if let Some(p) = self.try_acquire(bytes) {
                    return Poll::Ready(p);
                }
                self.lock_waiters().push(cx.waker().clone());
                // A permit dropped between the first try and the push woke nobody: try again.
                match self.try_acquire(bytes) {
                    Some(p) => Poll::Ready(p),
                    None => Poll::Pending,
                }
            }),
        )
        .await;
        waited.map_err(|_| {
            self.timeouts.fetch_add(1, Ordering::Relaxed);
            Error::new(
                ErrorKind::Busy,
                Side::Internal,
                "in-flight fill budget (cache.inflight_memory) stayed spent",
            )
        })
    }

    /// The counters now.
    pub fn stats(&self) -> BudgetStats {
        BudgetStats {
            capacity: self.capacity,
            used: self.used.load(Ordering::Relaxed),
            waits: self.waits.load(Ordering::Relaxed),
            timeouts: self.timeouts.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::block_on;

    #[test]
    fn charges_fit_the_capacity_and_come_back_when_dropped() {
        let b = Budget::new(10);
        let p = b.try_acquire(6).unwrap();
        assert!(b.try_acquire(6).is_none());
        let q = b.try_acquire(4).unwrap();
        assert_eq!(b.stats().used, 10);
        drop((p, q));
        assert_eq!(b.stats().used, 0);
        // Larger than the whole budget: only alone.
        let big = b.try_acquire(50).unwrap();
        assert!(b.try_acquire(1).is_none());
        drop(big);
    }

    #[test]
    fn a_waiter_gets_the_bytes_another_thread_returns_or_times_out() {
        let b = Budget::new(10);
        let held = b.try_acquire(10).unwrap();
        let b2 = b.clone();
        let t = std::thread::spawn(move || {
            block_on(async move {
                b2.acquire(5, Duration::from_secs(10))
                    .await
                    .map(|p| p.bytes())
            })
        });
        std::thread::sleep(Duration::from_millis(30));
        drop(held);
        assert_eq!(t.join().unwrap().unwrap(), 5);
        let _held = b.try_acquire(10).unwrap();
        let err = block_on(b.acquire(5, Duration::from_millis(20)))
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::Busy);
        let s = b.stats();
        assert_eq!((s.waits, s.timeouts), (2, 1));
    }
}
