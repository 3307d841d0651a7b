//! The report: per workload, per target, what a run measured, the ratios between targets,
//! and the same as a text table ([`table`]), JSON (serde) and an SVG picture ([`svg`]); the
//! memory bound run has its own report ([`memory`]).

pub mod memory;
pub mod prefetch;
pub mod svg;
pub mod table;

use hdrhistogram::Histogram;
use serde::Serialize;

pub use prefetch::{EarlyCounts, PrefetchCounts};

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    /// Percentiles of a histogram recorded in microseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Latency {
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: h.max() as f64 / 1000.0,
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// Points of a latency CDF: (milliseconds, fraction of requests at or below).
pub fn cdf_points(h: &Histogram<u64>) -> Vec<[f64; 2]> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut qs: Vec<f64> = (0..=99).map(|i| f64::from(i) / 100.0).collect();
    qs.extend([0.995, 0.999, 0.9995, 0.9999, 1.0]);
    qs.iter()
        .map(|&q| [h.value_at_quantile(q) as f64 / 1000.0, q])
        .collect()
}

/// Origin faults and how rangecache absorbed them. `None` means not known: the origin is not
/// the simulator, the target is not rangecache, or rangecache does not export that counter.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct FaultCounts {
    /// 503 SlowDown answers the simulator injected.
    pub origin_503s: Option<u64>,
    /// Responses the simulator cut by resetting the connection mid-body.
    pub origin_resets: Option<u64>,
    /// Growth of rangecache's `rangecache_origin_retries_total`.
    pub retries: Option<u64>,
    /// Growth of rangecache's `rangecache_fill_resumes_total`.
    pub resumes: Option<u64>,
}

fn add_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (None, None) => None,
        _ => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    }
}

impl FaultCounts {
    /// Add `other` field by field (known + unknown = known).
    pub fn add(&mut self, other: &FaultCounts) {
        self.origin_503s = add_opt(self.origin_503s, other.origin_503s);
        self.origin_resets = add_opt(self.origin_resets, other.origin_resets);
        self.retries = add_opt(self.retries, other.retries);
        self.resumes = add_opt(self.resumes, other.resumes);
    }

    /// Faults the origin injected (503s + resets), 0 when unknown.
    pub fn injected(&self) -> u64 {
        self.origin_503s.unwrap_or(0) + self.origin_resets.unwrap_or(0)
    }
}

/// One target in one round.
#[derive(Debug, Clone, Serialize)]
pub struct RoundSummary {
    /// 1-based round number.
    pub round: usize,
    /// Bucket the round read from.
    pub bucket: String,
    /// Responses.
    pub requests: u64,
    /// Wall time in seconds.
    pub elapsed_s: f64,
    /// Correct responses per second.
    pub req_per_s: f64,
    /// Body megabytes (10^6) per second.
    pub mb_per_s: f64,
    /// Latency percentiles.
    pub latency: Latency,
    /// Requests the origin received during the round (simulator counters).
    pub origin_requests: Option<u64>,
    /// Body bytes the origin sent during the round.
    pub origin_bytes: Option<u64>,
    /// rangecache block hit ratio during the round.
    pub hit_ratio: Option<f64>,
    /// rangecache's requests per worker during the round (rangecache targets).
    pub worker_requests: Option<Vec<u64>>,
    /// rangecache's prefetch counters during the round (rangecache targets).
    pub prefetch: Option<PrefetchCounts>,
    /// rangecache's early GETs during the round (rangecache targets of a build that has them).
    pub early: Option<EarlyCounts>,
    /// Time to the first body byte.
    pub first_byte: Latency,
    /// Origin faults and their handling during the round.
    pub faults: FaultCounts,
}

/// One target over all rounds.
#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    /// "direct", "rangecache-cold", "rangecache-warm", "nginx-cold", "nginx-warm".
    pub target: String,
    /// Each round.
    pub rounds: Vec<RoundSummary>,
    /// Responses.
    pub requests: u64,
    /// Correct responses.
    pub ok: u64,
    /// Body bytes.
    pub bytes: u64,
    /// Summed wall time of its rounds.
    pub elapsed_s: f64,
    /// Correct responses per second over all rounds.
    pub req_per_s: f64,
    /// Body MB/s over all rounds.
    pub mb_per_s: f64,
    /// Latency over all rounds.
    pub latency: Latency,
    /// Time to the first body byte over all rounds.
    pub first_byte: Latency,
    /// Origin faults and their handling over all rounds.
    pub faults: FaultCounts,
    /// Origin requests over all rounds.
    pub origin_requests: Option<u64>,
    /// Origin body bytes over all rounds.
    pub origin_bytes: Option<u64>,
    /// Block hit ratio over all rounds (rangecache targets).
    pub hit_ratio: Option<f64>,
    /// Prefetch counters over all rounds (rangecache targets).
    pub prefetch: Option<PrefetchCounts>,
    /// Connection failures and timeouts.
    pub transport_errors: u64,
    /// Unexpected statuses.
    pub status_errors: u64,
    /// Responses with wrong range, length or bytes (must be 0).
    pub verify_failures: u64,
    /// Bytes that failed verification (must be 0).
    pub verify_failed_bytes: u64,
    /// Latency CDF: (ms, fraction).
    pub cdf: Vec<[f64; 2]>,
}

/// How one target compares with another.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Ratio {
    /// The target measured ("rangecache-warm").
    pub target: String,
    /// What it is compared with ("direct").
    pub baseline: String,
    /// target req/s ÷ baseline req/s, over all rounds.
    pub throughput: f64,
    /// The same per round (paired by round number).
    pub throughput_per_round: Vec<f64>,
    /// baseline p50 ÷ target p50 (> 1: the target is faster).
    pub p50_speedup: f64,
    /// baseline p99 ÷ target p99.
    pub p99_speedup: f64,
}

fn div(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// The ratio of `t` to `base`.
pub fn ratio(t: &TargetReport, base: &TargetReport) -> Ratio {
    Ratio {
        target: t.target.clone(),
        baseline: base.target.clone(),
        throughput: div(t.req_per_s, base.req_per_s),
        throughput_per_round: t
            .rounds
            .iter()
            .zip(&base.rounds)
            .map(|(a, b)| div(a.req_per_s, b.req_per_s))
            .collect(),
        p50_speedup: div(base.latency.p50_ms, t.latency.p50_ms),
        p99_speedup: div(base.latency.p99_ms, t.latency.p99_ms),
    }
}

/// The ratios a report shows: each rangecache target against direct and against the nginx
/// target of the same temperature, and warm ones against nginx serving local files (the
/// ceiling), when those ran.
pub fn standard_ratios(targets: &[TargetReport]) -> Vec<Ratio> {
    let find = |n: &str| targets.iter().find(|t| t.target == n);
    let mut out = Vec::new();
    for (rc, peers) in [
        ("rangecache-cold", &["direct", "nginx-cold"][..]),
        (
            "rangecache-warm",
            &["direct", "nginx-warm", "nginx-file"][..],
        ),
        (
            "rangecache-anon",
            &["direct", "nginx-warm", "nginx-file"][..],
        ),
    ] {
        if let Some(r) = find(rc) {
            out.extend(peers.iter().filter_map(|p| find(p)).map(|b| ratio(r, b)));
        }
    }
    if let (Some(n), Some(f)) = (find("nginx-warm"), find("nginx-file")) {
        out.push(ratio(n, f));
    }
    out
}

/// How much longer a target takes than a baseline, as time ratios (target ÷ baseline; 1.0 =
/// as fast, 1.38 = 38% slower): the figure of a cold read, where the goal is ≤ 1.05.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TimeRatio {
    /// The target measured ("rangecache-cold").
    pub target: String,
    /// What it is compared with ("direct").
    pub baseline: String,
    /// Median time to first body byte, target ÷ baseline.
    pub first_byte_p50: f64,
    /// 99th percentile time to first body byte, target ÷ baseline.
    pub first_byte_p99: f64,
    /// Median whole-response time, target ÷ baseline.
    pub response_p50: f64,
    /// 99th percentile whole-response time, target ÷ baseline.
    pub response_p99: f64,
}

/// Time ratios of every cold target (cache empty for what it reads) against direct.
pub fn cold_time_ratios(targets: &[TargetReport]) -> Vec<TimeRatio> {
    let Some(d) = targets.iter().find(|t| t.target == "direct") else {
        return Vec::new();
    };
    targets
        .iter()
        .filter(|t| t.target.ends_with("-cold"))
        .map(|t| TimeRatio {
            target: t.target.clone(),
            baseline: d.target.clone(),
            first_byte_p50: div(t.first_byte.p50_ms, d.first_byte.p50_ms),
            first_byte_p99: div(t.first_byte.p99_ms, d.first_byte.p99_ms),
            response_p50: div(t.latency.p50_ms, d.latency.p50_ms),
            response_p99: div(t.latency.p99_ms, d.latency.p99_ms),
        })
        .collect()
}

/// A warm-up pass (not timed into the results).
#[derive(Debug, Clone, Serialize)]
pub struct WarmupSummary {
    /// The target warmed.
    pub target: String,
    /// Reads made.
    pub requests: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Seconds taken.
    pub elapsed_s: f64,
    /// Requests the origin received meanwhile.
    pub origin_requests: Option<u64>,
    /// Failures during warm-up (must be 0).
    pub failures: u64,
}

/// One workload run against several targets.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadReport {
    /// Workload name.
    pub workload: String,
    /// What it does.
    pub description: String,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Rounds (each target once per round, interleaved).
    pub rounds: usize,
    /// Per target per round: seconds, or null when bounded by request count.
    pub round_duration_s: Option<f64>,
    /// Per target per round: requests, or null when bounded by time.
    pub round_requests: Option<u64>,
    /// Warm-up passes.
    pub warmups: Vec<WarmupSummary>,
    /// Results per target.
    pub targets: Vec<TargetReport>,
    /// Ratios between targets.
    pub ratios: Vec<Ratio>,
    /// Cold targets' time ratios against direct.
    pub time_ratios: Vec<TimeRatio>,
}

/// The machine a run happened on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Online CPUs.
    pub cores: usize,
    /// CPU model from /proc/cpuinfo.
    pub cpu: String,
    /// Kernel release.
    pub kernel: String,
}

impl Machine {
    /// Describe this machine.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".into());
        Machine {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            cpu,
            kernel,
        }
    }
}

/// A whole invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// UTC time the run started (ISO 8601).
    pub date: String,
    /// The command line.
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// The origin: the simulator's model, or the endpoint.
    pub origin: String,
    /// Caveats every reader must see.
    pub notes: Vec<String>,
    /// One entry per workload.
    pub workloads: Vec<WorkloadReport>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: &[u64]) -> Histogram<u64> {
        let mut h = crate::bench::round::new_histogram();
        for &v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    fn target(name: &str, rps: &[f64], p50: f64, p99: f64) -> TargetReport {
        TargetReport {
            target: name.into(),
            rounds: rps
                .iter()
                .enumerate()
                .map(|(i, &r)| RoundSummary {
                    round: i + 1,
                    bucket: "b".into(),
                    requests: 0,
                    elapsed_s: 1.0,
                    req_per_s: r,
                    mb_per_s: 0.0,
                    latency: Latency::default(),
                    origin_requests: None,
                    origin_bytes: None,
                    hit_ratio: None,
                    worker_requests: None,
                    prefetch: None,
                    early: None,
                    first_byte: Latency::default(),
                    faults: FaultCounts::default(),
                })
                .collect(),
            requests: 0,
            ok: 0,
            bytes: 0,
            elapsed_s: 0.0,
            req_per_s: rps.iter().sum::<f64>() / rps.len() as f64,
            mb_per_s: 0.0,
            latency: Latency {
                p50_ms: p50,
                p99_ms: p99,
                ..Latency::default()
            },
            first_byte: Latency {
                p50_ms: p50 / 2.0,
                p99_ms: p99 / 2.0,
                ..Latency::default()
            },
            faults: FaultCounts::default(),
            origin_requests: None,
            origin_bytes: None,
            hit_ratio: None,
            prefetch: None,
            transport_errors: 0,
            status_errors: 0,
            verify_failures: 0,
            verify_failed_bytes: 0,
            cdf: vec![],
        }
    }

    #[test]
    fn percentiles_from_histogram() {
        let values: Vec<u64> = (1..=1000).map(|i| i * 1000).collect(); // 1..1000 ms
        let l = Latency::of(&hist(&values));
        assert!((l.p50_ms - 500.0).abs() <= 1.0, "{l:?}");
        assert!((l.p90_ms - 900.0).abs() <= 1.0, "{l:?}");
        assert!((l.p99_ms - 990.0).abs() <= 1.0, "{l:?}");
        assert!((l.p999_ms - 999.0).abs() <= 1.0, "{l:?}");
        assert!((l.max_ms - 1000.0).abs() <= 1.0, "{l:?}");
        assert!((l.mean_ms - 500.5).abs() <= 1.0, "{l:?}");
        assert_eq!(
            Latency::of(&crate::bench::round::new_histogram()),
            Latency::default()
        );
    }

    #[test]
    fn cdf_is_monotonic_and_ends_at_one() {
        let c = cdf_points(&hist(&[100, 200, 300, 5000]));
        assert!(c
            .windows(2)
            .all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1]));
        assert_eq!(c.last().unwrap()[1], 1.0);
        assert!((c.last().unwrap()[0] - 5.0).abs() < 0.01);
    }

    #[test]
    fn ratios() {
        let d = target("direct", &[10.0, 20.0], 40.0, 100.0);
        let w = target("rangecache-warm", &[100.0, 300.0], 4.0, 20.0);
        let n = target("nginx-warm", &[50.0, 100.0], 8.0, 10.0);
        let r = ratio(&w, &d);
        assert_eq!(r.throughput, 200.0 / 15.0);
        assert_eq!(r.throughput_per_round, vec![10.0, 15.0]);
        assert_eq!(r.p50_speedup, 10.0);
        assert_eq!(r.p99_speedup, 5.0);
        let all = standard_ratios(&[d.clone(), w.clone(), n.clone()]);
        let names: Vec<(&str, &str)> = all
            .iter()
            .map(|r| (r.target.as_str(), r.baseline.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("rangecache-warm", "direct"),
                ("rangecache-warm", "nginx-warm")
            ]
        );
        assert_eq!(all[1].p99_speedup, 0.5);
        assert_eq!(ratio(&w, &target("x", &[0.0], 0.0, 0.0)).throughput, 0.0);
    }

    #[test]
    fn hit_path_ratios_include_the_anonymous_row_and_the_ceiling() {
        let w = target("rangecache-warm", &[100.0], 4.0, 20.0);
        let a = target("rangecache-anon", &[150.0], 3.0, 10.0);
        let n = target("nginx-warm", &[100.0], 8.0, 10.0);
        let f = target("nginx-file", &[200.0], 2.0, 5.0);
        let all = standard_ratios(&[w, a, n, f]);
        let names: Vec<(&str, &str, f64)> = all
            .iter()
            .map(|r| (r.target.as_str(), r.baseline.as_str(), r.throughput))
            .collect();
        assert_eq!(
            names,
            vec![
                ("rangecache-warm", "nginx-warm", 1.0),
                ("rangecache-warm", "nginx-file", 0.5),
                ("rangecache-anon", "nginx-warm", 1.5),
                ("rangecache-anon", "nginx-file", 0.75),
                ("nginx-warm", "nginx-file", 0.5),
            ]
        );
    }

    #[test]
    fn cold_time_ratios_divide_target_by_direct() {
        let d = target("direct", &[10.0], 40.0, 100.0);
        let c = target("rangecache-cold", &[10.0], 50.0, 110.0);
        let w = target("rangecache-warm", &[10.0], 4.0, 20.0);
        let r = cold_time_ratios(&[d.clone(), c, w]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].target, "rangecache-cold");
        assert_eq!(r[0].response_p50, 1.25);
        assert_eq!(r[0].response_p99, 1.1);
        // The helper's first-byte times are half the response times.
        assert_eq!(r[0].first_byte_p50, 1.25);
        assert!(cold_time_ratios(&[target("rangecache-cold", &[1.0], 1.0, 1.0)]).is_empty());
        let zero = target("direct", &[1.0], 0.0, 0.0);
        let c = target("rangecache-cold", &[1.0], 5.0, 5.0);
        assert_eq!(cold_time_ratios(&[zero, c])[0].response_p50, 0.0);
    }

    #[test]
    fn fault_counts_add_known_to_unknown() {
        let mut a = FaultCounts::default();
        a.add(&FaultCounts {
            origin_503s: Some(3),
            origin_resets: Some(2),
            retries: None,
            resumes: Some(0),
        });
        a.add(&FaultCounts {
            origin_503s: Some(1),
            origin_resets: None,
            retries: None,
            resumes: Some(4),
        });
        assert_eq!(
            a,
            FaultCounts {
                origin_503s: Some(4),
                origin_resets: Some(2),
                retries: None,
                resumes: Some(4),
            }
        );
        assert_eq!(a.injected(), 6);
    }

    #[test]
    fn table_and_svg_show_every_target() {
        let d = target("direct", &[10.0], 40.0, 100.0);
        let w = target("rangecache-warm", &[100.0], 4.0, 20.0);
        let ratios = standard_ratios(&[d.clone(), w.clone()]);
        let report = Report {
            date: "2026-01-01T00:00:00Z".into(),
            command: "rangecache-loadtest".into(),
            machine: Machine {
                cores: 2,
                cpu: "cpu".into(),
                kernel: "6".into(),
            },
            origin: "simulator <20ms>".into(),
            notes: vec!["shared cores".into()],
            workloads: vec![WorkloadReport {
                workload: "parquet".into(),
                description: "d".into(),
                concurrency: 8,
                rounds: 1,
                round_duration_s: Some(8.0),
                round_requests: None,
                warmups: vec![],
                targets: vec![d, w],
                ratios,
                time_ratios: vec![],
            }],
        };
        let text = table::render(&report);
        assert!(
            text.contains("direct") && text.contains("rangecache-warm"),
            "{text}"
        );
        assert!(
            text.contains("rangecache-warm / direct: 10.00x req/s"),
            "{text}"
        );
        assert!(text.contains("note:    shared cores"));
        let svg = svg::render(&report);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("simulator &lt;20ms&gt;"));
        assert!(svg.contains(">rangecache-warm<"));
    }
}
