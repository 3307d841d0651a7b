//! The report: per workload, per target, what a run measured, the ratios between targets,
//! and the same as a text table ([`table`]), JSON (serde) and an SVG picture ([`svg`]).

pub mod svg;
pub mod table;

use hdrhistogram::Histogram;
use serde::Serialize;

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
    /// Origin requests over all rounds.
    pub origin_requests: Option<u64>,
    /// Origin body bytes over all rounds.
    pub origin_bytes: Option<u64>,
    /// Block hit ratio over all rounds (rangecache targets).
    pub hit_ratio: Option<f64>,
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
/// target of the same temperature, when those ran.
pub fn standard_ratios(targets: &[TargetReport]) -> Vec<Ratio> {
    let find = |n: &str| targets.iter().find(|t| t.target == n);
    let mut out = Vec::new();
    for (rc, ng) in [
        ("rangecache-cold", "nginx-cold"),
        ("rangecache-warm", "nginx-warm"),
    ] {
        if let Some(r) = find(rc) {
            if let Some(d) = find("direct") {
                out.push(ratio(r, d));
            }
            if let Some(n) = find(ng) {
                out.push(ratio(r, n));
            }
        }
    }
    out
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
            origin_requests: None,
            origin_bytes: None,
            hit_ratio: None,
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
