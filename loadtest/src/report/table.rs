//! The report as text: a header with the run's facts, then per workload one table row per
//! target and one line per ratio.

use std::fmt::Write as _;

use super::{FaultCounts, Report, TargetReport, WorkloadReport};
use crate::units::fmt_bytes;

fn opt_u(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn opt_mb(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.0}", v as f64 / 1e6))
}

/// One workload's table.
pub fn workload_table(w: &WorkloadReport) -> String {
    let mut s = String::new();
    let bound = match (w.round_duration_s, w.round_requests) {
        (Some(d), _) => format!("{d:.0} s"),
        (None, Some(n)) => format!("{n} requests"),
        _ => "until done".into(),
    };
    let _ = writeln!(s, "workload {}: {}", w.workload, w.description);
    let _ = writeln!(
        s,
        "  {} connections; {} interleaved round(s), each target {} per round",
        w.concurrency, w.rounds, bound
    );
    for wu in &w.warmups {
        let _ = writeln!(
            s,
            "  warm-up {}: {} reads, {} in {:.1} s, {} origin requests, {} failures (not in the results)",
            wu.target,
            wu.requests,
            fmt_bytes(wu.bytes),
            wu.elapsed_s,
            opt_u(wu.origin_requests),
            wu.failures
        );
    }
    let _ = writeln!(
        s,
        "  {:<16} {:>9} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>10} {:>9} {:>6} {:>6} {:>11}",
        "target",
        "req/s",
        "MB/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "1st p50",
        "1st p99",
        "origin req",
        "origin MB",
        "hit %",
        "errors",
        "verify fail"
    );
    for t in &w.targets {
        let _ = writeln!(
            s,
            "  {:<16} {:>9.1} {:>8.1} {:>8.2} {:>8.2} {:>8.2} {:>9.2} {:>8.2} {:>8.2} {:>10} {:>9} {:>6} {:>6} {:>11}",
            t.target,
            t.req_per_s,
            t.mb_per_s,
            t.latency.p50_ms,
            t.latency.p90_ms,
            t.latency.p99_ms,
            t.latency.p999_ms,
            t.first_byte.p50_ms,
            t.first_byte.p99_ms,
            opt_u(t.origin_requests),
            opt_mb(t.origin_bytes),
            t.hit_ratio.map_or_else(|| "-".into(), |h| format!("{:.1}", h * 100.0)),
            t.transport_errors + t.status_errors,
            if t.verify_failed_bytes > 0 {
                format!("{} ({} B)", t.verify_failures, t.verify_failed_bytes)
            } else {
                t.verify_failures.to_string()
            }
        );
    }
    for r in &w.ratios {
        let per_round: Vec<String> = r
            .throughput_per_round
            .iter()
            .map(|x| format!("{x:.2}x"))
            .collect();
        let _ = writeln!(
            s,
            "  {} / {}: {:.2}x req/s (per round {}), p50 {:.2}x faster, p99 {:.2}x faster",
            r.target,
            r.baseline,
            r.throughput,
            per_round.join(" "),
            r.p50_speedup,
            r.p99_speedup
        );
    }
    for r in &w.time_ratios {
        let _ = writeln!(
            s,
            "  {} time / {} time (1.00 = as fast): first byte p50 {:.2}x, p99 {:.2}x; whole response p50 {:.2}x, p99 {:.2}x",
            r.target,
            r.baseline,
            r.first_byte_p50,
            r.first_byte_p99,
            r.response_p50,
            r.response_p99
        );
    }
    for t in &w.targets {
        if let Some(p) = &t.prefetch {
            let _ = writeln!(s, "  prefetch {}: {}", t.target, p.line());
        }
    }
    if w.targets
        .iter()
        .any(|t| t.faults.injected() > 0 || t.faults.retries.unwrap_or(0) > 0)
    {
        let _ = writeln!(s, "  origin faults and what clients saw:");
        for t in &w.targets {
            let _ = writeln!(s, "    {}", fault_line(t));
        }
    }
    s
}

fn rc_counter(v: Option<u64>, metric: &str) -> String {
    v.map_or_else(
        || format!("absent (no {metric} in /metrics)"),
        |v| v.to_string(),
    )
}

/// One target's faults: what the origin injected, what reached the client, and for rangecache
/// what it retried and resumed.
fn fault_line(t: &TargetReport) -> String {
    let FaultCounts {
        origin_503s,
        origin_resets,
        retries,
        resumes,
    } = t.faults;
    let mut line = format!(
        "{:<16} origin 503s {}, resets {}; client errors {} ({} transport, {} status); verify failures {}",
        t.target,
        opt_u(origin_503s),
        opt_u(origin_resets),
        t.transport_errors + t.status_errors,
        t.transport_errors,
        t.status_errors,
        t.verify_failures
    );
    if t.target.starts_with("rangecache") {
        let _ = write!(
            line,
            "; rangecache retries {}, fill resumes {}",
            rc_counter(retries, "rangecache_origin_retries_total"),
            rc_counter(resumes, "rangecache_fill_resumes_total")
        );
    }
    line
}

/// The whole report.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "rangecache-loadtest  {}", r.date);
    let _ = writeln!(
        s,
        "machine: {} cores, {}, Linux {}",
        r.machine.cores, r.machine.cpu, r.machine.kernel
    );
    let _ = writeln!(s, "command: {}", r.command);
    let _ = writeln!(s, "origin:  {}", r.origin);
    for n in &r.notes {
        let _ = writeln!(s, "note:    {n}");
    }
    for w in &r.workloads {
        s.push('\n');
        s.push_str(&workload_table(w));
    }
    s
}
