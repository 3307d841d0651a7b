//! Counters of the client edge: forwarded client metadata not believed, PROXY protocol
//! headers that failed, CORS preflights.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_utils::CachePadded;

use super::WorkerMetrics;
use crate::edge::UntrustedKind;

/// One worker's edge counters.
#[derive(Debug, Default)]
pub struct EdgeMetrics {
    /// Forwarded metadata from peers outside `proxy.trusted_proxies`, by kind.
    pub untrusted: [AtomicU64; 3],
    /// Connections from trusted peers closed because their PROXY header was missing,
    /// malformed or late.
    pub proxy_header_errors: AtomicU64,
    /// CORS preflights answered 200.
    pub preflight_allowed: AtomicU64,
    /// CORS preflights refused (400/403).
    pub preflight_refused: AtomicU64,
}

impl EdgeMetrics {
    /// Count forwarded metadata of `kind` that was not believed.
    pub fn untrusted(&self, kind: UntrustedKind) {
        self.untrusted[kind.index()].fetch_add(1, Relaxed);
    }
}

/// Append the edge counters, summed over workers (labels say what, not where).
pub(super) fn render(workers: &[CachePadded<WorkerMetrics>], out: &mut String) {
    let sum =
        |get: &dyn Fn(&EdgeMetrics) -> u64| -> u64 { workers.iter().map(|w| get(&w.edge)).sum() };
    let _ = writeln!(
        out,
        "# HELP rangecache_proxy_untrusted_total Forwarded client metadata from a peer outside \
         proxy.trusted_proxies: PROXY headers (connection closed) and X-Forwarded-For / \
         Forwarded headers (ignored), by kind.\n# TYPE rangecache_proxy_untrusted_total counter"
    );
    for kind in UntrustedKind::ALL {
        let n = sum(&|m| m.untrusted[kind.index()].load(Relaxed));
        let _ = writeln!(
            out,
            "rangecache_proxy_untrusted_total{{kind=\"{}\"}} {n}",
            kind.name()
        );
    }
    let n = sum(&|m| m.proxy_header_errors.load(Relaxed));
    let _ = writeln!(
        out,
        "# HELP rangecache_proxy_protocol_errors_total Connections from trusted proxies closed \
         because their PROXY header was missing, malformed or late.\n\
         # TYPE rangecache_proxy_protocol_errors_total counter\n\
         rangecache_proxy_protocol_errors_total {n}"
    );
    let allowed = sum(&|m| m.preflight_allowed.load(Relaxed));
    let refused = sum(&|m| m.preflight_refused.load(Relaxed));
    let _ = writeln!(
        out,
        "# HELP rangecache_cors_preflights_total CORS preflight (OPTIONS) requests, by result.\n\
         # TYPE rangecache_cors_preflights_total counter\n\
         rangecache_cors_preflights_total{{result=\"allowed\"}} {allowed}\n\
         rangecache_cors_preflights_total{{result=\"refused\"}} {refused}"
    );
}
