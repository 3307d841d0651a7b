//! Turning measured rounds into report rows: what rangecache's own counters said during a
//! round ([`RcSample`]), one round's summary, and a target's rounds added up.

use super::rangecache::{CacheCounters, Rangecache};
use super::round::{new_histogram, RoundResult};
use super::TargetKind;
use crate::report::{
    cdf_points, EarlyCounts, FaultCounts, Latency, PrefetchCounts, RoundSummary, TargetReport,
};
use crate::sim::StatsSnapshot;

/// rangecache's counters at one moment (one `/cache/stats` and one `/metrics` scrape).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RcSample {
    /// Block hits and misses.
    pub counters: CacheCounters,
    /// `rangecache_origin_requests_total`.
    pub origin_requests: u64,
    /// `rangecache_fill_bytes_total`.
    pub fill_bytes: u64,
    /// `rangecache_origin_retries_total` (`None`: not exported by this build).
    pub retries: Option<u64>,
    /// `rangecache_fill_resumes_total` (`None`: not exported by this build).
    pub resumes: Option<u64>,
    /// The `rangecache_prefetch_*` counters (`None`: not exported by this build).
    pub prefetch: Option<PrefetchCounts>,
    /// The `rangecache_early_fetches*` counters (`None`: not exported by this build).
    pub early: Option<EarlyCounts>,
    /// `rangecache_requests_total` per worker, in worker order: how `SO_REUSEPORT` spread
    /// the clients' connections, and so the work, over the cores.
    pub worker_requests: Vec<u64>,
}

impl RcSample {
    /// Read them now; `None` when rangecache does not answer.
    pub fn take(rc: &Rangecache) -> Option<RcSample> {
        let counters = rc.counters().ok()?;
        let m = rc.metrics().ok()?;
        Some(RcSample {
            counters,
            origin_requests: m.sum("rangecache_origin_requests_total").unwrap_or(0),
            fill_bytes: m.sum("rangecache_fill_bytes_total").unwrap_or(0),
            retries: m.sum("rangecache_origin_retries_total"),
            resumes: m.sum("rangecache_fill_resumes_total"),
            prefetch: m
                .sum("rangecache_prefetch_bytes_total")
                .map(|fetched| PrefetchCounts {
                    fetched,
                    used: m.sum("rangecache_prefetch_used_bytes_total").unwrap_or(0),
                    unread_evicted: m
                        .sum("rangecache_prefetch_unread_evicted_bytes_total")
                        .unwrap_or(0),
                    cancelled: m.sum("rangecache_prefetch_cancelled_total").unwrap_or(0),
                }),
            early: m
                .sum("rangecache_early_fetches_total")
                .map(|sent| EarlyCounts {
                    sent,
                    unused: m.sum("rangecache_early_fetches_unused_total").unwrap_or(0),
                }),
            worker_requests: m
                .by_label("rangecache_requests_total", "worker")
                .into_iter()
                .map(|(_, n)| n)
                .collect(),
        })
    }

    /// Counter-wise `self - earlier`.
    pub fn since(&self, earlier: &RcSample) -> RcSample {
        let d = |a: Option<u64>, b: Option<u64>| a.map(|a| a.saturating_sub(b.unwrap_or(0)));
        RcSample {
            counters: CacheCounters {
                hits: self.counters.hits.saturating_sub(earlier.counters.hits),
                misses: self.counters.misses.saturating_sub(earlier.counters.misses),
            },
            origin_requests: self.origin_requests.saturating_sub(earlier.origin_requests),
            fill_bytes: self.fill_bytes.saturating_sub(earlier.fill_bytes),
            retries: d(self.retries, earlier.retries),
            resumes: d(self.resumes, earlier.resumes),
            prefetch: self
                .prefetch
                .map(|p| p.since(&earlier.prefetch.unwrap_or_default())),
            early: self
                .early
                .map(|e| e.since(&earlier.early.unwrap_or_default())),
            worker_requests: self
                .worker_requests
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    n.saturating_sub(earlier.worker_requests.get(i).copied().unwrap_or(0))
                })
                .collect(),
        }
    }
}

/// Where the origin counters of a round come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginView {
    /// The simulator's own counters (`None` when it was not queried).
    Simulator(Option<StatsSnapshot>),
    /// A real endpoint: only what the load generator and rangecache count.
    Endpoint,
}

/// What one round of target `t` measured, with the origin's and rangecache's view of it.
pub fn summarize_round(
    round: usize,
    bucket: &str,
    r: &RoundResult,
    t: TargetKind,
    origin: OriginView,
    rc: Option<RcSample>,
) -> RoundSummary {
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let sim = match origin {
        OriginView::Simulator(s) => s,
        OriginView::Endpoint => None,
    };
    let rc = rc.as_ref();
    let (origin_requests, origin_bytes) = match (sim, rc) {
        (Some(o), _) => (Some(o.requests), Some(o.body_bytes)),
        (None, Some(c)) => (Some(c.origin_requests), Some(c.fill_bytes)),
        // Against a real endpoint, direct's origin traffic is its own.
        (None, None) if origin == OriginView::Endpoint && t == TargetKind::Direct => {
            (Some(r.requests), Some(r.bytes))
        }
        (None, None) => (None, None),
    };
    RoundSummary {
        round,
        bucket: bucket.into(),
        requests: r.requests,
        elapsed_s: secs,
        req_per_s: r.ok as f64 / secs,
        mb_per_s: r.bytes as f64 / secs / 1e6,
        latency: Latency::of(&r.hist),
        origin_requests,
        origin_bytes,
        hit_ratio: rc.map(|c| hit_ratio(c.counters)),
        worker_requests: rc
            .map(|c| c.worker_requests.clone())
            .filter(|w| !w.is_empty()),
        prefetch: rc.and_then(|c| c.prefetch),
        early: rc.and_then(|c| c.early),
        first_byte: Latency::of(&r.first_byte),
        faults: FaultCounts {
            origin_503s: sim.map(|s| s.injected_errors),
            origin_resets: sim.map(|s| s.injected_resets),
            retries: rc.and_then(|c| c.retries),
            resumes: rc.and_then(|c| c.resumes),
        },
    }
}

/// Hits ÷ lookups (0 without lookups).
pub fn hit_ratio(c: CacheCounters) -> f64 {
    let total = c.hits + c.misses;
    if total == 0 {
        0.0
    } else {
        c.hits as f64 / total as f64
    }
}

/// A target's rounds added up.
pub fn aggregate(
    t: TargetKind,
    rounds: Vec<(RoundResult, RoundSummary, Option<RcSample>)>,
) -> TargetReport {
    let (mut hist, mut first_byte) = (new_histogram(), new_histogram());
    let (mut requests, mut ok, mut bytes, mut secs) = (0, 0, 0, 0.0);
    let (mut te, mut se, mut vf, mut vb) = (0, 0, 0, 0);
    let (mut oreq, mut obytes): (Option<u64>, Option<u64>) = (None, None);
    let mut counters: Option<CacheCounters> = None;
    let mut prefetch: Option<PrefetchCounts> = None;
    let mut faults = FaultCounts::default();
    let mut summaries = Vec::new();
    for (r, s, c) in rounds {
        let _ = hist.add(&r.hist);
        let _ = first_byte.add(&r.first_byte);
        requests += r.requests;
        ok += r.ok;
        bytes += r.bytes;
        secs += r.elapsed.as_secs_f64();
        te += r.transport_errors;
        se += r.status_errors;
        vf += r.verify_failures;
        vb += r.verify_failed_bytes;
        if let Some(v) = s.origin_requests {
            oreq = Some(oreq.unwrap_or(0) + v);
        }
        if let Some(v) = s.origin_bytes {
            obytes = Some(obytes.unwrap_or(0) + v);
        }
        if let Some(c) = c {
            let acc = counters.get_or_insert_with(CacheCounters::default);
            acc.hits += c.counters.hits;
            acc.misses += c.counters.misses;
            if let Some(p) = &c.prefetch {
                prefetch.get_or_insert_with(PrefetchCounts::default).add(p);
            }
        }
        faults.add(&s.faults);
        summaries.push(s);
    }
    let secs_nz = secs.max(1e-9);
    TargetReport {
        target: t.name().into(),
        rounds: summaries,
        requests,
        ok,
        bytes,
        elapsed_s: secs,
        req_per_s: ok as f64 / secs_nz,
        mb_per_s: bytes as f64 / secs_nz / 1e6,
        latency: Latency::of(&hist),
        first_byte: Latency::of(&first_byte),
        faults,
        origin_requests: oreq,
        origin_bytes: obytes,
        hit_ratio: counters.map(hit_ratio),
        prefetch,
        transport_errors: te,
        status_errors: se,
        verify_failures: vf,
        verify_failed_bytes: vb,
        cdf: cdf_points(&hist),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_subtract_and_keep_absent_counters_absent() {
        let a = RcSample {
            counters: CacheCounters {
                hits: 10,
                misses: 5,
            },
            origin_requests: 7,
            fill_bytes: 100,
            retries: Some(4),
            resumes: None,
            prefetch: Some(PrefetchCounts {
                fetched: 50,
                used: 30,
                ..PrefetchCounts::default()
            }),
            early: Some(EarlyCounts { sent: 9, unused: 2 }),
            worker_requests: vec![70, 30],
        };
        let b = RcSample {
            counters: CacheCounters { hits: 3, misses: 1 },
            origin_requests: 2,
            fill_bytes: 40,
            retries: Some(1),
            resumes: None,
            prefetch: None,
            early: Some(EarlyCounts { sent: 4, unused: 2 }),
            worker_requests: vec![20],
        };
        let d = a.since(&b);
        assert_eq!(d.counters, CacheCounters { hits: 7, misses: 4 });
        assert_eq!((d.origin_requests, d.fill_bytes), (5, 60));
        assert_eq!((d.retries, d.resumes), (Some(3), None));
        assert_eq!(d.prefetch.map(|p| (p.fetched, p.used)), Some((50, 30)));
        assert_eq!(d.early, Some(EarlyCounts { sent: 5, unused: 0 }));
        assert_eq!(
            d.worker_requests,
            [50, 30],
            "a worker first seen counts from 0"
        );
        assert_eq!(hit_ratio(d.counters), 7.0 / 11.0);
        assert_eq!(hit_ratio(CacheCounters::default()), 0.0);
    }

    #[test]
    fn round_summary_takes_faults_from_the_simulator_and_rangecache() {
        let mut r = crate::bench::round::RoundResult::empty_for_tests();
        r.ok = 10;
        r.requests = 12;
        r.elapsed = std::time::Duration::from_secs(2);
        let sim = StatsSnapshot {
            requests: 30,
            injected_errors: 2,
            injected_resets: 1,
            ..StatsSnapshot::default()
        };
        let rc = RcSample {
            retries: Some(2),
            ..RcSample::default()
        };
        let s = summarize_round(
            1,
            "b",
            &r,
            TargetKind::RangecacheCold,
            OriginView::Simulator(Some(sim)),
            Some(rc),
        );
        assert_eq!(s.req_per_s, 5.0);
        assert_eq!(s.origin_requests, Some(30));
        assert_eq!(
            s.faults,
            FaultCounts {
                origin_503s: Some(2),
                origin_resets: Some(1),
                retries: Some(2),
                resumes: None
            }
        );
        let e = summarize_round(1, "b", &r, TargetKind::Direct, OriginView::Endpoint, None);
        assert_eq!(e.origin_requests, Some(12));
        assert_eq!(e.faults, FaultCounts::default());
        let t = aggregate(
            TargetKind::Direct,
            vec![(r.clone(), e.clone(), None), (r, e, None)],
        );
        assert_eq!((t.requests, t.ok, t.origin_requests), (24, 20, Some(24)));
    }
}
