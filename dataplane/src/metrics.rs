//! Counters the workers write and the control plane reads on scrape.
//!
//! Each worker owns one [`WorkerMetrics`] block and is its only writer (relaxed atomics, no
//! contention); the control plane sums or labels them per worker when rendering Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::s3::Operation;

/// Status classes tracked per operation: 1xx..5xx.
const STATUS_CLASSES: usize = 5;

/// One worker's counters. Written by that worker only.
#[derive(Debug)]
pub struct WorkerMetrics {
    requests: [[AtomicU64; STATUS_CLASSES]; Operation::COUNT],
    /// Request body bytes received from clients.
    pub bytes_in: AtomicU64,
    /// Response bytes (head and body) written to clients.
    pub bytes_out: AtomicU64,
    /// Requests sent to an origin.
    pub origin_requests: AtomicU64,
    /// Origin requests that failed (connect, TLS, I/O, protocol, timeout).
    pub origin_errors: AtomicU64,
    /// Origin requests retried once on a fresh connection after a stale pooled one failed.
    pub origin_retries: AtomicU64,
    /// Connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections open right now.
    pub connections_open: AtomicI64,
    /// Requests rejected before routing because their framing or head was malformed.
    pub bad_requests: AtomicU64,
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            origin_requests: AtomicU64::new(0),
            origin_errors: AtomicU64::new(0),
            origin_retries: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
            bad_requests: AtomicU64::new(0),
        }
    }
}

impl WorkerMetrics {
    /// Count one finished request of `op` answered with `status`.
    pub fn record_request(&self, op: Operation, status: u16) {
        let class = usize::from(status / 100).clamp(1, STATUS_CLASSES) - 1;
        self.requests[op.index()][class].fetch_add(1, Relaxed);
    }

    /// Requests of `op` answered with a status in class `class` (1..=5).
    pub fn requests(&self, op: Operation, class: usize) -> u64 {
        self.requests[op.index()][class - 1].load(Relaxed)
    }

    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

/// A per-worker metric as rendered: name, help text, and how to read it from a block.
type Counter = (&'static str, &'static str, fn(&WorkerMetrics) -> u64);

/// The registry: one block per worker, created before the workers start.
#[derive(Debug)]
pub struct Metrics {
    workers: Vec<WorkerMetrics>,
}

impl Metrics {
    /// A registry with `workers` zeroed blocks.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers).map(|_| WorkerMetrics::default()).collect(),
        }
    }

    /// Worker `i`'s block. Panics if `i` is out of range (a startup bug).
    pub fn worker(&self, i: usize) -> &WorkerMetrics {
        &self.workers[i]
    }

    /// Number of worker blocks.
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    /// True when there are no workers.
    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Append every data-plane metric, labelled by worker, in Prometheus text format.
    pub fn render_prometheus(&self, out: &mut String) {
        out.push_str("# HELP rangecache_requests_total Requests answered, by S3 operation and status class.\n");
        out.push_str("# TYPE rangecache_requests_total counter\n");
        for (w, m) in self.workers.iter().enumerate() {
            for op in Operation::ALL {
                for class in 1..=STATUS_CLASSES {
                    let n = m.requests(op, class);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "rangecache_requests_total{{worker=\"{w}\",op=\"{}\",status=\"{class}xx\"}} {n}",
                            op.name()
                        );
                    }
                }
            }
        }
        let counters: [Counter; 8] = [
            (
                "rangecache_bytes_in_total",
                "Request body bytes received from clients.",
                |m| m.bytes_in.load(Relaxed),
            ),
            (
                "rangecache_bytes_out_total",
                "Response bytes written to clients.",
                |m| m.bytes_out.load(Relaxed),
            ),
            (
                "rangecache_origin_requests_total",
                "Requests sent to an origin.",
                |m| m.origin_requests.load(Relaxed),
            ),
            (
                "rangecache_origin_errors_total",
                "Origin requests that failed.",
                |m| m.origin_errors.load(Relaxed),
            ),
            (
                "rangecache_origin_retries_total",
                "Origin requests retried after a stale pooled connection failed.",
                |m| m.origin_retries.load(Relaxed),
            ),
            (
                "rangecache_connections_accepted_total",
                "Client connections accepted.",
                |m| m.connections_accepted.load(Relaxed),
            ),
            (
                "rangecache_bad_requests_total",
                "Requests rejected for malformed framing or head.",
                |m| m.bad_requests.load(Relaxed),
            ),
            (
                "rangecache_connections_open",
                "Client connections open now.",
                |m| m.connections_open.load(Relaxed).max(0) as u64,
            ),
        ];
        for (name, help, get) in counters {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (w, m) in self.workers.iter().enumerate() {
                let _ = writeln!(out, "{name}{{worker=\"{w}\"}} {}", get(m));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_labelled_counters() {
        let m = Metrics::new(2);
        m.worker(1).record_request(Operation::GetObject, 206);
        m.worker(1).record_request(Operation::GetObject, 404);
        WorkerMetrics::add(&m.worker(0).bytes_out, 42);
        let mut out = String::new();
        m.render_prometheus(&mut out);
        assert!(out
            .contains("rangecache_requests_total{worker=\"1\",op=\"GetObject\",status=\"2xx\"} 1"));
        assert!(out
            .contains("rangecache_requests_total{worker=\"1\",op=\"GetObject\",status=\"4xx\"} 1"));
        assert!(out.contains("rangecache_bytes_out_total{worker=\"0\"} 42"));
    }
}
