//! The memory bound run: rangecache (the release binary) in front of the simulator, readers
//! that each GET a different large object, and rangecache's RSS sampled from
//! `/proc/PID/status` throughout. Three phases, each against a fresh rangecache process:
//!
//! - `slow`: readers limited to a byte rate (small receive buffer, paced reads);
//! - `fast`: readers taking bytes as fast as they can;
//! - `stall`: readers that take a little, then nothing for longer than `server.send_timeout`,
//!   then look whether rangecache cut them.
//!
//! Each phase's peak RSS is compared with `cache.memory + cache.inflight_memory + 64 MiB`, the
//! settings read back from rangecache's `/config`. A safety stop kills rangecache if its RSS
//! passes a much larger limit, so a build that does not hold the bound cannot take the machine.

pub mod reader;
pub mod rss;

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::task::LocalSet;
use tokio::time::Instant;

use super::proc::http_request;
use super::rangecache::{MetricsText, Rangecache, RangecacheOptions};
use crate::client::{encode_path, Endpoint, Signer};
use crate::content::object_seed;
use crate::object::synthetic_key;
use crate::report::memory::{
    bound_verdict, cut_verdict, CutReport, MemorySettings, PhaseReport, OVERHEAD,
};
use crate::sim::Credentials;
use crate::units::{fmt_bytes, parse_duration, parse_size};
use reader::{read_stream, Pace, StreamEnd, StreamOutcome, StreamSpec};
use rss::{RssSampler, RssTrace, Stop};

/// Stall used when neither the plan nor rangecache names a send timeout.
const DEFAULT_STALL: Duration = Duration::from_secs(20);
/// How much longer than `server.send_timeout` stalled readers wait by default.
const STALL_MARGIN: Duration = Duration::from_secs(5);
/// Time allowed for a stalled reader's request head and first bytes.
const STALL_LEAD: Duration = Duration::from_secs(30);
/// The safety stop is at least this (and at least twice the bound).
const MIN_SAFETY_STOP: u64 = 4 << 30;

/// A phase of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Rate-limited readers.
    Slow,
    /// Readers as fast as they can.
    Fast,
    /// Readers that stop reading.
    Stall,
}

impl Phase {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Slow => "slow",
            Phase::Fast => "fast",
            Phase::Stall => "stall",
        }
    }

    /// Parse a comma-separated list of `slow`, `fast`, `stall` (order kept, duplicates
    /// dropped).
    pub fn parse_list(s: &str) -> Result<Vec<Phase>> {
        let mut out = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let p = match item {
                "slow" => Phase::Slow,
                "fast" => Phase::Fast,
                "stall" => Phase::Stall,
                other => bail!("unknown phase {other:?}: use slow, fast, stall"),
            };
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            bail!("no phases given");
        }
        Ok(out)
    }
}

/// How to run it.
#[derive(Debug, Clone)]
pub struct MemoryPlan {
    /// Phases in order.
    pub phases: Vec<Phase>,
    /// Readers in the slow and fast phases.
    pub clients: usize,
    /// Readers in the stall phase.
    pub stall_clients: usize,
    /// Size of each object.
    pub object_size: u64,
    /// Bytes per second per slow reader.
    pub rate: u64,
    /// Length of the slow and fast phases.
    pub duration: Duration,
    /// How long stalled readers take nothing (`None`: `server.send_timeout` + 5 s, or 20 s).
    pub stall: Option<Duration>,
    /// Bytes a stalled reader takes before it stalls.
    pub stall_after: u64,
    /// How long a stalled reader reads afterwards to see whether it was cut.
    pub resume_for: Duration,
    /// `SO_RCVBUF` of the slow and stalled readers.
    pub recv_buffer: u32,
    /// RSS sampling interval.
    pub sample_every: Duration,
    /// Kill rangecache past this RSS (`None`: the larger of 4 GiB and twice the bound).
    pub safety_stop: Option<u64>,
    /// Check every byte.
    pub verify: bool,
}

/// The memory settings rangecache reports on `/config` (a string or an integer per key).
pub fn settings_of(config: &serde_json::Value) -> Result<MemorySettings> {
    let text = |v: &serde_json::Value| -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let cache = &config["cache"];
    let memory = text(&cache["memory"]).context("/config has no cache.memory")?;
    let size = |s: String| parse_size(&s).map_err(anyhow::Error::msg);
    Ok(MemorySettings {
        cache_memory: size(memory)?,
        inflight_memory: text(&cache["inflight_memory"]).map(size).transpose()?,
        readahead_window: text(&cache["readahead_window"]),
        send_timeout_s: text(&config["server"]["send_timeout"])
            .map(|s| parse_duration(&s).map(|d| d.as_secs_f64()))
            .transpose()
            .map_err(anyhow::Error::msg)?,
    })
}

/// The largest RSS allowed before rangecache is killed.
pub fn safety_stop(plan: Option<u64>, bound: u64) -> u64 {
    plan.unwrap_or_else(|| MIN_SAFETY_STOP.max(2 * bound))
}

/// How long stalled readers take nothing.
pub fn stall_for(plan: Option<Duration>, send_timeout_s: Option<f64>) -> Duration {
    plan.unwrap_or_else(|| {
        send_timeout_s.map_or(DEFAULT_STALL, |t| Duration::from_secs_f64(t) + STALL_MARGIN)
    })
}

fn end_name(e: StreamEnd) -> String {
    match e {
        StreamEnd::Deadline => "still open at the deadline".into(),
        StreamEnd::Complete => "complete".into(),
        StreamEnd::Closed => "closed by the server".into(),
        StreamEnd::Failed(kind) => format!("failed ({kind})"),
        StreamEnd::Status(s) => format!("status {s}"),
    }
}

/// Count the ends by kind, in first-seen order.
fn tally_ends(outcomes: &[StreamOutcome]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for o in outcomes {
        let name = end_name(o.end);
        match out.iter_mut().find(|(k, _)| *k == name) {
            Some((_, n)) => *n += 1,
            None => out.push((name, 1)),
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Whether an outcome is a client error in `phase`: anything but reaching the deadline (or
/// the end) with the connection working; in the stall phase a cut is the expected end.
fn is_error(phase: Phase, e: StreamEnd) -> bool {
    match e {
        StreamEnd::Deadline | StreamEnd::Complete => false,
        _ if phase == Phase::Stall => !e.is_cut(),
        _ => true,
    }
}

/// Run one phase against a fresh rangecache started with `opts` in `dir`; returns the phase
/// and the settings rangecache reported.
pub async fn run_phase(
    plan: &MemoryPlan,
    phase: Phase,
    opts: &RangecacheOptions,
    creds: &Credentials,
    dir: &Path,
) -> Result<(PhaseReport, MemorySettings)> {
    let rc = Rangecache::start(opts, dir).with_context(|| {
        format!(
            "start rangecache for the {} phase (a build without cache.inflight_memory, cache.readahead_window or server.send_timeout rejects them: leave out --inflight-memory, --readahead-window, --send-timeout)",
            phase.name()
        )
    })?;
    let settings = settings_of(&rc.effective_config()?)?;
    let bound = settings.bound();
    let stop_at = safety_stop(plan.safety_stop, bound);
    let stall = stall_for(plan.stall, settings.send_timeout_s);
    let (clients, pace, description) = match phase {
        Phase::Slow => (
            plan.clients,
            Pace::Limited(plan.rate),
            format!(
                "{} clients, each GETs a different {} object at {:.1} MB/s (receive buffer {}, paced reads) for {:.0} s",
                plan.clients,
                fmt_bytes(plan.object_size),
                plan.rate as f64 / 1e6,
                fmt_bytes(u64::from(plan.recv_buffer)),
                plan.duration.as_secs_f64()
            ),
        ),
        Phase::Fast => (
            plan.clients,
            Pace::Unlimited,
            format!(
                "{} clients, each GETs a different {} object as fast as it can for {:.0} s",
                plan.clients,
                fmt_bytes(plan.object_size),
                plan.duration.as_secs_f64()
            ),
        ),
        Phase::Stall => (
            plan.stall_clients,
            Pace::Stall {
                after: plan.stall_after,
                stall,
                resume_for: plan.resume_for,
            },
            format!(
                "{} clients, each GETs a different {} object, takes {}, then nothing for {:.0} s (receive buffer {}), then reads for up to {:.0} s",
                plan.stall_clients,
                fmt_bytes(plan.object_size),
                fmt_bytes(plan.stall_after),
                stall.as_secs_f64(),
                fmt_bytes(u64::from(plan.recv_buffer)),
                plan.resume_for.as_secs_f64()
            ),
        ),
    };
    eprintln!(
        "phase {}: rangecache pid {}, bound {}, safety stop {}; {description}",
        phase.name(),
        rc.pid(),
        fmt_bytes(bound),
        fmt_bytes(stop_at)
    );
    let endpoint = Rc::new(Endpoint {
        addr: rc.addr,
        host: rc.addr.to_string(),
        signer: Some(Signer::new(
            &creds.access_key,
            &creds.secret_key,
            &creds.region,
        )),
    });
    let bucket = format!("lt-memory-{}", phase.name());
    let t0 = Instant::now();
    let deadline = match phase {
        Phase::Stall => t0 + STALL_LEAD + stall + plan.resume_for,
        _ => t0 + plan.duration,
    };
    // Declared after `rc`, so on every path (even a dropped future) the sampler stops before
    // rangecache is reaped: its PID stays rangecache's while the sampler may signal it.
    let sampler = RssSampler::start(rc.pid(), plan.sample_every, stop_at)?;
    let outcomes: Rc<RefCell<Vec<StreamOutcome>>> = Rc::new(RefCell::new(Vec::new()));
    let local = LocalSet::new();
    for i in 0..clients {
        let key = synthetic_key("mem", i, plan.object_size);
        let spec = StreamSpec {
            endpoint: endpoint.clone(),
            path: encode_path(&bucket, &key),
            size: plan.object_size,
            seed: plan.verify.then(|| object_seed(&bucket, &key, 0)),
            recv_buffer: if pace == Pace::Unlimited {
                1 << 20
            } else {
                plan.recv_buffer
            },
            piece: if pace == Pace::Unlimited {
                256 << 10
            } else {
                16 << 10
            },
        };
        let outcomes = outcomes.clone();
        local.spawn_local(async move {
            let o = read_stream(&spec, pace, deadline).await;
            outcomes.borrow_mut().push(o);
        });
    }
    // Near the end of the stall, ask rangecache how many client connections it still holds.
    let open_at_end = Rc::new(RefCell::new(None));
    if phase == Phase::Stall {
        let (admin, open) = (rc.admin, open_at_end.clone());
        let when = t0 + stall.saturating_sub(Duration::from_millis(500));
        local.spawn_local(async move {
            tokio::time::sleep_until(when).await;
            let scraped =
                tokio::task::spawn_blocking(move || http_request(admin, "GET", "/metrics")).await;
            if let Ok(Ok((200, body))) = scraped {
                *open.borrow_mut() = MetricsText(body).sum("rangecache_connections_open");
            }
        });
    }
    local.await;
    let elapsed_s = t0.elapsed().as_secs_f64();
    let send_timeouts = if phase == Phase::Stall {
        rc.metrics()
            .ok()
            .and_then(|m| m.sum("rangecache_send_timeouts_total"))
    } else {
        None
    };
    let trace: RssTrace = sampler.finish();
    drop(rc);

    let outcomes = outcomes.take();
    let stopped = trace.stop.map(|s| match s {
        Stop::Aborted { at_s, rss } => format!(
            "rangecache's RSS reached {} at {at_s:.1} s, past the safety stop of {}: it was killed",
            fmt_bytes(rss),
            fmt_bytes(stop_at)
        ),
        Stop::Gone { at_s } => format!("rangecache exited at {at_s:.1} s"),
    });
    let cut = (phase == Phase::Stall).then(|| {
        let n = outcomes.iter().filter(|o| o.end.is_cut()).count();
        CutReport {
            cut: n,
            of: outcomes.len(),
            stall_s: stall.as_secs_f64(),
            open_at_end_of_stall: *open_at_end.borrow(),
            send_timeouts,
            verdict: if stopped.is_some() {
                crate::report::memory::Verdict::Fail
            } else {
                cut_verdict(
                    n,
                    outcomes.len(),
                    settings.send_timeout_s,
                    stall.as_secs_f64(),
                )
            },
        }
    });
    let rates: Vec<f64> = outcomes
        .iter()
        .map(|o| o.bytes as f64 / o.elapsed_s.max(1e-9) / 1e6)
        .collect();
    let report = PhaseReport {
        phase: phase.name().into(),
        description,
        clients,
        elapsed_s,
        peak_rss: trace.peak,
        last_rss: trace.last,
        samples: trace.samples.len(),
        bound,
        verdict: bound_verdict(trace.peak, bound, stopped.as_deref()),
        stopped,
        bytes: outcomes.iter().map(|o| o.bytes).sum(),
        min_mb_per_s: rates.iter().copied().reduce(f64::min).unwrap_or(0.0),
        median_mb_per_s: median(rates),
        client_errors: outcomes.iter().filter(|o| is_error(phase, o.end)).count(),
        verify_failures: outcomes.iter().filter(|o| o.bad_bytes > 0).count(),
        ends: tally_ends(&outcomes),
        cut,
        rss_series: trace.series(1.0),
    };
    Ok((report, settings))
}

/// The bound in words, for notes.
pub fn bound_note() -> String {
    format!(
        "bound = cache.memory + cache.inflight_memory + {} (read back from rangecache's /config); each phase runs against a fresh rangecache; RSS sampled from /proc/PID/status",
        fmt_bytes(OVERHEAD)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_parse() {
        assert_eq!(
            Phase::parse_list("stall, slow,stall").unwrap(),
            vec![Phase::Stall, Phase::Slow]
        );
        assert!(Phase::parse_list("idle").is_err());
        assert!(Phase::parse_list("").is_err());
    }

    #[test]
    fn settings_come_from_config_json_with_absent_keys() {
        let today: serde_json::Value = serde_json::from_str(
            r#"{"server":{"body_timeout":"60s"},"cache":{"memory":"256MiB","block_size":"1MiB"}}"#,
        )
        .unwrap();
        let s = settings_of(&today).unwrap();
        assert_eq!(s.cache_memory, 256 << 20);
        assert_eq!(s.inflight_memory, None);
        assert_eq!(s.send_timeout_s, None);
        let later: serde_json::Value = serde_json::from_str(
            r#"{"server":{"send_timeout":"10s"},"cache":{"memory":268435456,"inflight_memory":"128MiB","readahead_window":"8MiB"}}"#,
        )
        .unwrap();
        let s = settings_of(&later).unwrap();
        assert_eq!(
            (s.cache_memory, s.inflight_memory, s.send_timeout_s),
            (256 << 20, Some(128 << 20), Some(10.0))
        );
        assert_eq!(s.readahead_window.as_deref(), Some("8MiB"));
        assert!(settings_of(&serde_json::json!({"cache": {}})).is_err());
    }

    #[test]
    fn stall_and_safety_stop_defaults() {
        assert_eq!(stall_for(None, None), DEFAULT_STALL);
        assert_eq!(stall_for(None, Some(10.0)), Duration::from_secs(15));
        assert_eq!(
            stall_for(Some(Duration::from_secs(3)), Some(10.0)),
            Duration::from_secs(3)
        );
        assert_eq!(safety_stop(None, 320 << 20), 4 << 30);
        assert_eq!(safety_stop(None, 3 << 30), 6 << 30);
        assert_eq!(safety_stop(Some(1 << 30), 3 << 30), 1 << 30);
    }

    #[test]
    fn ends_and_errors() {
        let o = |end| StreamOutcome {
            bytes: 10,
            bad_bytes: 0,
            elapsed_s: 1.0,
            end,
        };
        let outs = [
            o(StreamEnd::Deadline),
            o(StreamEnd::Closed),
            o(StreamEnd::Deadline),
        ];
        assert_eq!(
            tally_ends(&outs),
            vec![
                ("still open at the deadline".into(), 2),
                ("closed by the server".into(), 1)
            ]
        );
        assert!(is_error(Phase::Slow, StreamEnd::Closed));
        assert!(!is_error(Phase::Stall, StreamEnd::Closed));
        assert!(is_error(Phase::Stall, StreamEnd::Status(503)));
        assert!(!is_error(Phase::Fast, StreamEnd::Deadline));
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![]), 0.0);
    }
}
