//! rangecache's prefetch accounting over a round: what it fetched ahead, how much of that a
//! client then read (the hit share), and how much it fetched for nothing (the over-fetch);
//! and its early GETs (sent for cold objects before their ETag was known), and how many of
//! those it dropped unused.

use serde::Serialize;

use crate::units::fmt_bytes;

/// Deltas of rangecache's prefetch counters (`/metrics`) over a round or a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PrefetchCounts {
    /// `rangecache_prefetch_bytes_total`: bytes fetched by prefetch.
    pub fetched: u64,
    /// `rangecache_prefetch_used_bytes_total`: of those, bytes a client later read.
    pub used: u64,
    /// `rangecache_prefetch_unread_evicted_bytes_total`: prefetched bytes that left the cache
    /// (evicted or purged) before anyone read them.
    pub unread_evicted: u64,
    /// `rangecache_prefetch_cancelled_total`: blocks a prefetch wanted and did not fetch.
    pub cancelled: u64,
}

impl PrefetchCounts {
    /// Counter-wise `self - earlier`.
    pub fn since(&self, earlier: &PrefetchCounts) -> PrefetchCounts {
        PrefetchCounts {
            fetched: self.fetched.saturating_sub(earlier.fetched),
            used: self.used.saturating_sub(earlier.used),
            unread_evicted: self.unread_evicted.saturating_sub(earlier.unread_evicted),
            cancelled: self.cancelled.saturating_sub(earlier.cancelled),
        }
    }

    /// Counter-wise sum.
    pub fn add(&mut self, other: &PrefetchCounts) {
        self.fetched += other.fetched;
        self.used += other.used;
        self.unread_evicted += other.unread_evicted;
        self.cancelled += other.cancelled;
    }

    /// Prefetched bytes no client read by the end of the round: prefetched − used. (Not the
    /// evicted-unread counter: a block still cached at the end of a round is unread too, and
    /// a round that reads every object once never comes back for it.)
    pub fn unread(&self) -> u64 {
        self.fetched.saturating_sub(self.used)
    }

    /// Used ÷ prefetched (`None` when nothing was prefetched).
    pub fn hit_share(&self) -> Option<f64> {
        (self.fetched > 0).then(|| self.used as f64 / self.fetched as f64)
    }

    /// Unread ÷ prefetched (`None` when nothing was prefetched).
    pub fn over_fetch(&self) -> Option<f64> {
        (self.fetched > 0).then(|| self.unread() as f64 / self.fetched as f64)
    }

    /// One line: "prefetched 96 MiB, used 92.1%, over-fetch 7.9% (unread 7.6 MiB), ...".
    pub fn line(&self) -> String {
        let pct = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{:.1}%", v * 100.0));
        format!(
            "prefetched {}, used {} (hit share), over-fetch {} (unread = prefetched - used: {}), evicted unread {}, cancelled {} blocks",
            fmt_bytes(self.fetched),
            pct(self.hit_share()),
            pct(self.over_fetch()),
            fmt_bytes(self.unread()),
            fmt_bytes(self.unread_evicted),
            self.cancelled
        )
    }
}

/// Deltas of rangecache's early-GET counters (`/metrics`) over a round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct EarlyCounts {
    /// `rangecache_early_fetches_total`.
    pub sent: u64,
    /// `rangecache_early_fetches_unused_total`: of those, dropped unread.
    pub unused: u64,
}

impl EarlyCounts {
    /// Counter-wise `self - earlier`.
    pub fn since(&self, earlier: &EarlyCounts) -> EarlyCounts {
        EarlyCounts {
            sent: self.sent.saturating_sub(earlier.sent),
            unused: self.unused.saturating_sub(earlier.unused),
        }
    }

    /// One line: "40 sent, 2 unused (5.0%)".
    pub fn line(&self) -> String {
        let share = self.unused as f64 * 100.0 / self.sent.max(1) as f64;
        format!("{} sent, {} unused ({share:.1}%)", self.sent, self.unused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_come_from_the_deltas() {
        let a = PrefetchCounts {
            fetched: 1000,
            used: 900,
            unread_evicted: 10,
            cancelled: 3,
        };
        let b = PrefetchCounts {
            fetched: 200,
            used: 100,
            unread_evicted: 0,
            cancelled: 1,
        };
        let d = a.since(&b);
        assert_eq!(
            (d.fetched, d.used, d.unread(), d.cancelled),
            (800, 800, 0, 2)
        );
        assert_eq!(d.hit_share(), Some(1.0));
        assert_eq!(d.over_fetch(), Some(0.0));
        let mut sum = d;
        sum.add(&PrefetchCounts {
            fetched: 200,
            ..PrefetchCounts::default()
        });
        assert_eq!(sum.hit_share(), Some(0.8));
        assert_eq!(sum.over_fetch(), Some(0.2));
        assert_eq!(PrefetchCounts::default().hit_share(), None);
        assert!(sum.line().contains("80.0%"), "{}", sum.line());
    }
}
