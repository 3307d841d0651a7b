//! A whole comparison: start the origin (the simulator, or point at an S3 endpoint), start
//! rangecache and nginx as needed, warm the warm targets, then run every target once per round
//! (A B C, A B C, ...) so a noisy machine hurts all alike, and turn the rounds into a
//! [`WorkloadReport`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use super::nginx::{self, Nginx};
use super::progress::Progress;
use super::rangecache::{locate_binary, CacheCounters, Rangecache, RangecacheOptions};
use super::round::{new_histogram, run_round, RoundPlan, RoundResult};
use super::TargetKind;
use crate::client::{encode_path, Client, Endpoint, Signer};
use crate::content;
use crate::report::{
    self, cdf_points, Latency, RoundSummary, TargetReport, WarmupSummary, WorkloadReport,
};
use crate::sim::{SimConfig, Simulator, StatsSnapshot};
use crate::workload::{
    Herd, HerdSpec, Parquet, ParquetSpec, ReadList, Scan, ScanSpec, Workload, ZipfRanges, ZipfSpec,
};

/// Warm-up passes read in pieces of this size.
const WARMUP_PIECE: u64 = 8 << 20;

/// Which workload, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadSpec {
    /// Footer + column chunks.
    Parquet(ParquetSpec),
    /// Fixed ranges, Zipf popularity.
    Zipf(ZipfSpec),
    /// Sequential, once.
    Scan(ScanSpec),
    /// Thundering herd.
    Herd(HerdSpec),
}

impl WorkloadSpec {
    /// An instance: objects from `layout_seed`, reads from `query_seed`.
    pub fn build(&self, layout_seed: u64, query_seed: u64) -> Box<dyn Workload> {
        match self {
            WorkloadSpec::Parquet(s) => Box::new(Parquet::new(s.clone(), layout_seed, query_seed)),
            WorkloadSpec::Zipf(s) => Box::new(ZipfRanges::new(s.clone(), query_seed)),
            WorkloadSpec::Scan(s) => Box::new(Scan::new(s.clone())),
            WorkloadSpec::Herd(s) => Box::new(Herd::new(s.clone())),
        }
    }
}

/// How to run one workload.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The workload.
    pub workload: WorkloadSpec,
    /// Targets, in the order each round runs them.
    pub targets: Vec<TargetKind>,
    /// Rounds.
    pub rounds: usize,
    /// Per target per round.
    pub duration: Option<Duration>,
    /// Per target per round (instead of a duration).
    pub requests: Option<u64>,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Seed of layouts and reads.
    pub seed: u64,
    /// Check every byte.
    pub verify: bool,
}

/// A real S3 (or S3-compatible) endpoint instead of the simulator.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// `http://host[:port]`.
    pub url: String,
    /// The bucket to read (and upload to).
    pub bucket: String,
    /// PUT the workload's synthetic objects first where missing.
    pub upload: bool,
}

/// How to start rangecache.
#[derive(Debug, Clone)]
pub struct RangecacheSettings {
    /// Explicit binary.
    pub bin: Option<PathBuf>,
    /// Run `cargo build --release -p rangecache` first when under cargo.
    pub build: bool,
    /// `cache.memory`.
    pub memory: String,
    /// `cache.block_size`.
    pub block_size: String,
    /// `server.workers`.
    pub workers: usize,
}

/// How to start nginx.
#[derive(Debug, Clone)]
pub struct NginxSettings {
    /// Explicit binary.
    pub bin: Option<PathBuf>,
    /// `worker_processes`.
    pub workers: usize,
}

/// Everything the environment needs.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    /// Simulator settings; its credentials are also used for an endpoint.
    pub sim: SimConfig,
    /// Use this endpoint instead of the simulator.
    pub endpoint: Option<EndpointSpec>,
    /// rangecache settings.
    pub rangecache: RangecacheSettings,
    /// nginx settings.
    pub nginx: NginxSettings,
    /// Start rangecache.
    pub need_rangecache: bool,
    /// Start nginx.
    pub need_nginx: bool,
}

/// The running origin and proxies.
pub struct Env {
    dir: PathBuf,
    rc: Option<Rangecache>,
    ng: Option<Nginx>,
    sim: Option<Simulator>,
    direct: Rc<Endpoint>,
    rc_ep: Option<Rc<Endpoint>>,
    ng_ep: Option<Rc<Endpoint>>,
    endpoint: Option<EndpointSpec>,
    /// One line describing the origin.
    pub origin_desc: String,
}

fn parse_http_url(url: &str) -> Result<(String, SocketAddr)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("--endpoint {url}: only http:// endpoints are supported by the load generator");
    };
    let host = rest.split('/').next().unwrap_or_default().to_owned();
    let with_port = if host.contains(':') {
        host.clone()
    } else {
        format!("{host}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .with_context(|| format!("resolve {with_port}"))?
        .next()
        .with_context(|| format!("{with_port} has no address"))?;
    Ok((host, addr))
}

fn unsigned(addr: SocketAddr) -> Rc<Endpoint> {
    Rc::new(Endpoint {
        addr,
        host: addr.to_string(),
        signer: None,
    })
}

impl Env {
    /// Start what `spec` needs.
    pub fn start(spec: &EnvSpec) -> Result<Env> {
        let dir = std::env::temp_dir().join(format!("rangecache-loadtest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let rc_bin = if spec.need_rangecache {
            Some(locate_binary(
                spec.rangecache.bin.as_deref(),
                spec.rangecache.build,
            )?)
        } else {
            None
        };
        let ng_bin = if spec.need_nginx {
            if spec.endpoint.is_some() {
                bail!("the nginx target needs the simulator (anonymous reads); drop --endpoint or the nginx target");
            }
            Some(nginx::locate(spec.nginx.bin.as_deref())?)
        } else {
            None
        };
        let c = &spec.sim.credentials;
        let signer = Signer::new(&c.access_key, &c.secret_key, &c.region);
        let mut env = Env {
            dir: dir.clone(),
            rc: None,
            ng: None,
            sim: None,
            direct: unsigned("127.0.0.1:1".parse()?),
            rc_ep: None,
            ng_ep: None,
            endpoint: spec.endpoint.clone(),
            origin_desc: String::new(),
        };
        let (origin_url, origin_addr) = match &spec.endpoint {
            Some(ep) => {
                let (host, addr) = parse_http_url(&ep.url)?;
                env.direct = Rc::new(Endpoint {
                    addr,
                    host,
                    signer: Some(signer),
                });
                env.origin_desc = format!("S3 endpoint {} bucket {}", ep.url, ep.bucket);
                (ep.url.trim_end_matches('/').to_owned(), addr)
            }
            None => {
                let mut cfg = spec.sim.clone();
                cfg.allow_anonymous |= spec.need_nginx;
                let m = &cfg.model;
                env.origin_desc = format!(
                    "simulator: first byte {:?} + exp(mean {:?}), {} per stream, {}% 503s, {}% resets, SigV4 verified{}",
                    m.ttfb,
                    m.ttfb_jitter,
                    if m.stream_bandwidth == 0 {
                        "unlimited".to_owned()
                    } else {
                        format!("{:.0} MB/s", m.stream_bandwidth as f64 / 1e6)
                    },
                    m.error_rate * 100.0,
                    m.reset_rate * 100.0,
                    if cfg.allow_anonymous { ", anonymous reads allowed (nginx)" } else { "" }
                );
                let sim = Simulator::start(cfg, "127.0.0.1:0".parse()?)
                    .context("start the origin simulator")?;
                let addr = sim.addr();
                env.direct = Rc::new(Endpoint {
                    addr,
                    host: addr.to_string(),
                    signer: Some(signer),
                });
                env.sim = Some(sim);
                (format!("http://{addr}"), addr)
            }
        };
        if let Some(bin) = rc_bin {
            let rs = &spec.rangecache;
            let rc = Rangecache::start(
                &RangecacheOptions {
                    bin,
                    origin: origin_url,
                    access_key: c.access_key.clone(),
                    secret_key: c.secret_key.clone(),
                    region: c.region.clone(),
                    memory: rs.memory.clone(),
                    block_size: rs.block_size.clone(),
                    workers: rs.workers,
                },
                &dir,
            )?;
            // Clients sign for rangecache as they would for S3: it verifies every request.
            env.rc_ep = Some(Rc::new(Endpoint {
                addr: rc.addr,
                host: rc.addr.to_string(),
                signer: Some(Signer::new(&c.access_key, &c.secret_key, &c.region)),
            }));
            env.rc = Some(rc);
        }
        if let Some(bin) = ng_bin {
            let ng = Nginx::start(&bin, &dir, origin_addr, spec.nginx.workers)?;
            env.ng_ep = Some(unsigned(ng.addr));
            env.ng = Some(ng);
        }
        Ok(env)
    }

    fn endpoint_of(&self, t: TargetKind) -> Result<Rc<Endpoint>> {
        let ep = match t {
            TargetKind::Direct => Some(self.direct.clone()),
            TargetKind::RangecacheCold | TargetKind::RangecacheWarm => self.rc_ep.clone(),
            TargetKind::NginxCold | TargetKind::NginxWarm => self.ng_ep.clone(),
        };
        ep.with_context(|| format!("target {} was not started", t.name()))
    }

    fn origin_stats(&self) -> Option<StatsSnapshot> {
        self.sim.as_ref().map(Simulator::stats)
    }

    /// rangecache's own count of origin (requests, fill bytes): used when the origin is an
    /// endpoint whose counters we cannot read.
    fn rc_origin(&self) -> Option<(u64, u64)> {
        let rc = self.rc.as_ref()?;
        Some((
            rc.metric_sum("rangecache_origin_requests_total").ok()?,
            rc.metric_sum("rangecache_fill_bytes_total").ok()?,
        ))
    }

    fn rc_counters(&self) -> Option<CacheCounters> {
        self.rc.as_ref().and_then(|rc| rc.counters().ok())
    }

    fn bucket(&self, workload: &str, t: TargetKind, round: usize) -> String {
        if let Some(ep) = &self.endpoint {
            return ep.bucket.clone();
        }
        let short = match t {
            TargetKind::Direct => "direct",
            TargetKind::RangecacheCold => "rc-cold",
            TargetKind::NginxCold => "ng-cold",
            TargetKind::RangecacheWarm | TargetKind::NginxWarm => {
                return format!("lt-{workload}-warm")
            }
        };
        format!("lt-{workload}-r{round}-{short}")
    }

    /// With an endpoint: make sure every object exists with the right size, uploading the
    /// synthetic content where allowed.
    async fn ensure_objects(&self, w: &dyn Workload) -> Result<()> {
        let Some(ep) = &self.endpoint else {
            return Ok(());
        };
        let mut client = Client::new(self.direct.clone());
        for o in w.objects() {
            let path = encode_path(&ep.bucket, &o.key);
            let (status, len, _) = client
                .head(&path)
                .await
                .with_context(|| format!("HEAD {path}"))?;
            if status == 200 && len == Some(o.size) {
                continue;
            }
            if !ep.upload {
                bail!("{path}: HEAD answered {status} (size {len:?}, want {}); pass --upload to create the workload's objects", o.size);
            }
            let mut body = vec![0u8; usize::try_from(o.size)?];
            content::fill(content::object_seed(&ep.bucket, &o.key, 0), 0, &mut body);
            eprintln!("uploading {path} ({} bytes)", o.size);
            let status = client
                .put(&path, &body)
                .await
                .with_context(|| format!("PUT {path}"))?;
            if status != 200 {
                bail!("PUT {path} answered {status}");
            }
        }
        Ok(())
    }

    /// Run one workload on every target of `run` and report.
    pub async fn run_workload(&self, run: &RunSpec, progress: &Progress) -> Result<WorkloadReport> {
        let base = run.workload.build(run.seed, run.seed);
        let name = base.name();
        self.ensure_objects(base.as_ref()).await?;

        let mut warmups = Vec::new();
        for &t in run
            .targets
            .iter()
            .filter(|t| t.is_warm() && base.has_warm())
        {
            let bucket = self.bucket(name, t, 0);
            let reads = base.warmup(WARMUP_PIECE);
            let list = ReadList::new(base.objects().to_vec(), reads);
            let before = self.origin_stats();
            let plan = RoundPlan {
                label: format!("warm-up {}", t.name()),
                endpoint: self.endpoint_of(t)?,
                bucket,
                concurrency: run.concurrency.clamp(4, 16),
                duration: None,
                max_requests: None,
                verify: run.verify,
            };
            let r = run_round(&plan, Box::new(list), progress).await;
            let origin_requests = self
                .origin_stats()
                .zip(before)
                .map(|(a, b)| a.since(&b).requests);
            eprintln!(
                "  warm-up {}: {} reads in {:.1} s",
                t.name(),
                r.requests,
                r.elapsed.as_secs_f64()
            );
            warmups.push(WarmupSummary {
                target: t.name().into(),
                requests: r.requests,
                bytes: r.bytes,
                elapsed_s: r.elapsed.as_secs_f64(),
                origin_requests,
                failures: r.transport_errors + r.status_errors + r.verify_failures,
            });
        }

        let targets: Vec<TargetKind> = run
            .targets
            .iter()
            .copied()
            .filter(|t| !t.is_warm() || base.has_warm())
            .collect();
        let mut results: Vec<Vec<(RoundResult, RoundSummary, Option<CacheCounters>)>> =
            vec![Vec::new(); targets.len()];
        for round in 1..=run.rounds {
            for (ti, &t) in targets.iter().enumerate() {
                let bucket = self.bucket(name, t, round);
                if self.endpoint.is_some() && t == TargetKind::RangecacheCold {
                    if let Some(rc) = &self.rc {
                        rc.purge(&bucket)?;
                    }
                }
                let (o0, c0, m0) = (self.origin_stats(), self.rc_counters(), self.rc_origin());
                let plan = RoundPlan {
                    label: format!("round {round}/{} {}", run.rounds, t.name()),
                    endpoint: self.endpoint_of(t)?,
                    bucket: bucket.clone(),
                    concurrency: run.concurrency,
                    duration: run.duration,
                    max_requests: run.requests,
                    verify: run.verify,
                };
                let wl = run
                    .workload
                    .build(run.seed, run.seed.wrapping_add(round as u64));
                let r = run_round(&plan, wl, progress).await;
                let (o1, c1, m1) = (self.origin_stats(), self.rc_counters(), self.rc_origin());
                let mut origin = o1.zip(o0).map(|(a, b)| a.since(&b));
                if origin.is_none() && t.is_rangecache() {
                    origin = m1.zip(m0).map(|((r1, b1), (r0, b0))| StatsSnapshot {
                        requests: r1.saturating_sub(r0),
                        body_bytes: b1.saturating_sub(b0),
                        ..StatsSnapshot::default()
                    });
                }
                let counters = if t.is_rangecache() {
                    c1.zip(c0).map(|(a, b)| CacheCounters {
                        hits: a.hits.saturating_sub(b.hits),
                        misses: a.misses.saturating_sub(b.misses),
                    })
                } else {
                    None
                };
                if self.endpoint.is_none() && t == TargetKind::RangecacheCold {
                    if let Some(rc) = &self.rc {
                        rc.purge(&bucket)?;
                    }
                }
                let summary = summarize_round(
                    round,
                    &bucket,
                    &r,
                    t,
                    origin,
                    counters,
                    self.endpoint.is_some(),
                );
                eprintln!(
                    "  round {round}/{} {:<16} {:>8.1} req/s {:>8.1} MB/s  p50 {:>7.2} ms  p99 {:>7.2} ms  origin req {:>6}  errors {}  verify failures {}",
                    run.rounds,
                    t.name(),
                    summary.req_per_s,
                    summary.mb_per_s,
                    summary.latency.p50_ms,
                    summary.latency.p99_ms,
                    summary.origin_requests.map_or_else(|| "-".into(), |v| v.to_string()),
                    r.transport_errors + r.status_errors,
                    r.verify_failures
                );
                results[ti].push((r, summary, counters));
            }
        }

        let reports: Vec<TargetReport> = targets
            .iter()
            .zip(results)
            .map(|(&t, rounds)| aggregate(t, rounds))
            .collect();
        Ok(WorkloadReport {
            workload: name.into(),
            description: base.describe(),
            concurrency: run.concurrency,
            rounds: run.rounds,
            round_duration_s: if run.requests.is_some() {
                None
            } else {
                run.duration.map(|d| d.as_secs_f64())
            },
            round_requests: run.requests,
            warmups,
            ratios: report::standard_ratios(&reports),
            targets: reports,
        })
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        drop(self.ng.take());
        drop(self.rc.take());
        drop(self.sim.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn summarize_round(
    round: usize,
    bucket: &str,
    r: &RoundResult,
    t: TargetKind,
    origin: Option<StatsSnapshot>,
    counters: Option<CacheCounters>,
    endpoint_mode: bool,
) -> RoundSummary {
    let secs = r.elapsed.as_secs_f64().max(1e-9);
    let (origin_requests, origin_bytes) = match origin {
        Some(o) => (Some(o.requests), Some(o.body_bytes)),
        // Against a real endpoint only direct's origin traffic is known: its own.
        None if endpoint_mode && t == TargetKind::Direct => (Some(r.requests), Some(r.bytes)),
        None => (None, None),
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
        hit_ratio: counters.map(hit_ratio),
    }
}

fn hit_ratio(c: CacheCounters) -> f64 {
    let total = c.hits + c.misses;
    if total == 0 {
        0.0
    } else {
        c.hits as f64 / total as f64
    }
}

fn aggregate(
    t: TargetKind,
    rounds: Vec<(RoundResult, RoundSummary, Option<CacheCounters>)>,
) -> TargetReport {
    let mut hist = new_histogram();
    let (mut requests, mut ok, mut bytes, mut secs) = (0, 0, 0, 0.0);
    let (mut te, mut se, mut vf, mut vb) = (0, 0, 0, 0);
    let (mut oreq, mut obytes): (Option<u64>, Option<u64>) = (None, None);
    let mut counters: Option<CacheCounters> = None;
    let mut summaries = Vec::new();
    for (r, s, c) in rounds {
        let _ = hist.add(&r.hist);
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
            acc.hits += c.hits;
            acc.misses += c.misses;
        }
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
        origin_requests: oreq,
        origin_bytes: obytes,
        hit_ratio: counters.map(hit_ratio),
        transport_errors: te,
        status_errors: se,
        verify_failures: vf,
        verify_failed_bytes: vb,
        cdf: cdf_points(&hist),
    }
}
