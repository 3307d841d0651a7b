//! Operational metrics of one worker: latency and size histograms, connection refusals,
//! accept failures and access-log drops. Kept apart from the request counters so each can
//! grow without touching the other; rendered by [`render`].

use crossbeam_utils::CachePadded;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::histogram::{Histogram, HistogramSum, LATENCY_BOUNDS_US, SIZE_BOUNDS};
use super::WorkerMetrics;
use crate::s3::Operation;

/// How the cache took part in answering a request (the `cache` label and the access log's
/// `cache` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheResult {
    /// Answered from the cache alone: every block (and the metadata) was held.
    Hit,
    /// Every block came from an origin fill (this request's or one it joined).
    Miss,
    /// Some blocks were held, others were filled.
    Partial,
    /// The cache did not answer: passed through to the origin (writes, listings, uncacheable
    /// reads, cache off) or refused before it was looked at.
    Pass,
}

impl CacheResult {
    /// Every result, in [`CacheResult::index`] order.
    pub const ALL: [CacheResult; 4] = [Self::Hit, Self::Miss, Self::Partial, Self::Pass];

    /// A dense index in `0..4`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The label value: `hit`, `miss`, `partial` or `pass`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Partial => "partial",
            Self::Pass => "pass",
        }
    }
}

/// One worker's operational metrics. Written by that worker only.
#[derive(Debug)]
pub struct OpsMetrics {
    /// Request duration (µs) by operation and cache result.
    duration: Vec<[Histogram; 4]>,
    /// Bytes sent per request (head and body) by operation.
    size: Vec<Histogram>,
    /// Origin first byte (µs): request written to response head read, every origin request.
    origin_first_byte: Histogram,
    /// Whole block fill (µs): fill request written to its last body byte.
    fill: Histogram,
    /// Connections accepted and closed (or answered 503) because `server.max_connections`
    /// was reached.
    pub connections_refused: AtomicU64,
    /// `accept` calls that failed (out of descriptors or memory, ...).
    pub accept_errors: AtomicU64,
    /// Access-log lines dropped because the writer fell behind.
    pub access_log_dropped: AtomicU64,
}

impl Default for OpsMetrics {
    fn default() -> Self {
        Self {
            duration: (0..Operation::COUNT)
                .map(|_| std::array::from_fn(|_| Histogram::new(LATENCY_BOUNDS_US)))
                .collect(),
            size: (0..Operation::COUNT)
                .map(|_| Histogram::new(SIZE_BOUNDS))
                .collect(),
            origin_first_byte: Histogram::new(LATENCY_BOUNDS_US),
            fill: Histogram::new(LATENCY_BOUNDS_US),
            connections_refused: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            access_log_dropped: AtomicU64::new(0),
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl OpsMetrics {
    /// Record one finished request: its duration and the bytes sent for it.
    pub fn observe_request(&self, op: Operation, cache: CacheResult, took: Duration, sent: u64) {
        self.duration[op.index()][cache.index()].observe(micros(took));
        self.size[op.index()].observe(sent);
    }

    /// Record the time an origin took from request written to response head.
    pub fn observe_origin_first_byte(&self, took: Duration) {
        self.origin_first_byte.observe(micros(took));
    }

    /// Record the time a block fill took from request written to its last byte.
    pub fn observe_fill(&self, took: Duration) {
        self.fill.observe(micros(took));
    }
}

/// Seconds per microsecond unit, as the renderer's divisor.
const US_PER_S: f64 = 1e6;

/// Append the histograms (merged over `workers`) and the per-worker ops counters.
pub(super) fn render(workers: &[CachePadded<WorkerMetrics>], out: &mut String) {
    header(
        out,
        "rangecache_request_duration_seconds",
        "Time from request head received to response written, by S3 operation and cache result.",
        "histogram",
    );
    for op in Operation::ALL {
        for cache in CacheResult::ALL {
            let sum = merged(workers, LATENCY_BOUNDS_US, |m| {
                &m.ops.duration[op.index()][cache.index()]
            });
            if sum.count() > 0 {
                let labels = format!("op=\"{}\",cache=\"{}\"", op.name(), cache.name());
                sum.render(
                    out,
                    "rangecache_request_duration_seconds",
                    &labels,
                    US_PER_S,
                );
            }
        }
    }
    header(
        out,
        "rangecache_request_size_bytes",
        "Bytes sent to the client per request (response head and body), by S3 operation.",
        "histogram",
    );
    for op in Operation::ALL {
        let sum = merged(workers, SIZE_BOUNDS, |m| &m.ops.size[op.index()]);
        if sum.count() > 0 {
            let labels = format!("op=\"{}\"", op.name());
            sum.render(out, "rangecache_request_size_bytes", &labels, 1.0);
        }
    }
    for (name, help, get) in [
        (
            "rangecache_origin_first_byte_seconds",
            "Time from an origin request written to its response head read.",
            (|m| &m.ops.origin_first_byte) as fn(&WorkerMetrics) -> &Histogram,
        ),
        (
            "rangecache_fill_duration_seconds",
            "Time from a block fill's origin request written to its last byte received.",
            |m| &m.ops.fill,
        ),
    ] {
        header(out, name, help, "histogram");
        merged(workers, LATENCY_BOUNDS_US, get).render(out, name, "", US_PER_S);
    }
    for (name, help, get) in [
        (
            "rangecache_connections_refused_total",
            "Connections closed at once (or answered 503 SlowDown) at server.max_connections.",
            (|m| &m.ops.connections_refused) as fn(&WorkerMetrics) -> &AtomicU64,
        ),
        (
            "rangecache_accept_errors_total",
            "Failed accept calls (out of file descriptors or memory).",
            |m| &m.ops.accept_errors,
        ),
        (
            "rangecache_access_log_dropped_total",
            "Access-log lines dropped because the log writer fell behind.",
            |m| &m.ops.access_log_dropped,
        ),
    ] {
        header(out, name, help, "counter");
        for (w, m) in workers.iter().enumerate() {
            let _ = writeln!(out, "{name}{{worker=\"{w}\"}} {}", get(m).load(Relaxed));
        }
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn merged(
    workers: &[CachePadded<WorkerMetrics>],
    bounds: &'static [u64],
    get: impl Fn(&WorkerMetrics) -> &Histogram,
) -> HistogramSum {
    let mut sum = HistogramSum::new(bounds);
    for m in workers {
        get(m).add_to(&mut sum);
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metrics;

    #[test]
    fn merges_workers_into_one_series() {
        let m = Metrics::new(2);
        let d = Duration::from_micros(80);
        m.worker(0)
            .ops
            .observe_request(Operation::GetObject, CacheResult::Hit, d, 100);
        m.worker(1)
            .ops
            .observe_request(Operation::GetObject, CacheResult::Hit, d, 5000);
        m.worker(1)
            .ops
            .observe_origin_first_byte(Duration::from_millis(20));
        let mut out = String::new();
        m.render_prometheus(&mut out);
        let b = "rangecache_request_duration_seconds_bucket{op=\"GetObject\",cache=\"hit\",le=\"0.0001\"} 2\n";
        assert!(out.contains(b), "{out}");
        assert!(out.contains("rangecache_request_size_bytes_count{op=\"GetObject\"} 2\n"));
        assert!(out.contains("rangecache_origin_first_byte_seconds_bucket{le=\"0.025\"} 1\n"));
        assert!(out.contains("rangecache_fill_duration_seconds_count 0\n"));
        assert!(out.contains("rangecache_connections_refused_total{worker=\"1\"} 0\n"));
        assert!(!out.contains("cache=\"miss\""));
    }
}
