//! Per-peer invalidation counters and latency histogram, rendered for `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram's buckets; `+Inf` follows.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// How one invalidation call to one peer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The peer answered 2xx.
    Ok,
    /// The peer answered, but not 2xx (a wrong token is a 401).
    Rejected,
    /// No answer: connect, write or read failed.
    Error,
    /// No answer within `fleet.invalidation_timeout`.
    Timeout,
    /// Not sent: too many invalidations were in flight already.
    Overloaded,
}

impl Outcome {
    const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Rejected,
        Outcome::Error,
        Outcome::Timeout,
        Outcome::Overloaded,
    ];

    /// The `result` label.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Overloaded => "overloaded",
        }
    }
}

/// One peer's counters.
#[derive(Debug, Default)]
pub struct PeerStats {
    outcomes: [AtomicU64; 5],
    /// Cumulative-at-render bucket counts (stored per bucket, summed when rendered).
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl PeerStats {
    /// Count one call that ended with `outcome` after `elapsed` (not timed when not sent).
    pub fn record(&self, outcome: Outcome, elapsed: Duration) {
        self.outcomes[outcome as usize].fetch_add(1, Relaxed);
        if outcome == Outcome::Overloaded {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
    }

    /// Calls that ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome as usize].load(Relaxed)
    }
}

/// The metric families' headers.
pub fn render_headers(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP rangecache_fleet_invalidations_total Invalidation calls to fleet peers after a \
         write, by peer and result.\n# TYPE rangecache_fleet_invalidations_total counter"
    );
}

/// Append `peer`'s series (the families' headers come from [`render_headers`] and
/// [`render_histogram_header`]).
pub fn render_counters(peer: &str, stats: &PeerStats, out: &mut String) {
    for o in Outcome::ALL {
        let _ = writeln!(
            out,
            "rangecache_fleet_invalidations_total{{peer=\"{peer}\",result=\"{}\"}} {}",
            o.name(),
            stats.count(o)
        );
    }
}

/// The latency family's header.
pub fn render_histogram_header(out: &mut String) {
    let _ = writeln!(
        out,
        "# HELP rangecache_fleet_invalidation_seconds Time from sending an invalidation to a \
         fleet peer to its answer (or failure).\n\
         # TYPE rangecache_fleet_invalidation_seconds histogram"
    );
}

/// Append `peer`'s latency histogram.
pub fn render_histogram(peer: &str, stats: &PeerStats, out: &mut String) {
    let mut cumulative = 0;
    for (i, bound) in BUCKETS.iter().enumerate() {
        cumulative += stats.buckets[i].load(Relaxed);
        let _ = writeln!(
            out,
            "rangecache_fleet_invalidation_seconds_bucket{{peer=\"{peer}\",le=\"{bound}\"}} \
             {cumulative}"
        );
    }
    cumulative += stats.buckets[BUCKETS.len()].load(Relaxed);
    let sum = stats.sum_micros.load(Relaxed) as f64 / 1e6;
    let _ = writeln!(
        out,
        "rangecache_fleet_invalidation_seconds_bucket{{peer=\"{peer}\",le=\"+Inf\"}} \
         {cumulative}\n\
         rangecache_fleet_invalidation_seconds_sum{{peer=\"{peer}\"}} {sum}\n\
         rangecache_fleet_invalidation_seconds_count{{peer=\"{peer}\"}} {cumulative}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_overload_untimed() {
        let s = PeerStats::default();
        s.record(Outcome::Ok, Duration::from_micros(300));
        s.record(Outcome::Ok, Duration::from_millis(3));
        s.record(Outcome::Timeout, Duration::from_secs(5));
        s.record(Outcome::Overloaded, Duration::ZERO);
        let mut out = String::new();
        render_counters("http://a:1", &s, &mut out);
        render_histogram("http://a:1", &s, &mut out);
        for line in [
            "rangecache_fleet_invalidations_total{peer=\"http://a:1\",result=\"ok\"} 2",
            "rangecache_fleet_invalidations_total{peer=\"http://a:1\",result=\"timeout\"} 1",
            "rangecache_fleet_invalidations_total{peer=\"http://a:1\",result=\"overloaded\"} 1",
            "rangecache_fleet_invalidations_total{peer=\"http://a:1\",result=\"error\"} 0",
            "rangecache_fleet_invalidation_seconds_bucket{peer=\"http://a:1\",le=\"0.0005\"} 1",
            "rangecache_fleet_invalidation_seconds_bucket{peer=\"http://a:1\",le=\"0.005\"} 2",
            "rangecache_fleet_invalidation_seconds_bucket{peer=\"http://a:1\",le=\"2.5\"} 2",
            "rangecache_fleet_invalidation_seconds_bucket{peer=\"http://a:1\",le=\"+Inf\"} 3",
            "rangecache_fleet_invalidation_seconds_count{peer=\"http://a:1\"} 3",
            "rangecache_fleet_invalidation_seconds_sum{peer=\"http://a:1\"} 5.0033",
        ] {
            assert!(out.lines().any(|l| l == line), "missing {line:?} in\n{out}");
        }
    }
}
