//! The memory bound run's report: per phase the peak RSS of rangecache against the bound
//! `cache.memory + cache.inflight_memory + 64 MiB`, what the readers got, and for the stall
//! phase how many stalled readers rangecache cut. PASS/FAIL are report lines, not assertions.

use std::fmt::Write as _;

use serde::Serialize;

use super::Machine;
use crate::units::fmt_bytes;

/// The fixed overhead the bound allows beside the cache and the in-flight budget.
pub const OVERHEAD: u64 = 64 << 20;

/// Whether a bound held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// It held.
    #[serde(rename = "PASS")]
    Pass,
    /// It did not (or could not be measured).
    #[serde(rename = "FAIL")]
    Fail,
}

impl Verdict {
    /// "PASS" or "FAIL".
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
        }
    }
}

/// rangecache's memory settings as its `/config` reported them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MemorySettings {
    /// `cache.memory`, bytes.
    pub cache_memory: u64,
    /// `cache.inflight_memory`, bytes (`None`: this rangecache has no such key).
    pub inflight_memory: Option<u64>,
    /// `cache.readahead_window` as reported (`None`: no such key).
    pub readahead_window: Option<String>,
    /// `server.send_timeout` in seconds (`None`: no such key).
    pub send_timeout_s: Option<f64>,
}

impl MemorySettings {
    /// `cache.memory + cache.inflight_memory + 64 MiB` (an absent in-flight budget counts 0).
    pub fn bound(&self) -> u64 {
        self.cache_memory + self.inflight_memory.unwrap_or(0) + OVERHEAD
    }
}

/// How many stalled readers were disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CutReport {
    /// Readers whose connection the server ended during or after the stall.
    pub cut: usize,
    /// Readers that stalled.
    pub of: usize,
    /// Seconds each reader took nothing.
    pub stall_s: f64,
    /// rangecache's `rangecache_connections_open` at the end of the stall.
    pub open_at_end_of_stall: Option<u64>,
    /// rangecache's `rangecache_send_timeouts_total` at the end of the phase (`None`: not
    /// exported by this build).
    pub send_timeouts: Option<u64>,
    /// PASS when every stalled reader was cut and rangecache has a send timeout shorter than
    /// the stall.
    pub verdict: Verdict,
}

/// The cut verdict: every reader cut, by a send timeout shorter than the stall.
pub fn cut_verdict(cut: usize, of: usize, send_timeout_s: Option<f64>, stall_s: f64) -> Verdict {
    match send_timeout_s {
        Some(t) if t < stall_s && cut == of && of > 0 => Verdict::Pass,
        _ => Verdict::Fail,
    }
}

/// The bound verdict: the peak within the bound, and the run not stopped early (`stopped`
/// says why it was).
pub fn bound_verdict(peak: u64, bound: u64, stopped: Option<&str>) -> Verdict {
    if peak <= bound && stopped.is_none() {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// One phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseReport {
    /// "slow", "fast" or "stall".
    pub phase: String,
    /// What the readers did.
    pub description: String,
    /// Readers.
    pub clients: usize,
    /// Seconds the phase ran.
    pub elapsed_s: f64,
    /// Largest RSS sample, bytes.
    pub peak_rss: u64,
    /// Last RSS sample, bytes.
    pub last_rss: u64,
    /// RSS samples taken.
    pub samples: usize,
    /// The bound, bytes.
    pub bound: u64,
    /// Peak against the bound.
    pub verdict: Verdict,
    /// Why the phase ended early, if it did (safety stop, rangecache gone).
    pub stopped: Option<String>,
    /// Body bytes all readers received.
    pub bytes: u64,
    /// Slowest reader, MB/s.
    pub min_mb_per_s: f64,
    /// Median reader, MB/s.
    pub median_mb_per_s: f64,
    /// Readers whose stream failed, was cut, or was refused, other than by design.
    pub client_errors: usize,
    /// Readers that received a wrong byte.
    pub verify_failures: usize,
    /// How the readers' streams ended ("deadline", "closed", "reset", ...) with counts.
    pub ends: Vec<(String, usize)>,
    /// Stall phase: how many were cut.
    pub cut: Option<CutReport>,
    /// RSS over time: (seconds, bytes), the largest sample per second.
    pub rss_series: Vec<[f64; 2]>,
}

/// The whole memory run.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryReport {
    /// UTC start time.
    pub date: String,
    /// Command line.
    pub command: String,
    /// Where it ran.
    pub machine: Machine,
    /// The origin.
    pub origin: String,
    /// rangecache's settings (from the first phase's `/config`).
    pub settings: MemorySettings,
    /// `cache.memory + cache.inflight_memory + 64 MiB`.
    pub bound: u64,
    /// Caveats.
    pub notes: Vec<String>,
    /// Phases in order.
    pub phases: Vec<PhaseReport>,
}

fn opt_bytes(v: Option<u64>) -> String {
    v.map_or_else(|| "absent (counted as 0)".into(), fmt_bytes)
}

/// The report as text.
pub fn render(r: &MemoryReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "rangecache-loadtest memory  {}", r.date);
    let _ = writeln!(
        s,
        "machine: {} cores, {}, Linux {}",
        r.machine.cores, r.machine.cpu, r.machine.kernel
    );
    let _ = writeln!(s, "command: {}", r.command);
    let _ = writeln!(s, "origin:  {}", r.origin);
    let st = &r.settings;
    let _ = writeln!(
        s,
        "rangecache: cache.memory {}, cache.inflight_memory {}, cache.readahead_window {}, server.send_timeout {}",
        fmt_bytes(st.cache_memory),
        opt_bytes(st.inflight_memory),
        st.readahead_window.as_deref().unwrap_or("absent"),
        st.send_timeout_s
            .map_or_else(|| "absent".into(), |t| format!("{t} s"))
    );
    let _ = writeln!(
        s,
        "bound:   cache.memory + cache.inflight_memory + 64 MiB = {}",
        fmt_bytes(r.bound)
    );
    for n in &r.notes {
        let _ = writeln!(s, "note:    {n}");
    }
    for p in &r.phases {
        let _ = writeln!(s, "\nphase {}: {}", p.phase, p.description);
        let _ = writeln!(
            s,
            "  peak RSS {} (last {}, {} samples over {:.1} s) vs bound {}: {}",
            fmt_bytes(p.peak_rss),
            fmt_bytes(p.last_rss),
            p.samples,
            p.elapsed_s,
            fmt_bytes(p.bound),
            p.verdict.as_str()
        );
        if let Some(why) = &p.stopped {
            let _ = writeln!(s, "  stopped early: {why}");
        }
        let ends: Vec<String> = p.ends.iter().map(|(k, n)| format!("{n} {k}")).collect();
        let _ = writeln!(
            s,
            "  {} clients read {} (per client: slowest {:.2} MB/s, median {:.2} MB/s); streams ended: {}; client errors {}, verify failures {}",
            p.clients,
            fmt_bytes(p.bytes),
            p.min_mb_per_s,
            p.median_mb_per_s,
            ends.join(", "),
            p.client_errors,
            p.verify_failures
        );
        if let (Some(c), Some(_)) = (&p.cut, &p.stopped) {
            let _ = writeln!(
                s,
                "  stalled readers cut: not measured ({} of {} connections ended, but rangecache was stopped early): {}",
                c.cut,
                c.of,
                c.verdict.as_str()
            );
        } else if let Some(c) = &p.cut {
            let _ = writeln!(
                s,
                "  stalled readers cut: {} of {} after {:.0} s without reading (rangecache connections open at the end of the stall: {}; rangecache_send_timeouts_total {}; server.send_timeout {}): {}",
                c.cut,
                c.of,
                c.stall_s,
                c.open_at_end_of_stall
                    .map_or_else(|| "unknown".into(), |v| v.to_string()),
                c.send_timeouts
                    .map_or_else(|| "absent".into(), |v| v.to_string()),
                st.send_timeout_s
                    .map_or_else(|| "absent".into(), |t| format!("{t} s")),
                c.verdict.as_str()
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_counts_an_absent_budget_as_zero() {
        let mut st = MemorySettings {
            cache_memory: 256 << 20,
            ..MemorySettings::default()
        };
        assert_eq!(st.bound(), 320 << 20);
        st.inflight_memory = Some(128 << 20);
        assert_eq!(st.bound(), 448 << 20);
    }

    #[test]
    fn verdicts() {
        assert_eq!(bound_verdict(100, 100, None), Verdict::Pass);
        assert_eq!(bound_verdict(101, 100, None), Verdict::Fail);
        assert_eq!(bound_verdict(50, 100, Some("killed")), Verdict::Fail);
        assert_eq!(cut_verdict(4, 4, Some(10.0), 15.0), Verdict::Pass);
        assert_eq!(cut_verdict(3, 4, Some(10.0), 15.0), Verdict::Fail);
        assert_eq!(cut_verdict(4, 4, None, 15.0), Verdict::Fail);
        assert_eq!(cut_verdict(4, 4, Some(20.0), 15.0), Verdict::Fail);
        assert_eq!(cut_verdict(0, 0, Some(1.0), 15.0), Verdict::Fail);
    }

    #[test]
    fn renders_verdicts_and_absent_keys() {
        let settings = MemorySettings {
            cache_memory: 256 << 20,
            ..MemorySettings::default()
        };
        let phase = PhaseReport {
            phase: "stall".into(),
            description: "d".into(),
            clients: 4,
            elapsed_s: 20.0,
            peak_rss: 1 << 30,
            last_rss: 1 << 30,
            samples: 200,
            bound: settings.bound(),
            verdict: Verdict::Fail,
            stopped: Some("safety stop".into()),
            bytes: 4 << 20,
            min_mb_per_s: 0.1,
            median_mb_per_s: 0.2,
            client_errors: 0,
            verify_failures: 0,
            ends: vec![("deadline".into(), 4)],
            cut: Some(CutReport {
                cut: 0,
                of: 4,
                stall_s: 20.0,
                open_at_end_of_stall: Some(4),
                send_timeouts: None,
                verdict: Verdict::Fail,
            }),
            rss_series: vec![],
        };
        let r = MemoryReport {
            date: "d".into(),
            command: "c".into(),
            machine: Machine {
                cores: 2,
                cpu: "cpu".into(),
                kernel: "k".into(),
            },
            origin: "sim".into(),
            bound: settings.bound(),
            settings,
            notes: vec![],
            phases: vec![phase],
        };
        let text = render(&r);
        assert!(
            text.contains("cache.inflight_memory absent (counted as 0)"),
            "{text}"
        );
        assert!(text.contains("vs bound 320 MiB: FAIL"), "{text}");
        assert!(text.contains("stalled readers cut: not measured"), "{text}");
        assert!(text.contains("stopped early: safety stop"), "{text}");
        let mut measured = r.clone();
        measured.phases[0].stopped = None;
        let text = render(&measured);
        assert!(
            text.contains("stalled readers cut: 0 of 4 after 20 s"),
            "{text}"
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"verdict\":\"FAIL\""), "{json}");
    }
}
