//! Per-request operational costs: one access-log line, one histogram observation, and the
//! same observation through `prometheus-client` (the crate issue 14 asked us to weigh), alone
//! and with two threads recording at once.
//!
//!   cargo bench -p rangecache-benches --bench ops

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime};

use criterion::{black_box, Criterion};
use prometheus_client::metrics::histogram::Histogram as PcHistogram;
use rangecache_dataplane::access_log::AccessRecord;
use rangecache_dataplane::metrics::{CacheResult, Histogram, LATENCY_BOUNDS_US};
use rangecache_dataplane::s3::Operation;

/// The latency bounds in seconds, for prometheus-client.
fn pc_bounds() -> impl Iterator<Item = f64> {
    LATENCY_BOUNDS_US.iter().map(|&b| b as f64 / 1e6)
}

fn access_log_line(c: &mut Criterion) {
    let client: SocketAddr = "10.1.2.3:51234".parse().unwrap();
    let mut buf = Vec::with_capacity(64 * 1024);
    c.bench_function("access_log/format_one_line", |b| {
        b.iter(|| {
            let rec = AccessRecord {
                time: SystemTime::now(),
                request_id: "4A30467276D85987",
                client: Some(client),
                access_key: Some("AKIDEXAMPLE"),
                op: Some(Operation::GetObject),
                bucket: Some("analytics"),
                key: Some("tables/events/date=2026-11-29/part-00017.parquet"),
                range: Some("bytes=104857600-105906175"),
                status: 206,
                bytes_sent: 1_048_576 + 412,
                cache: CacheResult::Hit,
                duration: Duration::from_micros(143),
                origin_first_byte: None,
            };
            rec.write_json(&mut buf);
            if buf.len() > 60 * 1024 {
                buf.clear();
            }
        })
    });
}

fn observe_one(c: &mut Criterion) {
    let ours = Histogram::new(LATENCY_BOUNDS_US);
    c.bench_function("histogram/rangecache_observe", |b| {
        let mut v = 0u64;
        b.iter(|| {
            v = (v + 7919) % 40_000;
            ours.observe(black_box(v));
        })
    });
    let theirs = PcHistogram::new(pc_bounds());
    c.bench_function("histogram/prometheus_client_observe", |b| {
        let mut v = 0u64;
        b.iter(|| {
            v = (v + 7919) % 40_000;
            theirs.observe(black_box(v as f64 / 1e6));
        })
    });
}

/// Two threads each record `iters` observations: into their own histogram (per worker, as
/// rangecache does) or into one shared histogram. Returns the wall time.
fn two_threads(iters: u64, record: Arc<dyn Fn(usize, u64) + Send + Sync>) -> Duration {
    let barrier = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (barrier, record) = (barrier.clone(), record.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let mut v = t as u64;
                for _ in 0..iters {
                    v = (v + 7919) % 40_000;
                    record(t, black_box(v));
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for t in threads {
        t.join().unwrap();
    }
    start.elapsed()
}

fn observe_two_threads(c: &mut Criterion) {
    let mut g = c.benchmark_group("histogram_2_threads");
    let ours: Arc<[Histogram; 2]> = Arc::new([
        Histogram::new(LATENCY_BOUNDS_US),
        Histogram::new(LATENCY_BOUNDS_US),
    ]);
    g.bench_function("rangecache_per_worker", |b| {
        b.iter_custom(|iters| {
            let h = ours.clone();
            two_threads(iters, Arc::new(move |t, v| h[t].observe(v)))
        })
    });
    let per_worker: Arc<[PcHistogram; 2]> =
        Arc::new([PcHistogram::new(pc_bounds()), PcHistogram::new(pc_bounds())]);
    g.bench_function("prometheus_client_per_worker", |b| {
        b.iter_custom(|iters| {
            let h = per_worker.clone();
            two_threads(iters, Arc::new(move |t, v| h[t].observe(v as f64 / 1e6)))
        })
    });
    let shared = Arc::new(PcHistogram::new(pc_bounds()));
    g.bench_function("prometheus_client_shared", |b| {
        b.iter_custom(|iters| {
            let h = shared.clone();
            two_threads(iters, Arc::new(move |_, v| h.observe(v as f64 / 1e6)))
        })
    });
    let counter = Arc::new(AtomicU64::new(0));
    g.bench_function("shared_atomic_counter_baseline", |b| {
        b.iter_custom(|iters| {
            let c = counter.clone();
            two_threads(
                iters,
                Arc::new(move |_, v| {
                    c.fetch_add(v, std::sync::atomic::Ordering::Relaxed);
                }),
            )
        })
    });
    g.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, minus the undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    access_log_line(&mut c);
    observe_one(&mut c);
    observe_two_threads(&mut c);
    c.final_summary();
}
