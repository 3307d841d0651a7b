//! fio as the yardstick: the same file system, block size and queue depth, `--direct=1
//! --ioengine=io_uring`, one job.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::stats::{size_label, Row};

/// One fio job's figures.
struct Job {
    bytes: u64,
    elapsed: Duration,
    p50_ns: Option<u64>,
    p99_ns: Option<u64>,
}

fn run(args: &[String]) -> Result<Job> {
    let out = Command::new("fio")
        .args(args)
        .args(["--output-format=json", "--lat_percentiles=1"])
        .output()
        .context("run fio (apt-get install fio)")?;
    if !out.status.success() {
        bail!(
            "fio {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("fio JSON")?;
    let job = &v["jobs"][0];
    let side = if job["write"]["io_bytes"].as_u64().unwrap_or(0) > 0 {
        &job["write"]
    } else {
        &job["read"]
    };
    let pct = |q: &str| side["lat_ns"]["percentile"][q].as_u64();
    Ok(Job {
        bytes: side["io_bytes"].as_u64().context("io_bytes")?,
        elapsed: Duration::from_millis(side["runtime"].as_u64().context("runtime")?.max(1)),
        p50_ns: pct("50.000000"),
        p99_ns: pct("99.000000"),
    })
}

fn common(file: &Path, block: u64, size: u64, depth: usize) -> Vec<String> {
    vec![
        "--name=disk-eval".into(),
        format!("--filename={}", file.display()),
        format!("--size={size}"),
        format!("--bs={}", size_label(block).replace("iB", "")),
        format!("--iodepth={depth}"),
        "--direct=1".into(),
        "--ioengine=io_uring".into(),
        "--numjobs=1".into(),
    ]
}

fn row(op: &'static str, block: u64, depth: usize, j: &Job) -> Row {
    let mut r = Row::new("fio", op, block, depth, j.bytes, j.elapsed, None);
    r.p50_us = j.p50_ns.map(|n| n as f64 / 1_000.0);
    r.p99_us = j.p99_ns.map(|n| n as f64 / 1_000.0);
    r
}

/// Lay out `file` with a sequential O_DIRECT write of `size` bytes at queue depth `depth`:
/// the write row.
pub fn layout(file: &Path, block: u64, size: u64, depth: usize) -> Result<Row> {
    let _ = std::fs::remove_file(file);
    let mut write = common(file, block, size, depth);
    write.extend(["--rw=write".into(), "--end_fsync=1".into()]);
    Ok(row("write", block, depth, &run(&write)?))
}

/// Random O_DIRECT reads of `block` bytes from `file` (laid out by [`layout`]) at queue depth
/// `depth` for `duration`: a read row.
pub fn read(file: &Path, block: u64, size: u64, depth: usize, duration: Duration) -> Result<Row> {
    let mut read = common(file, block, size, depth);
    read.extend([
        "--rw=randread".into(),
        "--time_based".into(),
        format!("--runtime={}ms", duration.as_millis()),
        "--norandommap".into(),
        "--randrepeat=0".into(),
    ]);
    Ok(row("read", block, depth, &run(&read)?))
}
