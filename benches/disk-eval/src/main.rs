//! The disk tier evaluation (issue 10): foyer's disk store driven from monoio threads, against
//! rangecache's own disk tier on monoio's io_uring and legacy drivers, against fio, on the same
//! directory, block sizes and queue depths, in one run. See README.md for results.

mod block;
mod driver;
mod fio;
mod foyer_tier;
mod rangecache_tier;
mod raw_tier;
mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;

use block::Blocks;
use driver::{read_phase, Driver, Tier};
use stats::{parse_size, ratios_to_fio, size_label, Row};

/// Write N bytes of blocks with each engine, then read random blocks back at each queue
/// depth; print one table (Markdown) and write JSON.
#[derive(Debug, Parser)]
struct Args {
    /// Directory on the disk under test (not tmpfs). Default: target/disk-eval-data beside
    /// this crate.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Bytes written per engine and block size.
    #[arg(long, default_value = "4GiB", value_parser = parse_size)]
    size: u64,
    /// Block sizes, comma-separated.
    #[arg(long, default_value = "1MiB,64KiB")]
    blocks: String,
    /// Read queue depths, comma-separated.
    #[arg(long, default_value = "1,16")]
    depths: String,
    /// Seconds of reading per row.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Engines, comma-separated: fio, raw (monoio O_DIRECT reads of fio's file, reused
    /// buffers), raw-per-read (the same with rangecache's per-read costs; both need fio), foyer, foyer-spawn, rangecache-uring, rangecache-legacy.
    #[arg(
        long,
        default_value = "fio,raw,raw-per-read,foyer,foyer-spawn,rangecache-uring,rangecache-legacy"
    )]
    engines: String,
    /// Rounds; each reads once with every engine at every depth (order rotating); rows
    /// give the median.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Tokio worker threads of foyer's side runtime.
    #[arg(long, default_value_t = 2)]
    tokio_threads: usize,
    /// JSON output. Default: target/disk-eval.json beside this crate.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn list<T: std::str::FromStr>(s: &str) -> Result<Vec<T>> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<T>()
                .map_err(|_| anyhow::anyhow!("bad list item {x:?}"))
        })
        .collect()
}

/// One reader the rounds take turns with.
enum Reader {
    /// fio on its laid-out file.
    Fio(PathBuf),
    /// A store read from a monoio thread with this driver.
    Tier(Arc<dyn Tier>, Driver),
}

struct Run {
    depths: Vec<usize>,
    duration: Duration,
    size: u64,
    rounds: usize,
    tokio_threads: usize,
}

fn write_row(engine: &str, block: u64, bytes: u64, elapsed: Duration) -> Row {
    let row = Row::new(engine, "write", block, 0, bytes, elapsed, None);
    eprintln!(
        "  {engine} write {}: {:.0} MB/s",
        size_label(block),
        row.mb_per_s
    );
    row
}

/// One read row of `reader` at `depth`.
fn read_once(
    engine: &str,
    reader: &Reader,
    blocks: &Blocks,
    block: u64,
    depth: usize,
    a: &Run,
) -> Result<Row> {
    let count = a.size / block;
    let row = match reader {
        Reader::Fio(file) => fio::read(file, block, a.size, depth, a.duration)?,
        Reader::Tier(tier, driver) => {
            let r = read_phase(tier.clone(), blocks, count, depth, a.duration, *driver);
            let mut row = Row::new(
                engine,
                "read",
                block,
                depth,
                r.bytes,
                r.elapsed,
                Some(&r.latency),
            );
            row.misses = r.misses;
            row.wrong_bytes = r.wrong;
            row
        }
    };
    eprintln!(
        "  {engine} read {} qd{depth}: {:.0} MB/s p50 {:.0} µs p99 {:.0} µs misses {}",
        size_label(block),
        row.mb_per_s,
        row.p50_us.unwrap_or(0.0),
        row.p99_us.unwrap_or(0.0),
        row.misses
    );
    Ok(row)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// The rounds of one engine at one depth as one row: the median MB/s, p50 and p99.
fn merge(rounds: Vec<Row>) -> Row {
    let mut out = rounds[0].clone();
    out.mb_per_s = median(rounds.iter().map(|r| r.mb_per_s).collect()).unwrap_or(0.0);
    out.p50_us = median(rounds.iter().filter_map(|r| r.p50_us).collect());
    out.p99_us = median(rounds.iter().filter_map(|r| r.p99_us).collect());
    out.ops = rounds.iter().map(|r| r.ops).sum();
    out.misses = rounds.iter().map(|r| r.misses).sum();
    out.wrong_bytes = rounds.iter().map(|r| r.wrong_bytes).sum();
    out
}

/// Every engine of `engines` at block size `block`: write each store, then `a.rounds` rounds
/// in which every reader reads once at every depth, the order rotating each round.
fn block_rows(dir: &std::path::Path, block: u64, a: &Run, engines: &[String]) -> Result<Vec<Row>> {
    use foyer_tier::{Bridge, FoyerTier};
    let has = |e: &str| engines.iter().any(|x| x == e);
    let blocks = Blocks::new(block);
    let count = a.size / block;
    let label = size_label(block);
    // Room for every block plus per-entry headers and foyer's 64 MiB blocks.
    let capacity = a.size + a.size / 8 + (256 << 20);
    let mut rows = Vec::new();
    let mut readers: Vec<(&str, Reader)> = Vec::new();
    let mut cleanup = Vec::new();

    if has("fio") {
        let file = dir.join(format!("fio-{label}.dat"));
        let depth = a.depths.iter().copied().max().unwrap_or(1);
        let row = fio::layout(&file, block, a.size, depth)?;
        eprintln!("  fio write {label} qd{depth}: {:.0} MB/s", row.mb_per_s);
        rows.push(row);
        readers.push(("fio", Reader::Fio(file.clone())));
        for (name, label, mode) in [
            (
                "raw",
                "monoio O_DIRECT, handle and buffers reused",
                raw_tier::RawMode::Reused,
            ),
            (
                "raw-per-read",
                "monoio O_DIRECT, dup + zeroed buffer per read",
                raw_tier::RawMode::PerRead,
            ),
        ] {
            if has(name) {
                let t: Arc<dyn Tier> = Arc::new(raw_tier::RawTier::open(&file, block, mode)?);
                readers.push((label, Reader::Tier(t, Driver::IoUring)));
            }
        }
        cleanup.push(file);
    }
    let mut foyer = None;
    if has("foyer") || has("foyer-spawn") {
        let sub = dir.join(format!("foyer-{label}"));
        let _ = std::fs::remove_dir_all(&sub);
        std::fs::create_dir_all(&sub)?;
        let tier = Arc::new(FoyerTier::open(&sub, capacity, a.tokio_threads)?);
        let t0 = Instant::now();
        tier.fill(count, |i| blocks.block(i), 32 << 20);
        rows.push(write_row("foyer", block, count * block, t0.elapsed()));
        if has("foyer") {
            readers.push((
                "foyer (load awaited on monoio)",
                Reader::Tier(tier.with_bridge(Bridge::Await), Driver::IoUring),
            ));
        }
        if has("foyer-spawn") {
            readers.push((
                "foyer (load spawned on Tokio)",
                Reader::Tier(tier.with_bridge(Bridge::Spawn), Driver::IoUring),
            ));
        }
        foyer = Some(tier);
        cleanup.push(sub);
    }
    if has("rangecache-uring") || has("rangecache-legacy") {
        let sub = dir.join(format!("rangecache-{label}"));
        let _ = std::fs::remove_dir_all(&sub);
        std::fs::create_dir_all(&sub)?;
        let tier = rangecache_tier::RangecacheTier::open(&sub, capacity, block)?;
        let t0 = Instant::now();
        tier.fill(count, |i| blocks.block(i));
        rows.push(write_row("rangecache", block, count * block, t0.elapsed()));
        eprintln!(
            "    (write queue full {} times on the way; none lost)",
            tier.stats().write_drops
        );
        let tier: Arc<dyn Tier> = Arc::new(tier);
        if has("rangecache-uring") {
            readers.push((
                "rangecache (io_uring driver)",
                Reader::Tier(tier.clone(), Driver::IoUring),
            ));
        }
        if has("rangecache-legacy") {
            readers.push((
                "rangecache (legacy driver)",
                Reader::Tier(tier, Driver::Legacy),
            ));
        }
        cleanup.push(sub);
    }

    for &depth in &a.depths {
        let mut per: Vec<Vec<Row>> = vec![Vec::new(); readers.len()];
        for round in 0..a.rounds {
            for k in 0..readers.len() {
                let i = (k + round) % readers.len();
                let (name, reader) = &readers[i];
                per[i].push(read_once(name, reader, &blocks, block, depth, a)?);
            }
        }
        rows.extend(per.into_iter().filter(|r| !r.is_empty()).map(merge));
    }
    drop(readers);
    if let Some(f) = foyer {
        f.close()?;
    }
    for p in cleanup {
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::remove_file(&p);
    }
    Ok(rows)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| here.join("target").join("disk-eval-data"));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let block_sizes: Vec<u64> = args
        .blocks
        .split(',')
        .map(|s| parse_size(s).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let engines: Vec<String> = list(&args.engines)?;
    for e in &engines {
        if ![
            "fio",
            "raw",
            "raw-per-read",
            "foyer",
            "foyer-spawn",
            "rangecache-uring",
            "rangecache-legacy",
        ]
        .contains(&e.as_str())
        {
            bail!("unknown engine {e:?}");
        }
    }
    let run = Run {
        rounds: args.rounds.max(1),
        depths: list(&args.depths)?,
        duration: Duration::from_secs(args.seconds.max(1)),
        size: args.size,
        tokio_threads: args.tokio_threads.max(1),
    };
    let mut rows = Vec::new();
    for &block in &block_sizes {
        eprintln!("block size {}", size_label(block));
        rows.extend(block_rows(&dir, block, &run, &engines)?);
    }
    ratios_to_fio(&mut rows);
    println!("{}", stats::render(&rows));
    let json = args
        .json
        .unwrap_or_else(|| here.join("target").join("disk-eval.json"));
    let report = serde_json::json!({
        "date_unix": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "dir": dir,
        "size": run.size,
        "seconds_per_row": run.duration.as_secs(),
        "rounds": run.rounds,
        "rows": rows,
    });
    std::fs::write(&json, serde_json::to_vec_pretty(&report)?)?;
    eprintln!("json: {}", json.display());
    Ok(())
}
