//! What a worker does with the result of `accept`: serve the connection while the worker is
//! under its share of `server.max_connections`, refuse it past that, and back off (logging
//! at most once a second) when `accept` itself fails, e.g. out of file descriptors.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use monoio::net::TcpStream;

use crate::server::{refuse_connection, serve_accepted, WorkerCtx};
use crate::WorkerMetrics;

/// Most refused connections a worker holds open at once while waiting to answer them 503;
/// past this, refused connections are closed at once.
const MAX_REFUSING: usize = 16;

/// First pause after a failed `accept`; doubled on each further failure up to
/// [`MAX_BACKOFF`], reset by a successful one.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);

/// Longest pause after failed `accept`s.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Time between two accept-failure log lines of one worker.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// The share of `max_connections` (process-wide, 0 = no limit) worker `worker` of `workers`
/// gets: an even split, the remainder to the first workers, at least 1.
pub fn worker_share(max_connections: usize, workers: usize, worker: usize) -> usize {
    if max_connections == 0 {
        return 0;
    }
    let workers = workers.max(1);
    let share = max_connections / workers + usize::from(worker < max_connections % workers);
    share.max(1)
}

/// One worker's admission of accepted connections.
pub struct AcceptGate {
    worker: usize,
    /// Connections this worker may hold; 0 = no limit.
    limit: usize,
    open: Rc<Cell<usize>>,
    refusing: Rc<Cell<usize>>,
    backoff: Cell<Duration>,
    /// Failures since the last log line, and when it was written.
    unlogged: Cell<u64>,
    logged_at: Cell<Option<Instant>>,
}

/// Holds one unit of a counter until dropped.
struct Slot(Rc<Cell<usize>>);

impl Slot {
    fn take(count: &Rc<Cell<usize>>) -> Self {
        count.set(count.get() + 1);
        Slot(count.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl AcceptGate {
    /// A gate for worker `worker` holding at most `limit` connections (0 = no limit).
    pub fn new(worker: usize, limit: usize) -> Self {
        Self {
            worker,
            limit,
            open: Rc::new(Cell::new(0)),
            refusing: Rc::new(Cell::new(0)),
            backoff: Cell::new(FIRST_BACKOFF),
            unlogged: Cell::new(0),
            logged_at: Cell::new(None),
        }
    }

    /// Serve `stream` on this worker, or refuse it when the worker is at its limit: answer
    /// `503 SlowDown` if a request arrives within a moment (at most [`MAX_REFUSING`] such
    /// waits at once), close it otherwise. Refusals count in
    /// `rangecache_connections_refused_total`.
    pub fn admit(&self, stream: TcpStream, peer: SocketAddr, ctx: &Rc<WorkerCtx>) {
        self.backoff.set(FIRST_BACKOFF);
        if self.limit == 0 || self.open.get() < self.limit {
            let slot = Slot::take(&self.open);
            let ctx = ctx.clone();
            monoio::spawn(async move {
                let _slot = slot;
                serve_accepted(stream, peer, ctx).await;
            });
            return;
        }
        WorkerMetrics::add(&ctx.metrics().ops.connections_refused, 1);
        if self.refusing.get() >= MAX_REFUSING {
            drop(stream);
            return;
        }
        let slot = Slot::take(&self.refusing);
        let ctx = ctx.clone();
        monoio::spawn(async move {
            let _slot = slot;
            refuse_connection(stream, peer, &ctx).await;
        });
    }

    /// `accept` failed with `e`: count it, log at most once per [`LOG_EVERY`] (with the
    /// number of failures since the last line), and pause before the next attempt, longer
    /// while failures continue. Connections wait in the listen backlog meanwhile.
    pub async fn failed(&self, e: io::Error, metrics: &WorkerMetrics) {
        WorkerMetrics::add(&metrics.ops.accept_errors, 1);
        let unlogged = self.unlogged.get() + 1;
        let due = self
            .logged_at
            .get()
            .is_none_or(|t| t.elapsed() >= LOG_EVERY);
        if due {
            tracing::warn!(
                worker = self.worker,
                failures = unlogged,
                error = %e,
                "accept failed (logged at most once a second; raise LimitNOFILE / ulimit -n or lower server.max_connections)"
            );
            self.logged_at.set(Some(Instant::now()));
            self.unlogged.set(0);
        } else {
            self.unlogged.set(unlogged);
        }
        let pause = self.backoff.get();
        self.backoff.set((pause * 2).min(MAX_BACKOFF));
        monoio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (max, workers) in [(10, 3), (1000, 7), (2, 4), (5, 5)] {
            let shares: Vec<usize> = (0..workers)
                .map(|w| worker_share(max, workers, w))
                .collect();
            let total: usize = shares.iter().sum();
            assert!(
                total == max || (max < workers && total == workers),
                "{shares:?}"
            );
            assert!(shares.iter().all(|&s| s >= 1));
        }
        assert_eq!(worker_share(0, 4, 0), 0);
    }
}
