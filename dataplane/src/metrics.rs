//! Counters the workers write and the control plane reads on scrape.
//!
//! Each worker owns one [`WorkerMetrics`] block and is its only writer (relaxed atomics, no
//! contention); the control plane sums or labels them per worker when rendering Prometheus text.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

use crate::s3::Operation;

mod edge;
mod histogram;
mod ops;

pub use edge::EdgeMetrics;
pub use histogram::{Histogram, HistogramSum, LATENCY_BOUNDS_US, SIZE_BOUNDS};
pub use ops::{CacheResult, OpsMetrics};

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
    /// Origin requests sent again: once on a fresh connection after a stale pooled one
    /// failed, or after a transient origin failure (with jittered backoff).
    pub origin_retries: AtomicU64,
    /// Fills resumed mid-body with `Range` from the next byte and `If-Match`.
    pub fill_resumes: AtomicU64,
    /// Client connections cut because the client took no bytes for `server.send_timeout`.
    pub send_timeouts: AtomicU64,
    /// Connections accepted.
    pub connections_accepted: AtomicU64,
    /// Connections open right now.
    pub connections_open: AtomicI64,
    /// Requests rejected before routing because their framing or head was malformed.
    pub bad_requests: AtomicU64,
    /// Requests refused by authentication or authorization, or whose body failed the checks
    /// its signature called for.
    pub auth_rejected: AtomicU64,
    /// Blocks served from the cache.
    pub cache_block_hits: AtomicU64,
    /// Blocks not in the cache (filled by this request or joined from another's fill).
    pub cache_block_misses: AtomicU64,
    /// Response body bytes served from cached blocks.
    pub cache_bytes_hit: AtomicU64,
    /// Response body bytes served from fills in flight.
    pub cache_bytes_miss: AtomicU64,
    /// Origin GETs issued to fill blocks.
    pub fill_requests: AtomicU64,
    /// Of those, GETs sent before the object's ETag was known (see `cache::read::early`).
    pub early_fetches: AtomicU64,
    /// Early GETs dropped unread: no run started at their first byte, or their answer did
    /// not fit the version the lookup found.
    pub early_fetches_unused: AtomicU64,
    /// Bytes received from the origin for fills.
    pub fill_bytes: AtomicU64,
    /// Blocks a request waited for because another request was already filling them.
    pub coalesced_waits: AtomicU64,
    /// Metadata lookups answered from the metadata cache.
    pub meta_hits: AtomicU64,
    /// Metadata lookups that needed a HEAD to the origin.
    pub meta_misses: AtomicU64,
    /// Requests re-planned after a fill found the object changed (412).
    pub replans: AtomicU64,
    /// Histograms and operational counters (connection limit, accept errors, access log).
    pub ops: OpsMetrics,
    /// TLS handshakes with clients that succeeded.
    pub tls_handshakes: AtomicU64,
    /// TLS handshakes with clients that failed (protocol, certificate, reset).
    pub tls_handshake_failures: AtomicU64,
    /// TLS handshakes with clients cut at `server.tls.handshake_timeout`.
    pub tls_handshake_timeouts: AtomicU64,
    /// Reverse-proxy trust and CORS counters.
    pub edge: EdgeMetrics,
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
            fill_resumes: AtomicU64::new(0),
            send_timeouts: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_open: AtomicI64::new(0),
            bad_requests: AtomicU64::new(0),
            auth_rejected: AtomicU64::new(0),
            cache_block_hits: AtomicU64::new(0),
            cache_block_misses: AtomicU64::new(0),
            cache_bytes_hit: AtomicU64::new(0),
            cache_bytes_miss: AtomicU64::new(0),
            fill_requests: AtomicU64::new(0),
            early_fetches: AtomicU64::new(0),
            early_fetches_unused: AtomicU64::new(0),
            fill_bytes: AtomicU64::new(0),
            coalesced_waits: AtomicU64::new(0),
            meta_hits: AtomicU64::new(0),
            meta_misses: AtomicU64::new(0),
            replans: AtomicU64::new(0),
            ops: OpsMetrics::default(),
            tls_handshakes: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            tls_handshake_timeouts: AtomicU64::new(0),
            edge: EdgeMetrics::default(),
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
    /// Padded to whole cache lines: adjacent workers' blocks never share one.
    workers: Vec<CachePadded<WorkerMetrics>>,
}

impl Metrics {
    /// A registry with `workers` zeroed blocks.
    pub fn new(workers: usize) -> Self {
        Self {
            workers: (0..workers)
                .map(|_| CachePadded::new(WorkerMetrics::default()))
                .collect(),
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
        let counters: [Counter; 26] = [
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
                "Origin requests sent again after a stale pooled connection or a transient origin failure.",
                |m| m.origin_retries.load(Relaxed),
            ),
            (
                "rangecache_fill_resumes_total",
                "Fills resumed mid-body from the next byte with If-Match.",
                |m| m.fill_resumes.load(Relaxed),
            ),
            (
                "rangecache_send_timeouts_total",
                "Client connections cut after taking no bytes for server.send_timeout.",
                |m| m.send_timeouts.load(Relaxed),
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
                "rangecache_auth_rejected_total",
                "Requests refused by authentication, authorization or body checks.",
                |m| m.auth_rejected.load(Relaxed),
            ),
            (
                "rangecache_connections_open",
                "Client connections open now.",
                |m| m.connections_open.load(Relaxed).max(0) as u64,
            ),
            (
                "rangecache_cache_block_hits_total",
                "Blocks served from the cache.",
                |m| m.cache_block_hits.load(Relaxed),
            ),
            (
                "rangecache_cache_block_misses_total",
                "Blocks not in the cache when requested.",
                |m| m.cache_block_misses.load(Relaxed),
            ),
            (
                "rangecache_cache_hit_bytes_total",
                "Response bytes served from cached blocks.",
                |m| m.cache_bytes_hit.load(Relaxed),
            ),
            (
                "rangecache_cache_miss_bytes_total",
                "Response bytes served from fills in flight.",
                |m| m.cache_bytes_miss.load(Relaxed),
            ),
            (
                "rangecache_fill_requests_total",
                "Origin GETs issued to fill blocks.",
                |m| m.fill_requests.load(Relaxed),
            ),
            (
                "rangecache_early_fetches_total",
                "Fill GETs sent while the object's metadata was still being looked up.",
                |m| m.early_fetches.load(Relaxed),
            ),
            (
                "rangecache_early_fetches_unused_total",
                "Early fill GETs dropped unread (no run started at their first byte, or another version).",
                |m| m.early_fetches_unused.load(Relaxed),
            ),
            (
                "rangecache_fill_bytes_total",
                "Bytes received from the origin for fills.",
                |m| m.fill_bytes.load(Relaxed),
            ),
            (
                "rangecache_coalesced_waits_total",
                "Blocks waited for on another request's fill.",
                |m| m.coalesced_waits.load(Relaxed),
            ),
            (
                "rangecache_metadata_hits_total",
                "Metadata lookups answered from the metadata cache.",
                |m| m.meta_hits.load(Relaxed),
            ),
            (
                "rangecache_metadata_misses_total",
                "Metadata lookups that needed a HEAD to the origin.",
                |m| m.meta_misses.load(Relaxed),
            ),
            (
                "rangecache_replans_total",
                "Requests re-planned after the object changed during a fill (412).",
                |m| m.replans.load(Relaxed),
            ),
            (
                "rangecache_tls_handshakes_total",
                "Client TLS handshakes that succeeded.",
                |m| m.tls_handshakes.load(Relaxed),
            ),
            (
                "rangecache_tls_handshake_failures_total",
                "Client TLS handshakes that failed (protocol, certificate, reset).",
                |m| m.tls_handshake_failures.load(Relaxed),
            ),
            (
                "rangecache_tls_handshake_timeouts_total",
                "Client TLS handshakes cut at server.tls.handshake_timeout.",
                |m| m.tls_handshake_timeouts.load(Relaxed),
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
        ops::render(&self.workers, out);
        edge::render(&self.workers, out);
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
