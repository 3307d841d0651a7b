//! The disk tier runs (issue 10): warm after restart, a working set larger than RAM, disk
//! hits beside fio, and crash safety. Each starts rangecache with `[cache.disk]` in a
//! directory on the project's file system (not tmpfs), in front of the in-process origin
//! simulator, and reports rows and PASS/FAIL checks against the targets.

pub mod fio;
pub mod sample;
mod scenarios;

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use super::progress::Progress;
use super::rangecache::{DiskKeys, Rangecache, RangecacheOptions};
use super::round::{run_round, RoundPlan, RoundResult};
use crate::client::Endpoint;
use crate::sim::{Simulator, StatsSnapshot};
use crate::workload::Workload;
use sample::DiskSample;

pub use scenarios::run;

/// Which run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scenario {
    /// Warm the parquet workload, SIGTERM, start again, run it: hit ratio, origin GETs,
    /// throughput against direct.
    Restart,
    /// `cache.memory = 256MiB` with and without a 4 GiB disk tier, a 1 GiB working set.
    LargerThanRam,
    /// Disk-tier hits of aligned random ranges (RAM tier tiny) against fio O_DIRECT reads
    /// of the same block size and queue depth on the same file system.
    CloseToDisk,
    /// `kill -9` while the disk fills under load, start again, read everything verified.
    Crash,
}

impl Scenario {
    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Restart => "restart",
            Scenario::LargerThanRam => "larger-than-ram",
            Scenario::CloseToDisk => "close-to-disk",
            Scenario::Crash => "crash",
        }
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct DiskPlan {
    /// Which run.
    pub scenario: Scenario,
    /// Each measured round.
    pub duration: Duration,
    /// Connections of measured rounds (close-to-disk: `depths` instead).
    pub concurrency: usize,
    /// Queue depths (= connections) of close-to-disk.
    pub depths: Vec<usize>,
    /// Range (= block) sizes of close-to-disk.
    pub sizes: Vec<u64>,
    /// `cache.disk.size`.
    pub disk_size: String,
    /// Bytes the workload reads (larger-than-ram, close-to-disk, crash).
    pub working_set: u64,
    /// Whole passes of a warm-up (restart, larger-than-ram). rangecache admits a block to
    /// disk on its second access, so 2 is the least that warms the disk.
    pub warm_passes: usize,
    /// Seed.
    pub seed: u64,
    /// Directory the tier's directories go under (created, removed at the end).
    pub dir: PathBuf,
}

/// One measured row.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiskRow {
    /// What was measured ("rangecache after restart", "fio", ...).
    pub case: String,
    /// Connections (fio: queue depth).
    pub concurrency: usize,
    /// Payload MB/s.
    pub mb_per_s: f64,
    /// Median response (fio: I/O) time, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Responses (fio: I/Os).
    pub requests: u64,
    /// Transport and status errors.
    pub errors: u64,
    /// Responses whose bytes were wrong.
    pub verify_failures: u64,
    /// Block lookups served without the origin (RAM or disk).
    pub hit_ratio: Option<f64>,
    /// rangecache's counters over the row (deltas).
    pub counters: Option<DiskSample>,
    /// Origin GETs during the row (simulator's count).
    pub origin_gets: Option<u64>,
    /// Origin HEADs during the row.
    pub origin_heads: Option<u64>,
}

/// A target of the issue, checked.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What ("hit ratio after restart").
    pub what: String,
    /// The target ("≥ 95%").
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Whether it holds.
    pub pass: bool,
}

/// A run's report.
#[derive(Debug, Clone, Serialize)]
pub struct DiskReport {
    /// When (UTC, ISO 8601).
    pub date: String,
    /// The command line.
    pub command: String,
    /// Which run.
    pub scenario: Scenario,
    /// The machine.
    pub machine: crate::report::Machine,
    /// Measured rows, in order.
    pub rows: Vec<DiskRow>,
    /// The targets.
    pub checks: Vec<Check>,
    /// Remarks (settings, what the figures mean).
    pub notes: Vec<String>,
}

impl DiskReport {
    /// Markdown tables: rows, then checks.
    pub fn render(&self) -> String {
        let mut s = format!(
            "disk tier: {} ({})\n\n| case | conns | MB/s | p50 ms | p99 ms | responses | errors | verify failures | hit ratio | disk hits | origin GETs | origin HEADs |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            self.scenario.name(),
            self.date
        );
        let opt = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.case,
                r.concurrency,
                r.mb_per_s,
                r.p50_ms,
                r.p99_ms,
                r.requests,
                r.errors,
                r.verify_failures,
                r.hit_ratio
                    .map_or("-".into(), |h| format!("{:.1}%", h * 100.0)),
                opt(r.counters.map(|c| c.disk_hits)),
                opt(r.origin_gets),
                opt(r.origin_heads)
            ));
        }
        s.push_str("\n| check | target | measured | |\n|---|---|---|---|\n");
        for c in &self.checks {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                c.what,
                c.target,
                c.measured,
                if c.pass { "PASS" } else { "FAIL" }
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("\n- {n}"));
        }
        s
    }
}

/// What the scenarios share: the simulator, how to start rangecache, the endpoints.
pub struct Ctx<'a> {
    /// The origin.
    pub sim: &'a Simulator,
    /// rangecache settings without `[cache.disk]`.
    pub opts: RangecacheOptions,
    /// The simulator, signed.
    pub direct: Rc<Endpoint>,
    /// Progress lines.
    pub progress: Progress,
}

impl Ctx<'_> {
    /// Start rangecache in `dir` (created) with `memory`, `block_size` and the disk tier in
    /// `dir/disk` when `disk_size` is given.
    pub fn start(
        &self,
        dir: &std::path::Path,
        memory: &str,
        block_size: &str,
        disk_size: Option<&str>,
    ) -> Result<Rangecache> {
        std::fs::create_dir_all(dir)?;
        let mut opts = self.opts.clone();
        opts.memory = memory.into();
        opts.block_size = block_size.into();
        if let Some(size) = disk_size {
            let path = dir.join("disk");
            std::fs::create_dir_all(&path)?;
            opts.extra.disk = Some(DiskKeys {
                path,
                size: size.into(),
            });
        }
        Rangecache::start(&opts, dir)
    }

    /// rangecache's S3 endpoint, signed as clients sign.
    pub fn endpoint(&self, rc: &Rangecache) -> Rc<Endpoint> {
        Rc::new(Endpoint {
            addr: rc.addr,
            host: rc.addr.to_string(),
            signer: self.direct.signer.clone(),
        })
    }

    /// One round of `workload` on `endpoint`: to its end (`duration` None) or for `duration`.
    pub async fn round(
        &self,
        label: &str,
        endpoint: Rc<Endpoint>,
        bucket: &str,
        workload: Box<dyn Workload>,
        concurrency: usize,
        duration: Option<Duration>,
    ) -> RoundResult {
        let plan = RoundPlan {
            label: label.into(),
            endpoint,
            bucket: bucket.into(),
            concurrency: concurrency.max(1),
            duration,
            max_requests: None,
            verify: true,
        };
        let r = run_round(&plan, workload, &self.progress).await;
        eprintln!(
            "  {label}: {} responses, {:.0} MB/s, {} errors, {} verify failures",
            r.requests,
            r.bytes as f64 / 1e6 / r.elapsed.as_secs_f64().max(1e-9),
            r.transport_errors + r.status_errors,
            r.verify_failures
        );
        r
    }

    /// The simulator's counters now.
    pub fn origin(&self) -> StatsSnapshot {
        self.sim.stats()
    }
}

/// Wait until rangecache's disk write queue is empty (at most `limit`); the sample then.
pub fn drain(rc: &Rangecache, limit: Duration) -> Result<DiskSample> {
    let t0 = std::time::Instant::now();
    loop {
        let s = DiskSample::take(rc)?;
        if s.disk_queued == 0 || t0.elapsed() > limit {
            return Ok(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A row from a round, with rangecache's and the origin's counters over it.
pub fn row(
    case: &str,
    concurrency: usize,
    r: &RoundResult,
    counters: Option<DiskSample>,
    origin: Option<StatsSnapshot>,
) -> DiskRow {
    let ms = |q: f64| r.hist.value_at_quantile(q) as f64 / 1_000.0;
    DiskRow {
        case: case.into(),
        concurrency,
        mb_per_s: r.bytes as f64 / 1e6 / r.elapsed.as_secs_f64().max(1e-9),
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        requests: r.requests,
        errors: r.transport_errors + r.status_errors,
        verify_failures: r.verify_failures,
        hit_ratio: counters.and_then(|c| c.hit_ratio()),
        counters,
        origin_gets: origin.map(|o| o.get),
        origin_heads: origin.map(|o| o.head),
    }
}

/// A check of `measured` against a target.
pub fn check(what: &str, target: &str, measured: String, pass: bool) -> Check {
    Check {
        what: what.into(),
        target: target.into(),
        measured,
        pass,
    }
}
