//! Fixed-bucket histograms recorded by one worker and merged across workers on scrape.
//!
//! A [`Histogram`] is a row of relaxed atomic counters (one per bucket) plus a sum: its worker
//! is its only writer, so an observation is two uncontended `fetch_add`s and no lock. The
//! control plane adds the rows of every worker into a [`HistogramSum`] and renders the
//! Prometheus `_bucket` / `_sum` / `_count` series from it.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds (inclusive, in microseconds) of the latency buckets: 50 µs to 30 s.
pub const LATENCY_BOUNDS_US: &[u64] = &[
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

/// Upper bounds (inclusive, in bytes) of the size buckets: 1 KiB to 1 GiB, by fours.
pub const SIZE_BOUNDS: &[u64] = &[
    1 << 10,
    1 << 12,
    1 << 14,
    1 << 16,
    1 << 18,
    1 << 20,
    1 << 22,
    1 << 24,
    1 << 26,
    1 << 28,
    1 << 30,
];

/// Most bounds a histogram may have (the `+Inf` bucket comes on top).
pub const MAX_BOUNDS: usize = 23;

/// One worker's histogram over fixed bucket bounds (integers in the recording unit).
///
/// Aligned to 128 bytes (two cache lines, what adjacent-line prefetching pulls in together):
/// the histograms of different workers are allocated next to each other at startup, and
/// sharing a line would make their writers contend after all.
#[derive(Debug)]
#[repr(align(128))]
pub struct Histogram {
    bounds: &'static [u64],
    /// `counts[i]` holds observations in `(bounds[i-1], bounds[i]]`; `counts[bounds.len()]`
    /// is `+Inf`; the rest is unused.
    counts: [AtomicU64; MAX_BOUNDS + 1],
    sum: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds` (ascending, at most [`MAX_BOUNDS`]; a longer list is
    /// a programming error and panics).
    pub fn new(bounds: &'static [u64]) -> Self {
        assert!(bounds.len() <= MAX_BOUNDS, "too many histogram bounds");
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Self {
            bounds,
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
        }
    }

    fn live(&self) -> &[AtomicU64] {
        &self.counts[..=self.bounds.len()]
    }

    /// Record one observation of `value` (in the unit of the bounds).
    pub fn observe(&self, value: u64) {
        let i = self.bounds.partition_point(|&b| b < value);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }

    /// Observations recorded so far.
    pub fn count(&self) -> u64 {
        self.live().iter().map(|c| c.load(Relaxed)).sum()
    }

    /// Add this histogram's current counts into `into`.
    pub fn add_to(&self, into: &mut HistogramSum) {
        debug_assert_eq!(into.counts.len(), self.live().len());
        for (acc, c) in into.counts.iter_mut().zip(self.live()) {
            *acc += c.load(Relaxed);
        }
        into.sum += self.sum.load(Relaxed);
    }
}

/// Histograms of several workers added together, ready to render.
#[derive(Debug, Clone)]
pub struct HistogramSum {
    bounds: &'static [u64],
    counts: Vec<u64>,
    sum: u64,
}

impl HistogramSum {
    /// A zero sum over `bounds`.
    pub fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0,
        }
    }

    /// Observations in the sum.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Append the `{name}_bucket`, `{name}_sum` and `{name}_count` series with `labels`
    /// (`k="v",...` without braces, may be empty). Bounds and sum are divided by `per_unit`
    /// (`1e6` turns microseconds into seconds; a division keeps `0.00005` exact in the text).
    pub fn render(&self, out: &mut String, name: &str, labels: &str, per_unit: f64) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c;
            let le = match self.bounds.get(i) {
                Some(&b) => format!("{}", b as f64 / per_unit),
                None => "+Inf".to_owned(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum as f64 / per_unit);
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_and_cumulative() {
        static BOUNDS: &[u64] = &[10, 100];
        let h = Histogram::new(BOUNDS);
        for v in [0, 10, 11, 100, 101, 5000] {
            h.observe(v);
        }
        let mut sum = HistogramSum::new(BOUNDS);
        h.add_to(&mut sum);
        h.add_to(&mut sum);
        let mut out = String::new();
        sum.render(&mut out, "x", "op=\"a\"", 1.0);
        assert!(out.contains("x_bucket{op=\"a\",le=\"10\"} 4\n"), "{out}");
        assert!(out.contains("x_bucket{op=\"a\",le=\"100\"} 8\n"), "{out}");
        assert!(out.contains("x_bucket{op=\"a\",le=\"+Inf\"} 12\n"), "{out}");
        assert!(out.contains("x_sum{op=\"a\"} 10444\n"), "{out}");
        assert!(out.contains("x_count{op=\"a\"} 12\n"), "{out}");
    }

    #[test]
    fn seconds_scale_without_exponents() {
        let h = Histogram::new(LATENCY_BOUNDS_US);
        h.observe(75);
        let mut sum = HistogramSum::new(LATENCY_BOUNDS_US);
        h.add_to(&mut sum);
        let mut out = String::new();
        sum.render(&mut out, "d", "", 1e6);
        assert!(out.contains("d_bucket{le=\"0.00005\"} 0\n"), "{out}");
        assert!(out.contains("d_bucket{le=\"0.0001\"} 1\n"), "{out}");
        assert!(out.contains("d_bucket{le=\"30\"} 1\n"), "{out}");
        assert!(out.contains("d_count 1\n"), "{out}");
    }
}
