//! Rows of the evaluation (one engine, one operation, one block size, one queue depth), their
//! latency histograms, and the table they print as.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram in nanoseconds (1 µs to 60 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid histogram bounds")
}

/// One measured row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// `fio`, `foyer (...)`, `rangecache (...)`.
    pub engine: String,
    /// `read` (random, O_DIRECT where the engine has it) or `write` (the fill).
    pub op: &'static str,
    /// Block (entry) size in bytes.
    pub block: u64,
    /// Reads in flight at once (writes: the engine's own queueing).
    pub depth: usize,
    /// Payload megabytes (10^6) per second.
    pub mb_per_s: f64,
    /// Median latency per operation, microseconds (None for writes through a queue).
    pub p50_us: Option<f64>,
    /// 99th percentile latency per operation, microseconds.
    pub p99_us: Option<f64>,
    /// Operations completed.
    pub ops: u64,
    /// Reads that found nothing (the block was dropped on write, or lost).
    pub misses: u64,
    /// Reads whose bytes were not the block written under that key.
    pub wrong_bytes: u64,
    /// MB/s over fio's at the same op, block size and depth (filled in at the end).
    pub vs_fio: Option<f64>,
}

impl Row {
    /// A row from payload bytes moved in `elapsed` and an optional latency histogram.
    pub fn new(
        engine: &str,
        op: &'static str,
        block: u64,
        depth: usize,
        bytes: u64,
        elapsed: Duration,
        latency: Option<&Histogram<u64>>,
    ) -> Row {
        let us = |q: f64| latency.map(|h| h.value_at_quantile(q) as f64 / 1_000.0);
        Row {
            engine: engine.to_owned(),
            op,
            block,
            depth,
            mb_per_s: bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9),
            p50_us: us(0.50),
            p99_us: us(0.99),
            ops: bytes / block.max(1),
            misses: 0,
            wrong_bytes: 0,
            vs_fio: None,
        }
    }
}

/// Fill in `vs_fio` of every row that has a fio row with the same op, block and depth.
pub fn ratios_to_fio(rows: &mut [Row]) {
    let fio: Vec<(&'static str, u64, usize, f64)> = rows
        .iter()
        .filter(|r| r.engine == "fio")
        .map(|r| (r.op, r.block, r.depth, r.mb_per_s))
        .collect();
    for r in rows.iter_mut() {
        r.vs_fio = fio
            .iter()
            .find(|f| f.0 == r.op && f.1 == r.block && f.2 == r.depth)
            .map(|f| r.mb_per_s / f.3);
    }
}

/// `1MiB`, `64KiB`, `512B`.
pub fn size_label(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{}MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{}KiB", n >> 10)
    } else {
        format!("{n}B")
    }
}

/// Parse `1MiB`, `64KiB`, `4GiB`, `4096`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("bad size {s:?}"))?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "k" => 1 << 10,
        "MiB" | "M" | "m" => 1 << 20,
        "GiB" | "G" | "g" => 1 << 30,
        other => return Err(format!("bad size unit {other:?} in {s:?}")),
    };
    Ok(n * mult)
}

/// The table, as the README quotes it (Markdown).
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| engine | op | block | depth | MB/s | p50 µs | p99 µs | ÷ fio | ops | misses | wrong bytes |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let opt = |v: Option<f64>, prec: usize| v.map_or("-".to_owned(), |v| format!("{v:.prec$}"));
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} |\n",
            r.engine,
            r.op,
            size_label(r.block),
            r.depth,
            r.mb_per_s,
            opt(r.p50_us, 0),
            opt(r.p99_us, 0),
            opt(r.vs_fio, 2),
            r.ops,
            r.misses,
            r.wrong_bytes
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip() {
        assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("4GiB").unwrap(), 4 << 30);
        assert_eq!(size_label(64 << 10), "64KiB");
        assert!(parse_size("4XB").is_err());
    }

    #[test]
    fn ratios_match_op_block_and_depth() {
        let d = Duration::from_secs(1);
        let mut rows = vec![
            Row::new("fio", "read", 1 << 20, 1, 1_000_000_000, d, None),
            Row::new("x", "read", 1 << 20, 1, 800_000_000, d, None),
            Row::new("x", "read", 1 << 20, 16, 800_000_000, d, None),
        ];
        ratios_to_fio(&mut rows);
        assert_eq!(rows[1].vs_fio, Some(0.8));
        assert_eq!(rows[2].vs_fio, None);
    }
}
