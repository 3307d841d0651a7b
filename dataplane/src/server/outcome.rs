//! What became of one request: the facts the access log and the latency histograms need,
//! filled in while the request is handled and finished once it is answered.
//!
//! [`super::proxy::handle`] fills an [`Outcome`] (operation, target, status through
//! [`RequestMetrics`]); the cache path reports how it answered with [`Outcome::blocks`] and
//! [`Outcome::origin_first_byte`]; [`super::conn`] calls [`Outcome::finish`] after `handle`
//! returns. Fields are `Cell`s so that every part of a request can report through a shared
//! reference. Text fields are copied only when the access log is on.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::ops::Deref;
use std::time::{Duration, Instant, SystemTime};

use crate::access_log::{AccessRecord, WorkerLog};
use crate::metrics::CacheResult;
use crate::s3::{new_request_id, Operation};
use crate::WorkerMetrics;

use super::WorkerCtx;

/// The facts of one request, reported while it is handled.
pub(crate) struct Outcome {
    start: Instant,
    request_id: String,
    /// Copy text fields (the access log is on).
    detailed: bool,
    op: Cell<Option<Operation>>,
    status: Cell<u16>,
    /// Set by the cache path: whether blocks were held, filled, both.
    cache: Cell<Option<CacheResult>>,
    /// The cache path answered (hit / miss / partial), not a pass-through.
    cached: Cell<bool>,
    origin_first_byte: Cell<Option<Duration>>,
    text: RefCell<Text>,
}

/// The text fields, kept only for the access log.
#[derive(Default)]
struct Text {
    access_key: Option<String>,
    bucket: Option<String>,
    key: Option<String>,
    range: Option<String>,
}

impl Outcome {
    /// A request whose head was just read; with an access log (`log`), text fields are kept.
    pub(crate) fn new(log: Option<&WorkerLog>) -> Self {
        Self {
            start: Instant::now(),
            request_id: new_request_id(),
            detailed: log.is_some(),
            op: Cell::new(None),
            status: Cell::new(0),
            cache: Cell::new(None),
            cached: Cell::new(false),
            origin_first_byte: Cell::new(None),
            text: RefCell::new(Text::default()),
        }
    }

    /// The request id every response to this request carries.
    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The routed operation and target, and the client's `Range` header.
    pub(crate) fn target(
        &self,
        op: Operation,
        bucket: Option<&str>,
        key: Option<&str>,
        range: Option<&str>,
    ) {
        self.op.set(Some(op));
        if self.detailed {
            let mut t = self.text.borrow_mut();
            t.bucket = bucket.map(str::to_owned);
            t.key = key.map(str::to_owned);
            t.range = range.map(str::to_owned);
        }
    }

    /// The access key id the request claims (signed header or presigned URL).
    pub(crate) fn access_key(&self, id: Option<&str>) {
        if self.detailed {
            self.text.borrow_mut().access_key = id.map(str::to_owned);
        }
    }

    /// The status answered (the last one reported wins).
    pub(crate) fn status(&self, status: u16) {
        self.status.set(status);
    }

    /// The cache path is answering this request (hit unless [`Self::blocks`] or
    /// [`Self::origin_first_byte`] says otherwise).
    pub(crate) fn served_from_cache(&self) {
        self.cached.set(true);
    }

    /// The blocks a cached answer was made of: `held` of `total` came from the store (the
    /// rest from fills): sets hit, miss or partial.
    pub(crate) fn blocks(&self, held: u64, total: u64) {
        self.cache.set(Some(match held {
            0 => CacheResult::Miss,
            n if n == total => CacheResult::Hit,
            _ => CacheResult::Partial,
        }));
    }

    /// Bytes from the origin just reached this request (a response head, or a fill's first
    /// bytes); only the first report counts.
    pub(crate) fn origin_first_byte(&self) {
        if self.origin_first_byte.get().is_none() {
            self.origin_first_byte.set(Some(self.start.elapsed()));
        }
    }

    /// How the cache took part.
    fn cache_result(&self) -> CacheResult {
        match (self.cache.get(), self.cached.get()) {
            (Some(r), _) => r,
            // Answered from metadata alone (HEAD, 304, 412, 416, empty object).
            (None, true) if self.origin_first_byte.get().is_some() => CacheResult::Miss,
            (None, true) => CacheResult::Hit,
            (None, false) => CacheResult::Pass,
        }
    }

    /// The request is over: observe its histograms and write its access-log line.
    pub(crate) fn finish(self, ctx: &WorkerCtx, client: Option<SocketAddr>, bytes_sent: u64) {
        let took = self.start.elapsed();
        let cache = self.cache_result();
        if let Some(op) = self.op.get() {
            ctx.metrics()
                .ops
                .observe_request(op, cache, took, bytes_sent);
        }
        let Some(log) = &ctx.access_log else { return };
        let t = self.text.borrow();
        log.push(&AccessRecord {
            time: SystemTime::now(),
            request_id: &self.request_id,
            client,
            access_key: t.access_key.as_deref(),
            op: self.op.get(),
            bucket: t.bucket.as_deref(),
            key: t.key.as_deref(),
            range: t.range.as_deref(),
            status: self.status.get(),
            bytes_sent,
            cache,
            duration: took,
            origin_first_byte: self.origin_first_byte.get(),
        });
    }
}

/// A worker's metrics seen from one request: counters as usual, and
/// [`RequestMetrics::record_request`] also tells the request's [`Outcome`] its status.
pub(crate) struct RequestMetrics<'a> {
    metrics: &'a WorkerMetrics,
    outcome: &'a Outcome,
}

impl<'a> RequestMetrics<'a> {
    /// `metrics`, reporting statuses to `outcome`.
    pub(crate) fn new(metrics: &'a WorkerMetrics, outcome: &'a Outcome) -> Self {
        Self { metrics, outcome }
    }

    /// Count one answered request and note its status in the outcome.
    pub(crate) fn record_request(&self, op: Operation, status: u16) {
        if self.outcome.op.get().is_none() {
            self.outcome.op.set(Some(op));
        }
        self.outcome.status(status);
        self.metrics.record_request(op, status);
    }
}

impl Deref for RequestMetrics<'_> {
    type Target = WorkerMetrics;

    fn deref(&self) -> &WorkerMetrics {
        self.metrics
    }
}
