//! One round: C concurrent keep-alive clients run a workload against one target for a
//! duration or a request budget, on the caller's current-thread runtime. Every response is
//! checked; latencies of correct responses go into one HDR histogram (microseconds).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::Barrier;
use tokio::task::LocalSet;
use tokio::time::Instant;

use super::progress::{Progress, Tick};
use crate::client::{encode_path, Client, Endpoint, Expect, Mismatch, Outcome};
use crate::content::object_seed;
use crate::parquet_file::ParquetObject;
use crate::workload::{Op, Workload};

/// A request that takes longer than this counts as a transport error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How to run a round.
#[derive(Debug, Clone)]
pub struct RoundPlan {
    /// Progress label.
    pub label: String,
    /// The target.
    pub endpoint: Rc<Endpoint>,
    /// Bucket the workload's objects live in.
    pub bucket: String,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Stop issuing requests after this long.
    pub duration: Option<Duration>,
    /// Stop after this many requests.
    pub max_requests: Option<u64>,
    /// Check every body byte (otherwise only status and lengths).
    pub verify: bool,
}

/// What a round measured.
#[derive(Debug, Clone)]
pub struct RoundResult {
    /// Responses received (any status).
    pub requests: u64,
    /// Responses that were exactly right.
    pub ok: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Connection failures and timeouts.
    pub transport_errors: u64,
    /// Responses with an unexpected status (503, 403, ...).
    pub status_errors: u64,
    /// Responses with a wrong Content-Range, length or content.
    pub verify_failures: u64,
    /// Body bytes that differed from the expected content.
    pub verify_failed_bytes: u64,
    /// Wall time of the round.
    pub elapsed: Duration,
    /// Latency of correct responses, in microseconds.
    pub hist: Histogram<u64>,
    /// Time to the first body byte of correct responses, in microseconds.
    pub first_byte: Histogram<u64>,
}

impl RoundResult {
    /// Nothing measured yet (for tests of what consumes rounds).
    #[cfg(test)]
    pub(crate) fn empty_for_tests() -> Self {
        Self::empty()
    }

    fn empty() -> Self {
        RoundResult {
            requests: 0,
            ok: 0,
            bytes: 0,
            transport_errors: 0,
            status_errors: 0,
            verify_failures: 0,
            verify_failed_bytes: 0,
            elapsed: Duration::ZERO,
            hist: new_histogram(),
            first_byte: new_histogram(),
        }
    }
}

/// HEAD `path`: right when it answers 200 with the object's size as Content-Length.
async fn head(client: &mut Client, path: &str, expect: &Expect) -> std::io::Result<Outcome> {
    let (status, len, _etag) = client.head(path).await?;
    let mismatch = if status != 200 {
        Some(Mismatch::Status(status))
    } else if len != Some(expect.size) {
        Some(Mismatch::Length)
    } else {
        None
    };
    Ok(Outcome {
        status,
        body_bytes: 0,
        bad_bytes: 0,
        mismatch,
        first_byte: None,
    })
}

/// A histogram for latencies from 1 µs to 10 min at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

struct Shared {
    result: RefCell<RoundResult>,
    issued: Cell<u64>,
    stop: Cell<bool>,
    running: Cell<usize>,
    /// When the last client stopped: the round's end (the progress ticker notices it only at
    /// its next tick, up to 250 ms later).
    finished: Cell<Option<Instant>>,
}

/// Run `workload` as `plan` says and return what was measured.
pub async fn run_round(
    plan: &RoundPlan,
    workload: Box<dyn Workload>,
    progress: &Progress,
) -> RoundResult {
    let paths: Rc<Vec<(String, Expect)>> = Rc::new(
        workload
            .objects()
            .iter()
            .map(|o| {
                let expect = Expect {
                    size: o.size,
                    seed: plan.verify.then(|| object_seed(&plan.bucket, &o.key, 0)),
                    parquet: ParquetObject::of_key(&o.key),
                };
                (encode_path(&plan.bucket, &o.key), expect)
            })
            .collect(),
    );
    let lockstep = workload.lockstep();
    let workload = Rc::new(RefCell::new(workload));
    let shared = Rc::new(Shared {
        result: RefCell::new(RoundResult::empty()),
        issued: Cell::new(0),
        stop: Cell::new(false),
        running: Cell::new(plan.concurrency),
        finished: Cell::new(None),
    });
    let start = Instant::now();
    let deadline = plan.duration.map(|d| start + d);
    let barrier = Rc::new(Barrier::new(plan.concurrency));
    let local = LocalSet::new();

    for c in 0..plan.concurrency {
        let (paths, workload, shared, barrier) = (
            paths.clone(),
            workload.clone(),
            shared.clone(),
            barrier.clone(),
        );
        let mut client = Client::new(plan.endpoint.clone());
        let max = plan.max_requests;
        local.spawn_local(async move {
            let out_of_budget = |s: &Shared| {
                deadline.is_some_and(|d| Instant::now() >= d)
                    || max.is_some_and(|m| s.issued.get() >= m)
            };
            loop {
                if lockstep {
                    if barrier.wait().await.is_leader() && out_of_budget(&shared) {
                        shared.stop.set(true);
                    }
                    barrier.wait().await;
                    if shared.stop.get() {
                        break;
                    }
                } else if shared.stop.get() || out_of_budget(&shared) {
                    break;
                }
                let Some(read) = workload.borrow_mut().next(c) else {
                    if lockstep {
                        shared.stop.set(true);
                    }
                    break;
                };
                shared.issued.set(shared.issued.get() + 1);
                let (path, expect) = &paths[read.object];
                let t0 = Instant::now();
                let sent_us = crate::trace::now_us();
                let r = match read.op {
                    Op::Get => {
                        tokio::time::timeout(
                            REQUEST_TIMEOUT,
                            client.get(path, read.range, expect.clone()),
                        )
                        .await
                    }
                    Op::Head => {
                        tokio::time::timeout(REQUEST_TIMEOUT, head(&mut client, path, expect)).await
                    }
                };
                let micros = t0.elapsed().as_micros() as u64;
                if let Ok(Ok(o)) = &r {
                    crate::trace::line(|| {
                        let range = match read.range {
                            Some(crate::range::ByteRange::Bounded { first, last }) => {
                                format!("{first}-{last}")
                            }
                            _ => "-".to_owned(),
                        };
                        let fb = o.first_byte.map_or(0, |f| f.as_micros());
                        format!("C {c} {path} {range} {sent_us} {fb} {micros}")
                    });
                }
                let mut res = shared.result.borrow_mut();
                match r {
                    Ok(Ok(o)) => {
                        res.requests += 1;
                        res.bytes += o.body_bytes;
                        match o.mismatch {
                            None => {
                                res.ok += 1;
                                res.hist.saturating_record(micros.max(1));
                                if let Some(fb) = o.first_byte {
                                    res.first_byte
                                        .saturating_record((fb.as_micros() as u64).max(1));
                                }
                            }
                            Some(Mismatch::Status(_)) => res.status_errors += 1,
                            Some(_) => {
                                res.verify_failures += 1;
                                res.verify_failed_bytes += o.bad_bytes;
                            }
                        }
                    }
                    Ok(Err(_)) | Err(_) => res.transport_errors += 1,
                }
            }
            shared.running.set(shared.running.get() - 1);
            if shared.running.get() == 0 {
                shared.finished.set(Some(Instant::now()));
            }
        });
    }

    let label = plan.label.clone();
    let (ticker_shared, ticker_progress) = (shared.clone(), progress.clone());
    let (duration, max_requests) = (plan.duration, plan.max_requests);
    local.spawn_local(async move {
        while ticker_shared.running.get() > 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let elapsed = start.elapsed().as_secs_f64();
            let by_time = duration.map_or(0.0, |d| elapsed / d.as_secs_f64());
            let by_count =
                max_requests.map_or(0.0, |m| ticker_shared.issued.get() as f64 / m as f64);
            let res = ticker_shared.result.borrow();
            ticker_progress.draw(
                &label,
                Tick {
                    fraction: by_time.max(by_count),
                    elapsed,
                    requests: res.requests,
                    bytes: res.bytes,
                },
            );
        }
    });
    local.await;
    progress.clear();
    let mut result = shared.result.replace(RoundResult::empty());
    result.elapsed = shared.finished.get().unwrap_or_else(Instant::now) - start;
    result
}
