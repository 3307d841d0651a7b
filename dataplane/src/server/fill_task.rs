//! Filling a run of consecutive missing blocks with one origin GET, streaming each block's
//! bytes to everyone reading it and inserting complete blocks into the shared store.

use std::rc::Rc;
use std::sync::Arc;

use super::WorkerCtx;
use crate::cache::range::blocks_request_range;
use bytes::Buf;

use crate::cache::meta::parse_content_range;
use crate::cache::{BlockFill, BlockKey, FillError, ObjectId};
use crate::error::ErrorKind;
use crate::origin::{OriginExchange, OriginRequest, RequestBody};
use crate::{Origin, WorkerMetrics};

/// One run to fill: blocks `first..=last` of one object version.
pub(crate) struct FillRun {
    /// The origin serving the object.
    pub origin: Arc<Origin>,
    /// Encoded origin path of the object.
    pub path: String,
    /// The object (for invalidation on 412).
    pub object: ObjectId,
    /// The ETag the plan was made with (sent as `If-Match`).
    pub etag: Arc<str>,
    /// Object size.
    pub size: u64,
    /// Block size.
    pub block_size: u64,
    /// The run's blocks in order (consecutive indices), each with its registered fill.
    pub blocks: Vec<(BlockKey, Arc<BlockFill>)>,
}

/// Settles every block the run did not complete (failure, early end, worker shutdown) and
/// removes them from the in-flight registry, so no waiter is left hanging.
struct Settle<'a> {
    ctx: &'a WorkerCtx,
    blocks: &'a [(BlockKey, Arc<BlockFill>)],
    error: FillError,
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        for (key, fill) in self.blocks {
            if !fill.is_settled() {
                fill.fail(self.error.clone());
            }
            self.ctx.cache.inflight.release(key, fill);
        }
    }
}

/// Start filling `run` in the background on this worker. The task runs to completion even if
/// the request that started it goes away: other requests may be reading from it.
pub(crate) fn spawn_fill(ctx: &Rc<WorkerCtx>, run: FillRun) {
    let ctx = ctx.clone();
    monoio::spawn(async move { run_fill(&ctx, run).await });
}

async fn run_fill(ctx: &WorkerCtx, run: FillRun) {
    let mut settle = Settle {
        ctx,
        blocks: &run.blocks,
        error: FillError::Abandoned,
    };
    let first = run.blocks[0].0.index;
    let last = first + run.blocks.len() as u64 - 1;
    let req = OriginRequest {
        method: "GET".to_owned(),
        path_and_query: run.path.clone(),
        headers: vec![
            (
                "range".to_owned(),
                blocks_request_range(first, last, run.block_size, run.size),
            ),
            ("if-match".to_owned(), run.etag.to_string()),
        ],
        body: RequestBody::None,
    };
    let m = ctx.metrics();
    WorkerMetrics::add(&m.fill_requests, 1);
    WorkerMetrics::add(&m.origin_requests, 1);
    let mut retried = false;
    let res = ctx
        .origin
        .send_bodyless(&run.origin, &req, false, &mut retried)
        .await;
    if retried {
        WorkerMetrics::add(&m.origin_retries, 1);
        WorkerMetrics::add(&m.origin_requests, 1);
    }
    let (up, resp) = match res {
        Ok(x) => x,
        Err(e) => {
            WorkerMetrics::add(&m.origin_errors, 1);
            tracing::debug!(error = %e, "fill request failed");
            settle.error = if e.kind() == ErrorKind::Timeout {
                FillError::Timeout
            } else {
                FillError::Unreachable
            };
            return;
        }
    };
    let start = first * run.block_size;
    let same_version = resp
        .header_str("etag")
        .is_none_or(|e| e.trim() == &*run.etag);
    let status_ok = match resp.status() {
        206 => resp
            .header_str("content-range")
            .and_then(parse_content_range)
            .is_some_and(|(f, _, size)| f == start && size == run.size),
        // A whole-object answer is fine when the run starts at the object's beginning.
        200 => start == 0,
        _ => false,
    };
    if resp.status() == 412 || (status_ok && !same_version) {
        ctx.cache.meta.invalidate(&run.object);
        settle.error = FillError::Changed;
        return;
    }
    if !status_ok {
        settle.error = FillError::Status(resp.status());
        return;
    }
    settle.error = FillError::Truncated;
    pump(ctx, up, start, run.block_size, &run.blocks).await;
}

/// Stream a ranged response body that starts at object offset `start` into `blocks` (in
/// ascending index order, not necessarily consecutive): bytes of blocks not in the list are
/// skipped. Each completed block goes into the store, then leaves the in-flight registry.
/// Blocks left incomplete are settled by the caller's [`Settle`] guard.
async fn pump(
    ctx: &WorkerCtx,
    mut up: OriginExchange,
    start: u64,
    block_size: u64,
    blocks: &[(BlockKey, Arc<BlockFill>)],
) {
    let m = ctx.metrics();
    let mut pos = start;
    let mut i = 0;
    while i < blocks.len() {
        let mut piece = match up.next_body().await {
            Ok(Some(piece)) => piece,
            Ok(None) => break,
            Err(e) => {
                WorkerMetrics::add(&m.origin_errors, 1);
                tracing::debug!(error = %e, "fill body failed");
                break;
            }
        };
        WorkerMetrics::add(&m.fill_bytes, piece.len() as u64);
        while !piece.is_empty() && i < blocks.len() {
            let (key, fill) = &blocks[i];
            let next = key.index * block_size + fill.filled() as u64;
            if pos < next {
                // Bytes of a block this fill does not own (cached or filled by another).
                let skip = ((next - pos) as usize).min(piece.len());
                piece.advance(skip);
                pos += skip as u64;
                continue;
            }
            let take = (fill.expected() - fill.filled()).min(piece.len());
            fill.push(piece.split_to(take));
            pos += take as u64;
            if fill.filled() == fill.expected() {
                let block = fill.finish();
                // Into the store before leaving the registry: see `Registry::claim`.
                ctx.cache.store.insert(key.clone(), block);
                ctx.cache.inflight.release(key, fill);
                i += 1;
            }
        }
    }
    m.ops.observe_fill(up.since_sent());
    up.finish(&ctx.origin);
}

/// Fill `blocks` from a 206 response already received (the answer that also told the object's
/// metadata), in the background on this worker.
pub(crate) fn spawn_pump(
    ctx: &Rc<WorkerCtx>,
    up: OriginExchange,
    start: u64,
    block_size: u64,
    blocks: Vec<(BlockKey, Arc<BlockFill>)>,
) {
    let ctx = ctx.clone();
    monoio::spawn(async move {
        let _settle = Settle {
            ctx: &ctx,
            blocks: &blocks,
            error: FillError::Truncated,
        };
        pump(&ctx, up, start, block_size, &blocks).await;
    });
}
