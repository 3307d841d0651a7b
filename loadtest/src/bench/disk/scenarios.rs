//! The four runs. Each returns its rows, checks and notes; `run` stamps the report.

use std::time::Duration;

use anyhow::{Context, Result};

use super::fio;
use super::sample::DiskSample;
use super::{check, drain, row, Check, Ctx, DiskPlan, DiskReport, DiskRow, Scenario};
use crate::bench::rangecache::{AnonymousRead, Rangecache};
use crate::bench::suite::WorkloadSpec;
use crate::units::{fmt_bytes, size_label};
use crate::workload::{
    whole_objects, AlignedRanges, AlignedSpec, ParquetSpec, ReadList, Workload, ZipfRanges,
    ZipfSpec,
};

/// Warm-up passes read in pieces of this size (as the suite's).
const WARMUP_PIECE: u64 = 8 << 20;
/// Longest wait for the disk write queue to empty.
const DRAIN: Duration = Duration::from_secs(120);
/// SIGTERM grace: rangecache flushes the disk queue on shutdown.
const GRACE: Duration = Duration::from_secs(60);

type Parts = (Vec<DiskRow>, Vec<Check>, Vec<String>);

/// Run `plan.scenario`; `date` and `command` go into the report.
pub async fn run(
    ctx: &Ctx<'_>,
    plan: &DiskPlan,
    date: String,
    command: String,
) -> Result<DiskReport> {
    std::fs::create_dir_all(&plan.dir).with_context(|| format!("create {}", plan.dir.display()))?;
    let parts = match plan.scenario {
        Scenario::Restart => restart(ctx, plan).await,
        Scenario::LargerThanRam => larger_than_ram(ctx, plan).await,
        Scenario::CloseToDisk => close_to_disk(ctx, plan).await,
        Scenario::Crash => crash(ctx, plan).await,
    };
    let _ = std::fs::remove_dir_all(&plan.dir);
    let (rows, checks, notes) = parts?;
    Ok(DiskReport {
        date,
        command,
        scenario: plan.scenario,
        machine: crate::report::Machine::detect(),
        rows,
        checks,
        notes,
    })
}

/// Every object of `w` read whole, in order.
fn warmup_of(w: &dyn Workload) -> Box<dyn Workload> {
    Box::new(ReadList::new(w.objects().to_vec(), w.warmup(WARMUP_PIECE)))
}

/// `passes` whole passes over `w`'s objects; the result of the last.
async fn warm(
    ctx: &Ctx<'_>,
    ep: &std::rc::Rc<crate::client::Endpoint>,
    bucket: &str,
    w: &dyn Workload,
    concurrency: usize,
    passes: usize,
) -> crate::bench::round::RoundResult {
    let mut last = None;
    for p in 1..=passes.max(1) {
        let label = format!("warm-up pass {p}");
        last = Some(
            ctx.round(&label, ep.clone(), bucket, warmup_of(w), concurrency, None)
                .await,
        );
    }
    last.expect("at least one pass")
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |h| format!("{:.1}%", h * 100.0))
}

async fn restart(ctx: &Ctx<'_>, plan: &DiskPlan) -> Result<Parts> {
    let spec = WorkloadSpec::Parquet(ParquetSpec::default());
    let base = spec.build(plan.seed, plan.seed);
    let bucket = "lt-disk-restart";
    let c = plan.concurrency;
    let mut rc = ctx.start(
        &plan.dir.join("restart"),
        "2GiB",
        "1MiB",
        Some(&plan.disk_size),
    )?;
    let ep = ctx.endpoint(&rc);
    eprintln!("warming the parquet workload through rangecache");
    let w = warm(
        ctx,
        &ep,
        bucket,
        base.as_ref(),
        c.clamp(4, 16),
        plan.warm_passes,
    )
    .await;
    let warmed = drain(&rc, DRAIN)?;
    // The same workload warm in RAM before the restart: what this machine allows today.
    let (b0, ob0) = (DiskSample::take(&rc)?, ctx.origin());
    let before = ctx
        .round(
            "warm in RAM, before restart",
            ep.clone(),
            bucket,
            spec.build(plan.seed, plan.seed + 1),
            c,
            Some(plan.duration),
        )
        .await;
    let ram_row = row(
        "rangecache warm in RAM (before restart)",
        c,
        &before,
        Some(DiskSample::take(&rc)?.since(&b0)),
        Some(ctx.origin().since(&ob0)),
    );
    // The round above read every block again (second accesses): the disk holds what it
    // admitted then too. What is on disk when SIGTERM comes:
    let at_term = drain(&rc, DRAIN)?;
    eprintln!("stopping rangecache with SIGTERM and starting it again");
    rc.restart(GRACE)?;
    let s0 = DiskSample::take(&rc)?;
    let o0 = ctx.origin();
    let r = ctx
        .round(
            "after restart",
            ep,
            bucket,
            spec.build(plan.seed, plan.seed + 1),
            c,
            Some(plan.duration),
        )
        .await;
    let (s1, o1) = (DiskSample::take(&rc)?, ctx.origin());
    drop(rc);
    let o2 = ctx.origin();
    let d = ctx
        .round(
            "direct",
            ctx.direct.clone(),
            bucket,
            spec.build(plan.seed, plan.seed + 1),
            c,
            Some(plan.duration),
        )
        .await;
    let o3 = ctx.origin();
    let rc_row = row(
        "rangecache after restart",
        c,
        &r,
        Some(s1.since(&s0)),
        Some(o1.since(&o0)),
    );
    let direct_row = row("direct", c, &d, None, Some(o3.since(&o2)));
    let speedup = rc_row.mb_per_s / direct_row.mb_per_s.max(1e-9);
    let gets = rc_row.origin_gets.unwrap_or(u64::MAX);
    let checks = vec![
        check(
            "hit ratio after restart",
            "≥ 95%",
            pct(rc_row.hit_ratio),
            rc_row.hit_ratio.unwrap_or(0.0) >= 0.95,
        ),
        check(
            "origin GETs after restart",
            "0",
            gets.to_string(),
            gets == 0,
        ),
        check(
            "throughput after restart ÷ direct",
            "≥ 8×",
            format!("{speedup:.1}×"),
            speedup >= 8.0,
        ),
        check(
            "verify failures",
            "0",
            (w.verify_failures + r.verify_failures + d.verify_failures).to_string(),
            w.verify_failures + r.verify_failures + d.verify_failures == 0,
        ),
    ];
    let notes = vec![
        format!("workload: {}", base.describe()),
        format!(
            "warm-up: {} pass(es) of {} responses, then the measured round in RAM; blocks on disk: {} after the warm-up, {} at SIGTERM ({} write drops in all); after restart: {} blocks recovered in {:.3} s",
            plan.warm_passes, w.requests, warmed.disk_blocks, at_term.disk_blocks, at_term.disk_write_drops, s0.recovered_blocks, s0.recovery_seconds
        ),
        "origin HEADs after restart are the metadata revalidation (one per object, metadata is not persisted)".into(),
    ];
    let mut notes = notes;
    notes.push(format!(
        "in RAM before the restart the same workload ran at {:.1}× direct; after the restart {speedup:.1}×",
        ram_row.mb_per_s / direct_row.mb_per_s.max(1e-9)
    ));
    Ok((vec![ram_row, rc_row, direct_row], checks, notes))
}

async fn larger_than_ram(ctx: &Ctx<'_>, plan: &DiskPlan) -> Result<Parts> {
    let object_size = 16u64 << 20;
    let spec = ZipfSpec {
        objects: (plan.working_set / object_size).max(1) as usize,
        object_size,
        range_size: 256 << 10,
        s: 0.0,
    };
    let c = plan.concurrency;
    let mut rows = Vec::new();
    let mut checks = Vec::new();
    let mut notes = vec![format!(
        "workload: {} (working set {}), cache.memory = 256MiB, cache.block_size = 1MiB",
        ZipfRanges::new(spec.clone(), plan.seed).describe(),
        fmt_bytes(plan.working_set)
    )];
    for (case, disk) in [
        ("RAM only (256MiB)", None),
        ("RAM 256MiB + disk", Some(plan.disk_size.as_str())),
    ] {
        let dir = plan
            .dir
            .join(if disk.is_some() { "ram-disk" } else { "ram" });
        let rc = ctx.start(&dir, "256MiB", "1MiB", disk)?;
        let ep = ctx.endpoint(&rc);
        let bucket = "lt-disk-larger";
        let w = ZipfRanges::new(spec.clone(), plan.seed);
        eprintln!("{case}: warming {}", fmt_bytes(plan.working_set));
        warm(ctx, &ep, bucket, &w, c.clamp(4, 16), plan.warm_passes).await;
        let take = |rc| {
            if disk.is_some() {
                DiskSample::take(rc)
            } else {
                DiskSample::take_ram(rc)
            }
        };
        if disk.is_some() {
            let s = drain(&rc, DRAIN)?;
            notes.push(format!(
                "{case}: {} blocks on disk after the warm-up ({} write drops)",
                s.disk_blocks, s.disk_write_drops
            ));
        }
        let (s0, o0) = (take(&rc)?, ctx.origin());
        let r = ctx
            .round(
                case,
                ep,
                bucket,
                Box::new(ZipfRanges::new(spec.clone(), plan.seed + 1)),
                c,
                Some(plan.duration),
            )
            .await;
        let (s1, o1) = (take(&rc)?, ctx.origin());
        let rw = row(case, c, &r, Some(s1.since(&s0)), Some(o1.since(&o0)));
        if disk.is_some() {
            checks.push(check(
                "hit ratio, 1 GiB working set, 256 MiB RAM + disk",
                "≥ 95%",
                pct(rw.hit_ratio),
                rw.hit_ratio.unwrap_or(0.0) >= 0.95,
            ));
        }
        checks.push(check(
            &format!("verify failures ({case})"),
            "0",
            rw.verify_failures.to_string(),
            rw.verify_failures == 0,
        ));
        rows.push(rw);
    }
    Ok((rows, checks, notes))
}

async fn close_to_disk(ctx: &Ctx<'_>, plan: &DiskPlan) -> Result<Parts> {
    let (mut rows, mut checks) = (Vec::new(), Vec::new());
    let mut notes = vec![
        "rangecache: cache.memory = 4MiB (the RAM tier holds almost nothing), block size = range size (and 1 MiB blocks for smaller ranges), unsigned requests (an [[auth.anonymous]] read grant) so the load generator does not sign; fio: --direct=1 --ioengine=io_uring --numjobs=1 on a file in the same directory, --iodepth = connections".into(),
        "rangecache RAM hits: the same reads through a rangecache whose RAM (1.5× the working set, no disk tier) holds every block, after one warm-up pass: what the request path itself (HTTP over loopback to a load generator on the same cores) allows at that depth, the ceiling for disk hits. \"Back to back\": what a disk hit would reach if each connection's request path (the RAM-hit rate) and its disk read (fio's rate at that depth) took turns without overlap, 1 / (1/RAM + 1/fio): a proxy's request is parsed before its disk read and sent after it, so only more connections overlap them".into(),
    ];
    let object_size = 64u64 << 20;
    // Like for like (block size = range size, as fio's --bs), and for ranges under 1 MiB also
    // the default 1 MiB blocks, where each hit reads a whole block: the read amplification.
    let mut cases: Vec<(u64, u64)> = plan.sizes.iter().map(|&s| (s, s)).collect();
    cases.extend(
        plan.sizes
            .iter()
            .filter(|&&s| s < 1 << 20)
            .map(|&s| (s, 1 << 20)),
    );
    // The same reads served from RAM: what rangecache's request path (HTTP over loopback, a
    // load generator on the same cores) allows at each depth, whatever the disk does.
    let mut ceiling = std::collections::HashMap::new();
    for &size in &plan.sizes {
        let spec = AlignedSpec {
            objects: (plan.working_set / object_size).max(1) as usize,
            object_size,
            range_size: size,
        };
        for (depth, r) in ram_ceiling(ctx, plan, spec).await? {
            ceiling.insert((size, depth), r.mb_per_s);
            rows.push(r);
        }
    }
    for (size, block) in cases {
        let spec = AlignedSpec {
            objects: (plan.working_set / object_size).max(1) as usize,
            object_size,
            range_size: size,
        };
        let dir = plan
            .dir
            .join(format!("close-{}-{}", size_label(size), size_label(block)));
        let tag = format!("{} ranges, {} blocks", size_label(size), size_label(block));
        let (rc, ep) = start_unsigned(ctx, &dir, "4MiB", block, Some(&plan.disk_size))?;
        eprintln!(
            "{}: warming {} into the disk tier",
            size_label(size),
            fmt_bytes(plan.working_set)
        );
        // Blocks the write queue dropped are admitted again on the next pass; this run
        // measures disk hits, so it warms until the disk holds every block (at most 4 passes).
        let want = plan.working_set / block;
        let mut passes = 0;
        let warmed = loop {
            passes += 1;
            warm_pass(ctx, &ep, &spec, plan).await;
            let s = drain(&rc, DRAIN)?;
            if s.disk_blocks >= want || passes == 4 {
                break s;
            }
        };
        notes.push(format!(
            "{tag}: {} of {want} blocks on disk after {passes} warm-up pass(es) ({} write drops on the way)",
            warmed.disk_blocks,
            warmed.disk_write_drops
        ));
        let file = dir.join("disk").join("fio.dat");
        fio::layout(&file, size, plan.working_set)?;
        for &depth in &plan.depths {
            let s0 = DiskSample::take(&rc)?;
            let r = random_round(ctx, "", &ep, &spec, plan, depth).await;
            let s = DiskSample::take(&rc)?.since(&s0);
            let rw = row(
                &format!("rangecache disk hits, {tag}"),
                depth,
                &r,
                Some(s),
                None,
            );
            let f = fio::randread(&file, size, plan.working_set, depth, plan.duration)?;
            eprintln!(
                "  fio {} qd{depth}: {:.0} MB/s",
                size_label(size),
                f.mb_per_s
            );
            let ratio = rw.mb_per_s / f.mb_per_s.max(1e-9);
            let disk_share = s.disk_hits as f64 / r.requests.max(1) as f64;
            checks.push(check(
                &format!(
                    "{tag}, depth {depth}: rangecache ÷ fio {}",
                    size_label(size)
                ),
                "≥ 0.8×",
                format!(
                    "{ratio:.2}× ({:.0} vs {:.0} MB/s; {:.0}% of responses were disk hits, {:.2} bytes read from disk per byte sent; the same reads from RAM: {})",
                    rw.mb_per_s,
                    f.mb_per_s,
                    disk_share * 100.0,
                    s.disk_read_bytes as f64 / r.bytes.max(1) as f64,
                    ceiling.get(&(size, depth)).map_or("-".into(), |&c| {
                        let fio = f.mb_per_s.max(1e-9);
                        // Each connection's request path and its disk read, back to back.
                        let serial = c * fio / (c + fio);
                        format!(
                            "{c:.0} MB/s = {:.2}× fio; RAM path and fio's read back to back: {serial:.0} MB/s = {:.2}× fio",
                            c / fio,
                            serial / fio
                        )
                    })
                ),
                ratio >= 0.8,
            ));
            rows.push(rw);
            rows.push(DiskRow {
                case: format!("fio O_DIRECT {}", size_label(size)),
                concurrency: depth,
                mb_per_s: f.mb_per_s,
                p50_ms: f.p50_ms,
                p99_ms: f.p99_ms,
                requests: f.ios,
                ..DiskRow::default()
            });
        }
        let _ = std::fs::remove_file(&file);
    }
    Ok((rows, checks, notes))
}

/// The bucket of the close-to-disk reads.
const CLOSE_BUCKET: &str = "lt-disk-close";

/// A rangecache in `dir` (`memory`, blocks of `block` bytes, a disk tier of `disk` if given)
/// that allows unsigned reads, and an endpoint on it that does not sign: the load generator's
/// signing would cost more than what these runs measure.
fn start_unsigned(
    ctx: &Ctx<'_>,
    dir: &std::path::Path,
    memory: &str,
    block: u64,
    disk: Option<&str>,
) -> Result<(Rangecache, std::rc::Rc<crate::client::Endpoint>)> {
    let mut opts_ctx = Ctx {
        sim: ctx.sim,
        opts: ctx.opts.clone(),
        direct: ctx.direct.clone(),
        progress: ctx.progress.clone(),
    };
    opts_ctx.opts.anonymous_read = AnonymousRead::Allowed;
    let rc = opts_ctx.start(dir, memory, &size_label(block), disk)?;
    let mut ep = (*ctx.endpoint(&rc)).clone();
    ep.signer = None;
    Ok((rc, std::rc::Rc::new(ep)))
}

/// One pass over `spec`'s objects, every byte read once (8 connections).
async fn warm_pass(
    ctx: &Ctx<'_>,
    ep: &std::rc::Rc<crate::client::Endpoint>,
    spec: &AlignedSpec,
    plan: &DiskPlan,
) {
    let warm = AlignedRanges::new(spec.clone(), plan.seed);
    ctx.round(
        "warm-up",
        ep.clone(),
        CLOSE_BUCKET,
        warmup_of(&warm),
        8,
        None,
    )
    .await;
}

/// One measured round of `spec`'s random aligned reads at `depth` (= connections).
async fn random_round(
    ctx: &Ctx<'_>,
    what: &str,
    ep: &std::rc::Rc<crate::client::Endpoint>,
    spec: &AlignedSpec,
    plan: &DiskPlan,
    depth: usize,
) -> crate::bench::round::RoundResult {
    ctx.round(
        &format!("{} {what}qd{depth}", size_label(spec.range_size)),
        ep.clone(),
        CLOSE_BUCKET,
        Box::new(AlignedRanges::new(spec.clone(), plan.seed + depth as u64)),
        depth,
        Some(plan.duration),
    )
    .await
}

/// `spec`'s reads at each of the plan's depths through a rangecache whose RAM holds the whole
/// working set (no disk tier), after one warm-up pass: rows "rangecache RAM hits".
async fn ram_ceiling(
    ctx: &Ctx<'_>,
    plan: &DiskPlan,
    spec: AlignedSpec,
) -> Result<Vec<(usize, DiskRow)>> {
    let size = spec.range_size;
    let memory = format!("{}MiB", (plan.working_set * 3 / 2) >> 20);
    let dir = plan.dir.join(format!("ram-{}", size_label(size)));
    let (rc, ep) = start_unsigned(ctx, &dir, &memory, size, None)?;
    eprintln!("{}: the same reads from RAM", size_label(size));
    warm_pass(ctx, &ep, &spec, plan).await;
    let mut rows = Vec::new();
    for &depth in &plan.depths {
        let r = random_round(ctx, "RAM ", &ep, &spec, plan, depth).await;
        let label = format!(
            "rangecache RAM hits (no disk read), {} ranges",
            size_label(size)
        );
        rows.push((depth, row(&label, depth, &r, None, None)));
    }
    drop(rc);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(rows)
}

async fn crash(ctx: &Ctx<'_>, plan: &DiskPlan) -> Result<Parts> {
    let object_size = 32u64 << 20;
    let spec = ZipfSpec {
        objects: (plan.working_set / object_size).max(1) as usize,
        object_size,
        range_size: 1 << 20,
        s: 0.0,
    };
    let c = plan.concurrency.max(16);
    let bucket = "lt-disk-crash";
    let mut rc = ctx.start(
        &plan.dir.join("crash"),
        "256MiB",
        "1MiB",
        Some(&plan.disk_size),
    )?;
    let ep = ctx.endpoint(&rc);
    // One pass first: the load's reads are then second accesses, which the disk admits, so
    // the disk is being written when the kill comes.
    let first = ZipfRanges::new(spec.clone(), plan.seed);
    warm(ctx, &ep, bucket, &first, 8, 1).await;
    eprintln!("load, kill -9 after {:?}", plan.duration / 2);
    let kill_at = plan.duration / 2;
    let mut before_kill = None;
    let (load, killed) = tokio::join!(
        ctx.round(
            "load (killed midway)",
            ep.clone(),
            bucket,
            Box::new(ZipfRanges::new(spec.clone(), plan.seed)),
            c,
            Some(plan.duration)
        ),
        async {
            tokio::time::sleep(kill_at).await;
            before_kill = DiskSample::take(&rc).ok();
            rc.kill()
        }
    );
    killed?;
    let before = before_kill.unwrap_or_default();
    rc.respawn()?;
    let s0 = DiskSample::take(&rc)?;
    let (o0, objects) = (ctx.origin(), ZipfRanges::new(spec.clone(), plan.seed));
    let all = ReadList::new(
        objects.objects().to_vec(),
        whole_objects(objects.objects(), WARMUP_PIECE),
    );
    let v = ctx
        .round(
            "verify every byte",
            ep.clone(),
            bucket,
            Box::new(all),
            8,
            None,
        )
        .await;
    let s1 = DiskSample::take(&rc)?;
    let o1 = ctx.origin();
    let z = ctx
        .round(
            "random ranges",
            ep,
            bucket,
            Box::new(ZipfRanges::new(spec.clone(), plan.seed + 1)),
            c,
            Some(plan.duration),
        )
        .await;
    let s2 = DiskSample::take(&rc)?;
    let rows = vec![
        row("load, killed midway", c, &load, None, None),
        row(
            "after restart: every byte read once",
            8,
            &v,
            Some(s1.since(&s0)),
            Some(o1.since(&o0)),
        ),
        row(
            "after restart: random ranges",
            c,
            &z,
            Some(s2.since(&s1)),
            Some(ctx.origin().since(&o1)),
        ),
    ];
    let failures = v.verify_failures + z.verify_failures;
    let torn = s2.checksum_failures + s0.recovered_torn;
    let checks = vec![
        check(
            "verify failures after kill -9 and restart",
            "0",
            failures.to_string(),
            failures == 0,
        ),
        check(
            "torn or damaged blocks dropped (checksum failures + torn headers at recovery)",
            "counted",
            format!(
                "{} checksum failures, {} torn headers",
                s2.checksum_failures, s0.recovered_torn
            ),
            true,
        ),
    ];
    let notes = vec![
        format!("workload: {} (working set {}), cache.memory = 256MiB, cache.disk.size = {}", objects.describe(), fmt_bytes(plan.working_set), plan.disk_size),
        format!(
            "just before kill -9: {} blocks written, {} queued, {} on disk; after restart: {} blocks recovered in {:.3} s, {} torn headers; {} disk hits while every byte was re-read",
            before.disk_writes, before.disk_queued, before.disk_blocks, s0.recovered_blocks, s0.recovery_seconds, s0.recovered_torn, s1.since(&s0).disk_hits
        ),
        format!("errors of the killed round are the requests cut by the kill ({})", load.transport_errors + load.status_errors),
        format!("{torn} blocks were refused by their checks in all"),
    ];
    Ok((rows, checks, notes))
}
