//! fio beside rangecache: O_DIRECT random reads (`--direct=1 --ioengine=io_uring`, one job)
//! of a file in the disk tier's directory, at the block size and queue depth of a round.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// One fio job's throughput and latency.
#[derive(Debug, Clone, Copy)]
pub struct FioResult {
    /// Megabytes (10^6) per second.
    pub mb_per_s: f64,
    /// Median completion latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile, milliseconds.
    pub p99_ms: f64,
    /// I/Os completed.
    pub ios: u64,
}

fn fio(file: &Path, block: u64, size: u64, depth: usize, extra: &[String]) -> Result<Value> {
    let out = Command::new("fio")
        .arg("--name=rangecache-loadtest")
        .arg(format!("--filename={}", file.display()))
        .arg(format!("--size={size}"))
        .arg(format!("--bs={block}"))
        .arg(format!("--iodepth={depth}"))
        .args(["--direct=1", "--ioengine=io_uring", "--numjobs=1"])
        .args(["--output-format=json", "--lat_percentiles=1"])
        .args(extra)
        .output()
        .context("run fio (Debian package `fio`)")?;
    if !out.status.success() {
        bail!("fio failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).context("fio's JSON")
}

/// Write `file` (`size` bytes, sequential, O_DIRECT) so reads have something to read.
pub fn layout(file: &Path, block: u64, size: u64) -> Result<()> {
    fio(
        file,
        block,
        size,
        16,
        &["--rw=write".into(), "--end_fsync=1".into()],
    )
    .map(|_| ())
}

/// Random reads of `block` bytes at queue depth `depth` for `duration`.
pub fn randread(
    file: &Path,
    block: u64,
    size: u64,
    depth: usize,
    duration: Duration,
) -> Result<FioResult> {
    let v = fio(
        file,
        block,
        size,
        depth,
        &[
            "--rw=randread".into(),
            "--time_based".into(),
            format!("--runtime={}ms", duration.as_millis()),
            "--norandommap".into(),
            "--randrepeat=0".into(),
        ],
    )?;
    let r = &v["jobs"][0]["read"];
    let ms = |q: &str| r["lat_ns"]["percentile"][q].as_f64().unwrap_or(0.0) / 1e6;
    Ok(FioResult {
        mb_per_s: r["bw_bytes"].as_f64().context("fio bw_bytes")? / 1e6,
        p50_ms: ms("50.000000"),
        p99_ms: ms("99.000000"),
        ios: r["total_ios"].as_u64().unwrap_or(0),
    })
}
