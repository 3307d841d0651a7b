//! Filling a run of consecutive missing blocks with one origin GET, streaming each block's
//! bytes to everyone reading it and inserting complete blocks into the shared store.

use std::rc::Rc;
use std::sync::Arc;

use super::WorkerCtx;
use crate::cache::range::blocks_request_range;
use crate::cache::{BlockFill, BlockKey, FillError, ObjectId};
use crate::error::ErrorKind;
use crate::origin::{OriginRequest, RequestBody};
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
    /// First block index of the run.
    pub first: u64,
    /// The run's blocks in order, each with its registered fill.
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
    let last = run.first + run.blocks.len() as u64 - 1;
    let req = OriginRequest {
        method: "GET".to_owned(),
        path_and_query: run.path.clone(),
        headers: vec![
            (
                "range".to_owned(),
                blocks_request_range(run.first, last, run.block_size, run.size),
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
    let (mut up, resp) = match res {
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
    let start = run.first * run.block_size;
    let same_version = resp
        .header_str("etag")
        .is_none_or(|e| e.trim() == &*run.etag);
    let status_ok = match resp.status() {
        206 => resp
            .header_str("content-range")
            .is_some_and(|v| content_range_matches(v, start, run.size)),
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
    let mut i = 0;
    while i < run.blocks.len() {
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
        while !piece.is_empty() && i < run.blocks.len() {
            let (key, fill) = &run.blocks[i];
            let take = (fill.expected() - fill.filled()).min(piece.len());
            fill.push(piece.split_to(take));
            if fill.filled() == fill.expected() {
                let block = fill.finish();
                // Into the store before leaving the registry: see `Inflight::claim`.
                ctx.cache.store.insert(key.clone(), block);
                ctx.cache.inflight.release(key, fill);
                i += 1;
            }
        }
    }
    up.finish(&ctx.origin);
}

/// True when `bytes a-b/size` starts at `start` and names the planned object size.
fn content_range_matches(value: &str, start: u64, size: u64) -> bool {
    let Some(rest) = value.trim().strip_prefix("bytes ") else {
        return false;
    };
    let Some((span, total)) = rest.split_once('/') else {
        return false;
    };
    let first = span.split_once('-').map(|(a, _)| a);
    first.and_then(|a| a.parse::<u64>().ok()) == Some(start)
        && total.parse::<u64>().ok() == Some(size)
}

#[cfg(test)]
mod tests {
    use super::content_range_matches;

    #[test]
    fn content_range_must_match_plan() {
        assert!(content_range_matches(
            "bytes 1048576-2097151/5000000",
            1_048_576,
            5_000_000
        ));
        assert!(!content_range_matches(
            "bytes 0-2097151/5000000",
            1_048_576,
            5_000_000
        ));
        assert!(!content_range_matches(
            "bytes 1048576-2097151/5000001",
            1_048_576,
            5_000_000
        ));
        assert!(!content_range_matches(
            "1048576-2097151/5000000",
            1_048_576,
            5_000_000
        ));
    }
}
