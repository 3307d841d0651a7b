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
use super::rangecache::{locate_binary, AnonymousRead, ExtraKeys, Rangecache, RangecacheOptions};
use super::round::{run_round, RoundPlan, RoundResult};
use super::tally::{aggregate, summarize_round, OriginView, RcSample};
use super::TargetKind;
use crate::client::{encode_path, Client, Endpoint, Signer};
use crate::content;
use crate::object::ObjectRef;
use crate::parquet_file::ParquetObject;
use crate::report::{self, RoundSummary, TargetReport, WarmupSummary, WorkloadReport};
use crate::sim::{SimConfig, Simulator, StatsSnapshot};
use crate::workload::{
    FirstTouch, FirstTouchSpec, Herd, HerdSpec, Parquet, ParquetEngine, ParquetEngineSpec,
    ParquetSpec, ReadList, Scan, ScanSpec, Workload, ZipfRanges, ZipfSpec,
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
    /// Every read a first touch.
    FirstTouch(FirstTouchSpec),
    /// Real-shaped Parquet files read as query engines do.
    ParquetEngine(ParquetEngineSpec),
}

impl WorkloadSpec {
    /// An instance: objects from `layout_seed`, reads from `query_seed`.
    pub fn build(&self, layout_seed: u64, query_seed: u64) -> Box<dyn Workload> {
        match self {
            WorkloadSpec::Parquet(s) => Box::new(Parquet::new(s.clone(), layout_seed, query_seed)),
            WorkloadSpec::Zipf(s) => Box::new(ZipfRanges::new(s.clone(), query_seed)),
            WorkloadSpec::Scan(s) => Box::new(Scan::new(s.clone())),
            WorkloadSpec::Herd(s) => Box::new(Herd::new(s.clone())),
            WorkloadSpec::FirstTouch(s) => Box::new(FirstTouch::new(s.clone(), query_seed)),
            WorkloadSpec::ParquetEngine(s) => Box::new(ParquetEngine::new(s.clone(), query_seed)),
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
    /// Issue-9 keys, written when set.
    pub extra: ExtraKeys,
    /// Unsigned reads (the `rangecache-anon` target needs them allowed).
    pub anonymous_read: AnonymousRead,
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
    rc_anon_ep: Option<Rc<Endpoint>>,
    ng_ep: Option<Rc<Endpoint>>,
    ng_file_ep: Option<Rc<Endpoint>>,
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
            rc_anon_ep: None,
            ng_ep: None,
            ng_file_ep: None,
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
                env.origin_desc = cfg.describe();
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
                    extra: rs.extra.clone(),
                    anonymous_read: rs.anonymous_read,
                },
                &dir,
            )?;
            // Clients sign for rangecache as they would for S3: it verifies every request.
            env.rc_ep = Some(Rc::new(Endpoint {
                addr: rc.addr,
                host: rc.addr.to_string(),
                signer: Some(Signer::new(&c.access_key, &c.secret_key, &c.region)),
            }));
            if rs.anonymous_read == AnonymousRead::Allowed {
                env.rc_anon_ep = Some(unsigned(rc.addr));
            }
            env.rc = Some(rc);
        }
        if let Some(bin) = ng_bin {
            let ng = Nginx::start(&bin, &dir, origin_addr, spec.nginx.workers)?;
            env.ng_ep = Some(unsigned(ng.addr));
            env.ng_file_ep = Some(unsigned(ng.files_addr));
            env.ng = Some(ng);
        }
        Ok(env)
    }

    fn endpoint_of(&self, t: TargetKind) -> Result<Rc<Endpoint>> {
        let ep = match t {
            TargetKind::Direct => Some(self.direct.clone()),
            TargetKind::RangecacheCold | TargetKind::RangecacheWarm => self.rc_ep.clone(),
            TargetKind::NginxCold | TargetKind::NginxWarm => self.ng_ep.clone(),
            TargetKind::RangecacheAnon => self.rc_anon_ep.clone(),
            TargetKind::NginxFile => self.ng_file_ep.clone(),
        };
        ep.with_context(|| format!("target {} was not started", t.name()))
    }

    fn origin_stats(&self) -> Option<StatsSnapshot> {
        self.sim.as_ref().map(Simulator::stats)
    }

    fn rc_sample(&self) -> Option<RcSample> {
        self.rc.as_ref().and_then(RcSample::take)
    }

    fn bucket(&self, workload: &str, t: TargetKind, round: usize) -> String {
        if let Some(ep) = &self.endpoint {
            return ep.bucket.clone();
        }
        let short = match t {
            TargetKind::Direct => "direct",
            TargetKind::RangecacheCold => "rc-cold",
            TargetKind::NginxCold => "ng-cold",
            TargetKind::RangecacheWarm
            | TargetKind::NginxWarm
            | TargetKind::RangecacheAnon
            | TargetKind::NginxFile => return format!("lt-{workload}-warm"),
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
            let seed = content::object_seed(&ep.bucket, &o.key, 0);
            match ParquetObject::of_key(&o.key) {
                Some(p) => p.fill(seed, 0, &mut body),
                None => content::fill(seed, 0, &mut body),
            }
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

    /// For the `nginx-file` target: write every object of `objects` into nginx's file root
    /// under `bucket`, with the content the simulator would serve (skipped where present).
    fn ensure_files(&self, objects: &[ObjectRef], bucket: &str) -> Result<()> {
        let ng = self.ng.as_ref().context("nginx-file needs nginx")?;
        nginx::write_objects(&ng.files_dir(), bucket, objects)
    }

    /// Run one workload on every target of `run` and report.
    pub async fn run_workload(&self, run: &RunSpec, progress: &Progress) -> Result<WorkloadReport> {
        let base = run.workload.build(run.seed, run.seed);
        let name = base.name();
        self.ensure_objects(base.as_ref()).await?;

        if run.targets.contains(&TargetKind::NginxFile) && base.has_warm() {
            let bucket = self.bucket(name, TargetKind::NginxFile, 0);
            self.ensure_files(base.objects(), &bucket)?;
        }
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
        let mut results: Vec<Vec<(RoundResult, RoundSummary, Option<RcSample>)>> =
            vec![Vec::new(); targets.len()];
        for round in 1..=run.rounds {
            for (ti, &t) in targets.iter().enumerate() {
                let bucket = self.bucket(name, t, round);
                if self.endpoint.is_some() && t == TargetKind::RangecacheCold {
                    if let Some(rc) = &self.rc {
                        rc.purge(&bucket)?;
                    }
                }
                let rc0 = if t.is_rangecache() {
                    self.rc_sample()
                } else {
                    None
                };
                let o0 = self.origin_stats();
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
                let o1 = self.origin_stats();
                let rc = if t.is_rangecache() {
                    self.rc_sample().zip(rc0).map(|(b, a)| b.since(&a))
                } else {
                    None
                };
                if self.endpoint.is_none() && t == TargetKind::RangecacheCold {
                    if let Some(rc) = &self.rc {
                        rc.purge(&bucket)?;
                    }
                }
                let origin = if self.endpoint.is_some() {
                    OriginView::Endpoint
                } else {
                    OriginView::Simulator(o1.zip(o0).map(|(a, b)| a.since(&b)))
                };
                let summary = summarize_round(round, &bucket, &r, t, origin, rc.clone());
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
                if let Some(p) = &summary.prefetch {
                    eprintln!("      prefetch: {}", p.line());
                }
                if let Some(e) = summary.early.filter(|e| e.sent > 0) {
                    eprintln!("      early GETs (cold objects): {}", e.line());
                }
                if let Some(w) = &summary.worker_requests {
                    eprintln!("      requests per worker: {}", worker_split(w));
                }
                results[ti].push((r, summary, rc));
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
            time_ratios: report::cold_time_ratios(&reports),
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

/// Requests per worker as counts and shares: `512 (51%) / 488 (49%)`.
fn worker_split(requests: &[u64]) -> String {
    let total = requests.iter().sum::<u64>().max(1) as f64;
    requests
        .iter()
        .map(|&n| format!("{n} ({:.0}%)", n as f64 * 100.0 / total))
        .collect::<Vec<_>>()
        .join(" / ")
}
