//! The client-facing side of a worker: the per-connection loop, the S3 pass-through, and
//! response writing.

mod accept;
mod admission;
mod azure;
mod cached;
mod conn;
mod cors;
mod headers;
mod outcome;
mod proxy;
mod proxy_header;
mod respond;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

pub use accept::serve_accepted;
pub use conn::{refuse_connection, serve_connection};

use crate::access_log::{AccessLogSink, WorkerLog};
use crate::auth::KeyCache;
use crate::cache::read::ReadEnv;
use crate::cache::Cache;
use crate::origin::OriginClient;
use crate::{Metrics, SharedSnapshot, WorkerMetrics};

/// Everything one worker's connections share. Lives in an `Rc` on its worker; never crosses
/// threads except through the `Arc`s it holds.
pub struct WorkerCtx {
    /// This worker's index (metrics block, logs).
    pub id: usize,
    /// The published configuration.
    pub snapshot: SharedSnapshot,
    /// The metrics registry (this worker writes block `id` only).
    pub metrics: Arc<Metrics>,
    /// This worker's origin client and connection pool.
    pub origin: Rc<OriginClient>,
    /// The read pipeline on this worker.
    pub read: Rc<ReadEnv>,
    /// The block cache shared by all workers.
    pub cache: Arc<Cache>,
    /// SigV4 signing keys of verified clients, shared by all workers.
    pub keys: Arc<KeyCache>,
    /// This worker's access-log buffer; `None` when `log.access = "off"`.
    pub access_log: Option<Rc<WorkerLog>>,
    /// Requests being processed now.
    inflight: Cell<usize>,
    /// Set when the worker drains: finish the current request, then close.
    draining: Cell<bool>,
}

impl WorkerCtx {
    /// A context for worker `id`. Call on the worker's runtime: with an access log, it starts
    /// the task that hands the worker's log buffer over.
    pub fn new(
        id: usize,
        snapshot: SharedSnapshot,
        metrics: Arc<Metrics>,
        cache: Arc<Cache>,
        keys: Arc<KeyCache>,
        access_log: Option<AccessLogSink>,
    ) -> Rc<Self> {
        Rc::new(Self {
            id,
            snapshot,
            origin: Rc::new(OriginClient::new(metrics.clone(), id)),
            read: ReadEnv::new(cache.clone(), metrics.clone(), id),
            access_log: access_log.map(|sink| WorkerLog::start(sink, metrics.clone(), id)),
            metrics,
            cache,
            keys,
            inflight: Cell::new(0),
            draining: Cell::new(false),
        })
    }

    /// This worker's metrics block.
    pub fn metrics(&self) -> &WorkerMetrics {
        self.metrics.worker(self.id)
    }

    /// Requests being processed now.
    pub fn inflight(&self) -> usize {
        self.inflight.get()
    }

    /// Ask connections to close after their current request.
    pub fn start_draining(&self) {
        self.draining.set(true);
    }

    /// True once draining started.
    pub fn draining(&self) -> bool {
        self.draining.get()
    }

    fn begin_request(self: &Rc<Self>) -> InflightGuard {
        self.inflight.set(self.inflight.get() + 1);
        InflightGuard(self.clone())
    }
}

/// Counts a request as in flight until dropped.
struct InflightGuard(Rc<WorkerCtx>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.set(self.0.inflight.get() - 1);
    }
}
