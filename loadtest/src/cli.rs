//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use rangecache_loadtest::units::{parse_duration, parse_fraction, parse_rate, parse_size};

/// rangecache's load harness: an S3 origin simulator, analytics workloads, and side-by-side
/// reports of direct S3 vs rangecache (cold and warm) vs nginx.
///
/// Without a subcommand it runs the main job: the simulator (20 ms first byte) in-process,
/// rangecache in front of it, the parquet workload direct, cold and warm, and the table.
#[derive(Debug, Parser)]
#[command(name = "rangecache-loadtest", version)]
pub struct Cli {
    /// What to do (default: `run` with its defaults).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the S3 origin simulator in the foreground until Ctrl-C; prints its counters on exit.
    Origin(OriginArgs),
    /// Run one workload against several targets, interleaved, and report.
    Run(Box<RunArgs>),
    /// The full comparison: parquet against direct, rangecache and nginx, then the hit path
    /// (4 KiB, 64 KiB and 1 MiB random ranges, all cached, 64 connections) against rangecache
    /// signed, rangecache anonymous, nginx's slice cache and nginx serving local files.
    Full(Box<FullArgs>),
    /// The memory bound run: rangecache's peak RSS with slow, fast and stalled readers of
    /// large objects against cache.memory + cache.inflight_memory + 64 MiB (PASS/FAIL lines),
    /// and how many stalled readers rangecache cut.
    Memory(Box<MemoryArgs>),
    /// The disk tier runs: `restart` (warm after SIGTERM + start), `larger-than-ram`
    /// (256 MiB RAM, 1 GiB working set, with and without disk), `close-to-disk` (disk hits
    /// beside fio O_DIRECT), `crash` (kill -9 while filling, then every byte verified).
    Disk(Box<DiskArgs>),
}

/// The simulator's model and credentials.
#[derive(Debug, Clone, Args)]
pub struct SimArgs {
    /// Least time to first byte.
    #[arg(long, default_value = "20ms", value_parser = parse_duration)]
    pub ttfb: Duration,
    /// Mean of the exponential tail added to --ttfb.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    pub ttfb_jitter: Duration,
    /// Bandwidth per response stream ("80MB/s"; "unlimited").
    #[arg(long, default_value = "80MB/s", value_parser = parse_rate)]
    pub stream_bandwidth: u64,
    /// Fraction of requests answered 503 SlowDown ("0.01" or "1%").
    #[arg(long, default_value = "0", value_parser = parse_fraction)]
    pub error_rate: f64,
    /// Fraction of GETs whose connection is reset mid-body.
    #[arg(long, default_value = "0", value_parser = parse_fraction)]
    pub reset_rate: f64,
    /// Access key the origin accepts (and direct requests / rangecache sign with).
    #[arg(long, default_value = "test")]
    pub access_key: String,
    /// Secret key of --access-key.
    #[arg(long, default_value = "test")]
    pub secret_key: String,
    /// SigV4 region.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
}

/// `origin` arguments.
#[derive(Debug, Clone, Args)]
pub struct OriginArgs {
    /// Address to listen on (port 0 picks one and prints it).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Serve unsigned requests too (signed ones are still verified).
    #[arg(long)]
    pub allow_anonymous: bool,
    /// Seed of latency draws and injected failures.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Model and credentials.
    #[command(flatten)]
    pub sim: SimArgs,
}

/// Which workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadName {
    /// Footer suffix read + column chunks, repeated over a working set.
    Parquet,
    /// Fixed-size ranges over N objects with Zipf popularity.
    Zipf,
    /// Large sequential ranges, each file once.
    Scan,
    /// All clients read the same cold range at the same moment.
    Herd,
    /// Every read a first touch: a never-read object at a random offset (cold path alone).
    FirstTouch,
    /// Real-shaped Parquet files (valid footer) read as DuckDB/Polars do: footer first,
    /// then row group after row group the chosen columns' chunks; each file once per round.
    ParquetEngine,
}

/// Workload parameters (each has a per-workload default).
#[derive(Debug, Clone, Default, Args)]
pub struct WorkloadArgs {
    /// parquet/scan: number of files.
    #[arg(long)]
    pub files: Option<usize>,
    /// parquet: row groups per file.
    #[arg(long)]
    pub row_groups: Option<usize>,
    /// parquet: columns per row group.
    #[arg(long)]
    pub columns: Option<usize>,
    /// parquet: smallest column chunk ("200KiB").
    #[arg(long, value_parser = parse_size)]
    pub chunk_min: Option<u64>,
    /// parquet: largest column chunk ("8MiB").
    #[arg(long, value_parser = parse_size)]
    pub chunk_max: Option<u64>,
    /// parquet: smallest footer read.
    #[arg(long, value_parser = parse_size)]
    pub footer_min: Option<u64>,
    /// parquet: largest footer read.
    #[arg(long, value_parser = parse_size)]
    pub footer_max: Option<u64>,
    /// parquet: fewest columns per query.
    #[arg(long)]
    pub query_columns_min: Option<usize>,
    /// parquet: most columns per query (parquet-engine: the columns every query reads).
    #[arg(long)]
    pub query_columns_max: Option<usize>,
    /// zipf: number of objects; first-touch: most reads (fresh objects) per round.
    #[arg(long)]
    pub objects: Option<usize>,
    /// zipf/scan/herd/first-touch: object size.
    #[arg(long, value_parser = parse_size)]
    pub object_size: Option<u64>,
    /// zipf/scan/herd/first-touch: range size.
    #[arg(long, value_parser = parse_size)]
    pub range_size: Option<u64>,
    /// zipf: exponent (0 = uniform).
    #[arg(long)]
    pub zipf_s: Option<f64>,
    /// herd: most waves.
    #[arg(long)]
    pub waves: Option<usize>,
}

/// rangecache process settings.
#[derive(Debug, Clone, Args)]
pub struct RangecacheArgs {
    /// The rangecache binary (default: target/release/rangecache, built first when run
    /// through cargo).
    #[arg(long)]
    pub rangecache_bin: Option<PathBuf>,
    /// Do not run `cargo build --release -p rangecache` first.
    #[arg(long)]
    pub no_build: bool,
    /// rangecache `cache.memory` (default 2GiB; `memory`: 256MiB).
    #[arg(long)]
    pub rangecache_memory: Option<String>,
    /// rangecache `cache.block_size`.
    #[arg(long, default_value = "1MiB")]
    pub block_size: String,
    /// rangecache `server.workers` (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub rangecache_workers: usize,
    /// rangecache `cache.inflight_memory` (written only when given: builds before the bounded
    /// read path reject the key).
    #[arg(long)]
    pub inflight_memory: Option<String>,
    /// rangecache `[cache.disk]` of this size ("4GiB"), its directory made under the output
    /// directory for the run and removed after (written only when given).
    #[arg(long)]
    pub disk_size: Option<String>,
    /// rangecache `cache.readahead_window` (written only when given).
    #[arg(long)]
    pub readahead_window: Option<String>,
    /// rangecache `server.send_timeout` (written only when given).
    #[arg(long)]
    pub send_timeout: Option<String>,
    /// rangecache `prefetch.enabled`: `on` or `off` (written only when given).
    #[arg(long, value_enum)]
    pub prefetch: Option<Switch>,
}

/// A setting that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// nginx process settings.
#[derive(Debug, Clone, Args)]
pub struct NginxArgs {
    /// The nginx binary (default: nginx on PATH or /usr/sbin/nginx).
    #[arg(long)]
    pub nginx: Option<PathBuf>,
    /// nginx `worker_processes` (default: the number of cores, like rangecache's workers).
    #[arg(long)]
    pub nginx_workers: Option<usize>,
}

/// A real endpoint instead of the simulator.
#[derive(Debug, Clone, Args)]
pub struct EndpointArgs {
    /// S3 or S3-compatible endpoint (`http://host:port`) to use instead of the simulator;
    /// credentials from --access-key/--secret-key/--region.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Bucket at --endpoint.
    #[arg(long, default_value = "rangecache-loadtest")]
    pub bucket: String,
    /// PUT the workload's synthetic objects into --bucket where missing (so every byte can
    /// be verified).
    #[arg(long)]
    pub upload: bool,
}

/// Where reports go.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Write the report as JSON here (default: target/loadtest/report.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the SVG picture here (default: target/loadtest/report.svg).
    #[arg(long)]
    pub svg: Option<PathBuf>,
}

/// `run` arguments.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The workload.
    #[arg(long, value_enum, default_value = "parquet")]
    pub workload: WorkloadName,
    /// Comma-separated targets: direct, rangecache (= rangecache-cold + rangecache-warm),
    /// nginx (= nginx-cold + nginx-warm), or the explicit cold/warm names.
    #[arg(
        long = "targets",
        alias = "target",
        default_value = "direct,rangecache"
    )]
    pub targets: String,
    /// Rounds; each runs every target once, in order.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Per target per round.
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Per target per round, instead of --duration.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Concurrent connections (default: 8; herd 16).
    #[arg(long, short = 'c')]
    pub concurrency: Option<usize>,
    /// Seed of layouts, reads and latency draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Check only statuses and lengths, not every byte.
    #[arg(long)]
    pub no_verify: bool,
    /// Workload parameters.
    #[command(flatten)]
    pub workload_args: WorkloadArgs,
    /// Simulator.
    #[command(flatten)]
    pub sim: SimArgs,
    /// rangecache.
    #[command(flatten)]
    pub rangecache: RangecacheArgs,
    /// nginx.
    #[command(flatten)]
    pub nginx: NginxArgs,
    /// Endpoint.
    #[command(flatten)]
    pub endpoint: EndpointArgs,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `full` arguments.
#[derive(Debug, Clone, Args)]
pub struct FullArgs {
    /// Rounds of each workload.
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Per target per round.
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Connections of the parquet workload.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Connections of the hit-path benchmark.
    #[arg(long, default_value_t = 64)]
    pub hit_concurrency: usize,
    /// Range sizes of the hit-path benchmark, comma-separated.
    #[arg(long, default_value = "4KiB,64KiB,1MiB")]
    pub hit_sizes: String,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulator.
    #[command(flatten)]
    pub sim: SimArgs,
    /// rangecache.
    #[command(flatten)]
    pub rangecache: RangecacheArgs,
    /// nginx.
    #[command(flatten)]
    pub nginx: NginxArgs,
    /// Output.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `memory` arguments.
#[derive(Debug, Clone, Args)]
pub struct MemoryArgs {
    /// Phases, comma-separated: slow (rate-limited readers), fast (readers as fast as they
    /// can), stall (readers that stop reading).
    #[arg(long, default_value = "slow,fast,stall")]
    pub phases: String,
    /// Readers in the slow and fast phases, each on a different object.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Readers in the stall phase.
    #[arg(long, default_value_t = 4)]
    pub stall_clients: usize,
    /// Size of each object (the simulator generates it; nothing is stored).
    #[arg(long, default_value = "4GiB", value_parser = parse_size)]
    pub object_size: u64,
    /// Read rate of each slow reader.
    #[arg(long, default_value = "1MB/s", value_parser = parse_rate)]
    pub rate: u64,
    /// Length of the slow and fast phases.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// How long stalled readers take nothing (default: rangecache's server.send_timeout + 5 s,
    /// or 20 s when it has none).
    #[arg(long, value_parser = parse_duration)]
    pub stall: Option<Duration>,
    /// Bytes a stalled reader takes before it stops.
    #[arg(long, default_value = "1MiB", value_parser = parse_size)]
    pub stall_after: u64,
    /// How long a stalled reader reads again afterwards to see whether it was cut.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub resume_for: Duration,
    /// SO_RCVBUF of slow and stalled readers.
    #[arg(long, default_value = "16KiB", value_parser = parse_size)]
    pub recv_buffer: u64,
    /// RSS sampling interval.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// Kill rangecache when its RSS passes this (default: the larger of 4 GiB and twice the
    /// bound), so a build that breaks the bound cannot take the machine.
    #[arg(long, value_parser = parse_size)]
    pub safety_stop: Option<u64>,
    /// Count bytes without checking them.
    #[arg(long)]
    pub no_verify: bool,
    /// Seed of the simulator's draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulator.
    #[command(flatten)]
    pub sim: SimArgs,
    /// rangecache.
    #[command(flatten)]
    pub rangecache: RangecacheArgs,
    /// Write the report as JSON here (default: target/loadtest/memory.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Which disk tier run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiskScenario {
    /// Warm the parquet workload, SIGTERM, start again, run it (the `rangecache-restart`
    /// target): hit ratio, origin GETs, throughput against direct.
    Restart,
    /// cache.memory = 256MiB, a 1 GiB working set: hit ratio with the disk tier and without.
    LargerThanRam,
    /// Disk-tier hits of random aligned ranges against fio O_DIRECT reads, same block size,
    /// queue depth and file system, in the same run.
    CloseToDisk,
    /// kill -9 while the disk fills under load, start again, re-read everything verified.
    Crash,
}

/// `disk` arguments.
#[derive(Debug, Clone, Args)]
pub struct DiskArgs {
    /// Which run.
    #[arg(value_enum)]
    pub scenario: DiskScenario,
    /// Each measured round (crash: the killed load round; the kill comes halfway).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Connections of measured rounds (crash: at least 16).
    #[arg(long, short = 'c', default_value_t = 8)]
    pub concurrency: usize,
    /// close-to-disk: queue depths (= connections = fio --iodepth), comma-separated.
    #[arg(long, default_value = "1,8")]
    pub depths: String,
    /// close-to-disk: range (= block) sizes, comma-separated.
    #[arg(long, default_value = "1MiB,64KiB")]
    pub sizes: String,
    /// `cache.disk.size`.
    #[arg(long, default_value = "4GiB")]
    pub disk_size: String,
    /// restart, larger-than-ram: whole passes of the warm-up (the disk admits a block on its
    /// second access, so at least 2).
    #[arg(long, default_value_t = 2)]
    pub warm_passes: usize,
    /// Bytes the larger-than-ram, close-to-disk and crash workloads read.
    #[arg(long, default_value = "1GiB", value_parser = parse_size)]
    pub working_set: u64,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for the disk tiers (default: target/loadtest/disk-PID, on the project's
    /// file system; tmpfs would refuse O_DIRECT). Removed at the end.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Simulator.
    #[command(flatten)]
    pub sim: SimArgs,
    /// rangecache (memory and block size are the run's own).
    #[command(flatten)]
    pub rangecache: RangecacheArgs,
    /// Write the report as JSON here (default: target/loadtest/disk-SCENARIO.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
}
