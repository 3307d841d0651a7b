//! rangecache-loadtest: `cargo run --release -p rangecache-loadtest` runs the main job (the
//! parquet workload direct vs rangecache cold and warm on the simulator); `run`, `full`,
//! `memory` and `origin` do more. See `cli.rs` or `--help`.

mod cli;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{
    Cli, Command, DiskArgs, DiskScenario, FullArgs, MemoryArgs, OriginArgs, OutputArgs, RunArgs,
    SimArgs, WorkloadArgs, WorkloadName,
};
use rangecache_loadtest::bench::memory::{self, MemoryPlan, Phase};
use rangecache_loadtest::bench::progress::Progress;
use rangecache_loadtest::bench::rangecache::{
    locate_binary, AnonymousRead, DiskKeys, ExtraKeys, RangecacheOptions,
};
use rangecache_loadtest::bench::suite::{
    EndpointSpec, Env, EnvSpec, NginxSettings, RangecacheSettings, RunSpec, WorkloadSpec,
};
use rangecache_loadtest::bench::TargetKind;
use rangecache_loadtest::report::memory::MemoryReport;
use rangecache_loadtest::report::{self, Machine, Report, WorkloadReport};
use rangecache_loadtest::sim::{Credentials, Model, SimConfig, Simulator};
use rangecache_loadtest::units::{fmt_bytes, parse_size, size_label};
use rangecache_loadtest::workload::{
    FirstTouchSpec, HerdSpec, ParquetEngineSpec, ParquetSpec, ScanSpec, ZipfSpec,
};

const SHARED_CORES_NOTE: &str =
    "the load generator shares the machine's cores with the server under test (and with the origin simulator)";

fn sim_config(s: &SimArgs, allow_anonymous: bool, seed: u64) -> SimConfig {
    SimConfig {
        model: Model {
            ttfb: s.ttfb,
            ttfb_jitter: s.ttfb_jitter,
            stream_bandwidth: s.stream_bandwidth,
            error_rate: s.error_rate,
            reset_rate: s.reset_rate,
        },
        credentials: Credentials {
            access_key: s.access_key.clone(),
            secret_key: s.secret_key.clone(),
            region: s.region.clone(),
        },
        allow_anonymous,
        seed,
    }
}

fn workload_spec(name: WorkloadName, a: &WorkloadArgs) -> WorkloadSpec {
    match name {
        WorkloadName::Parquet => {
            let d = ParquetSpec::default();
            WorkloadSpec::Parquet(ParquetSpec {
                files: a.files.unwrap_or(d.files),
                row_groups: a.row_groups.unwrap_or(d.row_groups),
                columns: a.columns.unwrap_or(d.columns),
                chunk_min: a.chunk_min.unwrap_or(d.chunk_min),
                chunk_max: a.chunk_max.unwrap_or(d.chunk_max),
                footer_min: a.footer_min.unwrap_or(d.footer_min),
                footer_max: a.footer_max.unwrap_or(d.footer_max),
                query_columns_min: a.query_columns_min.unwrap_or(d.query_columns_min),
                query_columns_max: a.query_columns_max.unwrap_or(d.query_columns_max),
            })
        }
        WorkloadName::Zipf => {
            let d = ZipfSpec::default();
            WorkloadSpec::Zipf(ZipfSpec {
                objects: a.objects.unwrap_or(d.objects),
                object_size: a.object_size.unwrap_or(d.object_size),
                range_size: a.range_size.unwrap_or(d.range_size),
                s: a.zipf_s.unwrap_or(d.s),
            })
        }
        WorkloadName::Scan => {
            let d = ScanSpec::default();
            WorkloadSpec::Scan(ScanSpec {
                files: a.files.unwrap_or(d.files),
                file_size: a.object_size.unwrap_or(d.file_size),
                range_size: a.range_size.unwrap_or(d.range_size),
            })
        }
        WorkloadName::Herd => {
            let d = HerdSpec::default();
            WorkloadSpec::Herd(HerdSpec {
                waves: a.waves.unwrap_or(d.waves),
                object_size: a.object_size.unwrap_or(d.object_size),
                range_size: a.range_size.unwrap_or(d.range_size),
            })
        }
        WorkloadName::ParquetEngine => {
            let d = ParquetEngineSpec::default();
            WorkloadSpec::ParquetEngine(ParquetEngineSpec {
                files: a.files.unwrap_or(d.files),
                file_size: a.object_size.unwrap_or(d.file_size),
                row_groups: a.row_groups.unwrap_or(d.row_groups),
                columns: a.columns.unwrap_or(d.columns),
                query_columns: a.query_columns_max.unwrap_or(d.query_columns),
            })
        }
        WorkloadName::FirstTouch => {
            let d = FirstTouchSpec::default();
            WorkloadSpec::FirstTouch(FirstTouchSpec {
                reads: a.objects.unwrap_or(d.reads).max(1),
                object_size: a.object_size.unwrap_or(d.object_size),
                range_size: a.range_size.unwrap_or(d.range_size),
            })
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `target/` beside this executable (reports go to `target/loadtest/`).
fn default_out_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|e| e.parent()?.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("loadtest")
}

fn write_outputs(r: &Report, out: &OutputArgs) -> Result<()> {
    let dir = default_out_dir();
    let json = out.json.clone().unwrap_or_else(|| dir.join("report.json"));
    let svg = out.svg.clone().unwrap_or_else(|| dir.join("report.svg"));
    for p in [&json, &svg] {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
    }
    std::fs::write(&json, serde_json::to_vec_pretty(r)?)
        .with_context(|| format!("write {}", json.display()))?;
    std::fs::write(&svg, report::svg::render(r))
        .with_context(|| format!("write {}", svg.display()))?;
    println!("\nreport: {}\npicture: {}", json.display(), svg.display());
    Ok(())
}

fn now_iso() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rangecache_loadtest::units::iso8601_secs(secs)
}

/// A report of `workloads` run in `env` on this machine; `finish` fills in date and command.
fn report_of(env: &Env, workloads: Vec<WorkloadReport>) -> Report {
    Report {
        date: String::new(),
        command: String::new(),
        machine: Machine::detect(),
        origin: env.origin_desc.clone(),
        notes: vec![SHARED_CORES_NOTE.into()],
        workloads,
    }
}

fn finish(report: Report, out: &OutputArgs) -> Result<()> {
    println!("\n{}", report::table::render(&report));
    write_outputs(&report, out)?;
    let failures: u64 = report
        .workloads
        .iter()
        .flat_map(|w| &w.targets)
        .map(|t| t.verify_failures)
        .sum();
    if failures > 0 {
        anyhow::bail!("{failures} responses failed verification");
    }
    Ok(())
}

fn run(args: RunArgs) -> Result<()> {
    let targets = TargetKind::parse_list(&args.targets)?;
    let workload = workload_spec(args.workload, &args.workload_args);
    let concurrency = args
        .concurrency
        .unwrap_or(if args.workload == WorkloadName::Herd {
            16
        } else {
            8
        })
        .max(1);
    // A disk tier for rangecache, when asked for: a directory of this run's, removed after.
    let disk_dir = args
        .rangecache
        .disk_size
        .as_ref()
        .map(|size| -> Result<_> {
            let path = default_out_dir().join(format!("run-disk-{}", std::process::id()));
            std::fs::create_dir_all(&path)?;
            Ok(DiskKeys {
                path,
                size: size.clone(),
            })
        })
        .transpose()?;
    let mut rangecache = rangecache_settings(
        &args.rangecache,
        if targets.contains(&TargetKind::RangecacheAnon) {
            AnonymousRead::Allowed
        } else {
            AnonymousRead::Refused
        },
    );
    rangecache.extra.disk = disk_dir.clone();
    let env_spec = EnvSpec {
        sim: sim_config(&args.sim, false, args.seed),
        endpoint: args.endpoint.endpoint.clone().map(|url| EndpointSpec {
            url,
            bucket: args.endpoint.bucket.clone(),
            upload: args.endpoint.upload,
        }),
        rangecache,
        nginx: NginxSettings {
            bin: args.nginx.nginx.clone(),
            workers: args.nginx.nginx_workers.unwrap_or_else(cores),
        },
        need_rangecache: targets.iter().any(|t| t.is_rangecache()),
        need_nginx: targets.iter().any(|t| t.is_nginx()),
    };
    let spec = RunSpec {
        workload,
        targets,
        rounds: args.rounds.max(1),
        duration: Some(args.duration),
        requests: args.requests,
        concurrency,
        seed: args.seed,
        verify: !args.no_verify,
    };
    let report = with_runtime(|| async {
        let env = Env::start(&env_spec)?;
        let w = env.run_workload(&spec, &Progress::new()).await?;
        Ok(report_of(&env, vec![w]))
    });
    if let Some(d) = &disk_dir {
        let _ = std::fs::remove_dir_all(&d.path);
    }
    finish(report?, &args.output)
}

/// `cache.memory` of `run` and `full` unless given.
const DEFAULT_MEMORY: &str = "2GiB";
/// `cache.memory` of `memory` unless given: small, so the cache evicts and the bound is tight.
const MEMORY_RUN_MEMORY: &str = "256MiB";

fn extra_keys(a: &cli::RangecacheArgs) -> ExtraKeys {
    ExtraKeys {
        inflight_memory: a.inflight_memory.clone(),
        readahead_window: a.readahead_window.clone(),
        send_timeout: a.send_timeout.clone(),
        prefetch_enabled: a.prefetch.map(|s| s == cli::Switch::On),
        disk: None,
    }
}

/// rangecache's settings from the command line, with unsigned reads allowed or not (the
/// `rangecache-anon` target needs them).
fn rangecache_settings(
    a: &cli::RangecacheArgs,
    anonymous_read: AnonymousRead,
) -> RangecacheSettings {
    RangecacheSettings {
        bin: a.rangecache_bin.clone(),
        build: !a.no_build,
        memory: a
            .rangecache_memory
            .clone()
            .unwrap_or_else(|| DEFAULT_MEMORY.into()),
        block_size: a.block_size.clone(),
        workers: a.rangecache_workers,
        extra: extra_keys(a),
        anonymous_read,
    }
}

fn full(args: FullArgs) -> Result<()> {
    let env_spec = EnvSpec {
        sim: sim_config(&args.sim, true, args.seed),
        endpoint: None,
        rangecache: rangecache_settings(&args.rangecache, AnonymousRead::Allowed),
        nginx: NginxSettings {
            bin: args.nginx.nginx.clone(),
            workers: args.nginx.nginx_workers.unwrap_or_else(cores),
        },
        need_rangecache: true,
        need_nginx: true,
    };
    let parquet = RunSpec {
        workload: WorkloadSpec::Parquet(ParquetSpec::default()),
        targets: TargetKind::parse_list("direct,rangecache,nginx")?,
        rounds: args.rounds.max(1),
        duration: Some(args.duration),
        requests: None,
        concurrency: args.concurrency.max(1),
        seed: args.seed,
        verify: true,
    };
    let sizes = args
        .hit_sizes
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| parse_size(s).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<u64>>>()?;
    // The hit path like for like: rangecache signed (as clients send) and unsigned (as nginx
    // gets), nginx's slice cache, and nginx serving the same bytes from local files.
    let hit_paths: Vec<RunSpec> = sizes
        .iter()
        .map(|&range_size| -> Result<RunSpec> {
            Ok(RunSpec {
                workload: WorkloadSpec::Zipf(ZipfSpec {
                    objects: 16,
                    object_size: 16 << 20,
                    range_size,
                    s: 0.0,
                }),
                targets: TargetKind::parse_list(
                    "rangecache-warm,rangecache-anon,nginx-warm,nginx-file",
                )?,
                concurrency: args.hit_concurrency.max(1),
                ..parquet.clone()
            })
        })
        .collect::<Result<_>>()?;
    let report = with_runtime(|| async {
        let env = Env::start(&env_spec)?;
        let progress = Progress::new();
        eprintln!("parquet workload: direct, rangecache, nginx");
        let mut out = vec![env.run_workload(&parquet, &progress).await?];
        for (hit_path, &size) in hit_paths.iter().zip(&sizes) {
            eprintln!(
                "hit path: {} random ranges, all cached, {} connections",
                fmt_bytes(size),
                hit_path.concurrency
            );
            let mut w = env.run_workload(hit_path, &progress).await?;
            w.workload = format!("hit-path-{}", size_label(size));
            out.push(w);
        }
        Ok(report_of(&env, out))
    })?;
    finish(report, &args.output)
}

fn memory_run(args: MemoryArgs) -> Result<()> {
    let plan = MemoryPlan {
        phases: Phase::parse_list(&args.phases)?,
        clients: args.clients.max(1),
        stall_clients: args.stall_clients.max(1),
        object_size: args.object_size,
        rate: args.rate,
        duration: args.duration,
        stall: args.stall,
        stall_after: args.stall_after,
        resume_for: args.resume_for,
        recv_buffer: u32::try_from(args.recv_buffer).context("--recv-buffer too large")?,
        sample_every: args.sample_every,
        safety_stop: args.safety_stop,
        verify: !args.no_verify,
    };
    let sim_cfg = sim_config(&args.sim, false, args.seed);
    let rs = rangecache_settings(&args.rangecache, AnonymousRead::Refused);
    let bin = locate_binary(rs.bin.as_deref(), rs.build)?;
    let date = now_iso();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = std::env::temp_dir().join(format!("rangecache-loadtest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let sim = Simulator::start(sim_cfg.clone(), "127.0.0.1:0".parse()?)
        .context("start the origin simulator")?;
    let c = &sim_cfg.credentials;
    let opts = RangecacheOptions {
        bin,
        origin: format!("http://{}", sim.addr()),
        access_key: c.access_key.clone(),
        secret_key: c.secret_key.clone(),
        region: c.region.clone(),
        memory: args
            .rangecache
            .rangecache_memory
            .clone()
            .unwrap_or_else(|| MEMORY_RUN_MEMORY.into()),
        block_size: rs.block_size.clone(),
        workers: rs.workers,
        extra: rs.extra.clone(),
        anonymous_read: AnonymousRead::Refused,
    };
    // Each phase stops its rangecache before returning; Ctrl-C drops the phase (and with it
    // rangecache); the simulator and the directory go at the end either way.
    let result = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let phases = async {
            let mut settings = None;
            let mut phases = Vec::new();
            for &p in &plan.phases {
                let (r, s) = memory::run_phase(&plan, p, &opts, c, &dir).await?;
                eprintln!(
                    "  phase {}: peak RSS {} vs bound {}: {}",
                    r.phase,
                    fmt_bytes(r.peak_rss),
                    fmt_bytes(r.bound),
                    r.verdict.as_str()
                );
                settings.get_or_insert(s);
                phases.push(r);
            }
            anyhow::Ok((settings.unwrap_or_default(), phases))
        };
        tokio::select! {
            r = phases => r,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
            _ = term.recv() => anyhow::bail!("terminated"),
        }
    });
    sim.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let (settings, phases) = result?;
    let report = MemoryReport {
        date,
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: Machine::detect(),
        origin: sim_cfg.describe(),
        bound: settings.bound(),
        settings,
        notes: vec![SHARED_CORES_NOTE.into(), memory::bound_note()],
        phases,
    };
    println!("\n{}", report::memory::render(&report));
    let json = args
        .json
        .unwrap_or_else(|| default_out_dir().join("memory.json"));
    if let Some(parent) = json.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("write {}", json.display()))?;
    println!("report: {}", json.display());
    Ok(())
}

fn disk_run(args: DiskArgs) -> Result<()> {
    use rangecache_loadtest::bench::disk::{self, Ctx, DiskPlan, Scenario};
    let scenario = match args.scenario {
        DiskScenario::Restart => Scenario::Restart,
        DiskScenario::LargerThanRam => Scenario::LargerThanRam,
        DiskScenario::CloseToDisk => Scenario::CloseToDisk,
        DiskScenario::Crash => Scenario::Crash,
    };
    let list = |s: &str| -> Result<Vec<u64>> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(|x| parse_size(x).map_err(anyhow::Error::msg))
            .collect()
    };
    let plan = DiskPlan {
        scenario,
        duration: args.duration,
        concurrency: args.concurrency.max(1),
        depths: list(&args.depths)?
            .into_iter()
            .map(|d| d.max(1) as usize)
            .collect(),
        sizes: list(&args.sizes)?,
        disk_size: args.disk_size.clone(),
        working_set: args.working_set,
        warm_passes: args.warm_passes.max(1),
        seed: args.seed,
        dir: args
            .dir
            .clone()
            .unwrap_or_else(|| default_out_dir().join(format!("disk-{}", std::process::id()))),
    };
    let sim_cfg = sim_config(&args.sim, true, args.seed);
    let rs = rangecache_settings(&args.rangecache, AnonymousRead::Refused);
    let bin = locate_binary(rs.bin.as_deref(), rs.build)?;
    let c = sim_cfg.credentials.clone();
    let sim = Simulator::start(sim_cfg.clone(), "127.0.0.1:0".parse()?)
        .context("start the origin simulator")?;
    let ctx = Ctx {
        sim: &sim,
        opts: RangecacheOptions {
            bin,
            origin: format!("http://{}", sim.addr()),
            access_key: c.access_key.clone(),
            secret_key: c.secret_key.clone(),
            region: c.region.clone(),
            memory: DEFAULT_MEMORY.into(),
            block_size: rs.block_size.clone(),
            workers: rs.workers,
            extra: rs.extra.clone(),
            anonymous_read: AnonymousRead::Refused,
        },
        direct: std::rc::Rc::new(rangecache_loadtest::client::Endpoint {
            addr: sim.addr(),
            host: sim.addr().to_string(),
            signer: Some(rangecache_loadtest::client::Signer::new(
                &c.access_key,
                &c.secret_key,
                &c.region,
            )),
        }),
        progress: Progress::new(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let result = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = disk::run(&ctx, &plan, now_iso(), command) => r,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
            _ = term.recv() => anyhow::bail!("terminated"),
        }
    });
    drop(ctx);
    sim.stop();
    let _ = std::fs::remove_dir_all(&plan.dir);
    let report = result?;
    println!("\n{}", report.render());
    let json = args
        .json
        .unwrap_or_else(|| default_out_dir().join(format!("disk-{}.json", scenario.name())));
    if let Some(parent) = json.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("write {}", json.display()))?;
    println!("\nreport: {}", json.display());
    if report.checks.iter().any(|c| !c.pass) {
        anyhow::bail!("a disk tier target was missed (FAIL above)");
    }
    Ok(())
}

/// Run `f` on a current-thread runtime (the load generator takes one thread) and stamp the
/// report with the date and command line.
fn with_runtime<F, Fut>(f: F) -> Result<Report>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Report>>,
{
    let date = now_iso();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // On Ctrl-C or SIGTERM the run future is dropped, and with it the environment, which
    // stops the rangecache, nginx and simulator it started.
    let mut report = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = f() => r,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
            _ = term.recv() => anyhow::bail!("terminated"),
        }
    })?;
    report.date = date;
    report.command = std::env::args().collect::<Vec<_>>().join(" ");
    Ok(report)
}

fn origin(args: OriginArgs) -> Result<()> {
    let sim = Simulator::start(
        sim_config(&args.sim, args.allow_anonymous, args.seed),
        args.listen,
    )
    .with_context(|| format!("listen on {}", args.listen))?;
    println!(
        "origin simulator on http://{} (access key {:?}, region {}, anonymous reads {}); objects: /<bucket>/<name>-size-<bytes>; counters: GET /__stats; Ctrl-C stops",
        sim.addr(),
        args.sim.access_key,
        args.sim.region,
        if args.allow_anonymous { "allowed" } else { "refused" }
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })?;
    let stats = sim.stats();
    sim.stop();
    println!("{}", serde_json::to_string_pretty(&stats)?);
    Ok(())
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        None => match Cli::try_parse_from(["rangecache-loadtest", "run"]) {
            Ok(Cli {
                command: Some(Command::Run(args)),
            }) => run(*args),
            _ => unreachable!("`run` parses with its defaults"),
        },
        Some(Command::Run(args)) => run(*args),
        Some(Command::Full(args)) => full(*args),
        Some(Command::Memory(args)) => memory_run(*args),
        Some(Command::Disk(args)) => disk_run(*args),
        Some(Command::Origin(args)) => origin(args),
    };
    if let Err(e) = result {
        eprintln!("rangecache-loadtest: {e:#}");
        std::process::exit(1);
    }
}
