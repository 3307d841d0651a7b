//! Fillers: the background tasks that fetch claimed blocks from the origin.
//!
//! A filler serves one run of consecutive blocks of one object version with as few origin
//! GETs as it can: it keeps one body open and writes its bytes into the blocks it is handed,
//! in order. It is handed blocks one at a time through a [`Feed`], by the response that claimed
//! them, only as that response's window moves; with nothing handed it stops reading, and the
//! origin connection waits under TCP flow control. So a slow client slows its own fetch and
//! holds at most its window.
//!
//! Transient origin failures are absorbed here: a GET that fails before its head arrives, or
//! is answered 5xx, is sent again after a jittered backoff; a body that breaks off is resumed
//! with `Range` from the next byte and `If-Match`, so the block never mixes two versions (a
//! changed object answers 412 and the fill fails as [`ErrorKind::Changed`]). After
//! [`MAX_ATTEMPTS`] requests for one segment the failure is final.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Instant;

use bytes::{Buf, Bytes};

use super::early::{self, EarlyGet};
use super::fetch::{FetchBody, OriginFetch};
use super::retry::{backoff, MAX_ATTEMPTS};
use super::ReadEnv;
use crate::cache::meta::parse_content_range;
use crate::cache::range::RangeSpec;
use crate::cache::{BlockFill, DiskTier, ObjectId, Permit, SegmentWriter, Source};
use crate::error::{Error, ErrorKind, Side};
use crate::http::ResponseHead;
use crate::WorkerMetrics;

/// The object version a fill is for.
pub(crate) struct Target {
    /// The object (its metadata is invalidated when the origin says it changed).
    pub object: ObjectId,
    /// The ETag every fill request sends as `If-Match`.
    pub etag: Arc<str>,
    /// Object size.
    pub size: u64,
    /// Block size.
    pub block_size: u64,
}

/// A GET body being read, and where in the object its next byte lies.
pub(crate) struct OpenBody<B> {
    body: B,
    /// Object offset of the next byte not yet handed out (the first of `leftover` if any).
    pos: u64,
    /// Object offset one past the body's last byte.
    end: u64,
    /// When its request was sent (the whole-fill time is observed when it is read to its
    /// end).
    sent: Instant,
    /// Bytes read from `body` and not yet handed out.
    leftover: Bytes,
}

impl<B: FetchBody> OpenBody<B> {
    /// A body whose first byte is object offset `first` and whose last is `last`, of a
    /// request sent at `sent`.
    pub(crate) fn new(body: B, first: u64, last: u64, sent: Instant) -> Self {
        Self {
            body,
            pos: first,
            end: last + 1,
            leftover: Bytes::new(),
            sent,
        }
    }

    /// Object offset one past the body's last byte.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Settle the connection: reusable only when read to its end (then the whole fill's time
    /// is observed in `m`).
    fn close(self, m: &WorkerMetrics) {
        if self.pos == self.end && self.leftover.is_empty() {
            m.ops.observe_fill(self.sent.elapsed());
            self.body.finish();
        }
    }
}

/// One step of a filler's run, for the next block in order.
pub(crate) enum Step {
    /// Fill this segment (the block's whole or its tail); the permit is the budget charge
    /// for its bytes, held until it is written.
    Fill(SegmentWriter, Rc<Permit>),
    /// The block is served otherwise (cached, or filled by another request): skip its bytes.
    Skip,
}

#[derive(Default)]
struct FeedState {
    steps: VecDeque<Step>,
    closed: bool,
    waker: Option<Waker>,
}

/// The sending side of a filler's steps. Dropping it closes the feed: the filler finishes the
/// steps it was already handed (other requests may be reading those blocks), then stops.
pub(crate) struct Feed {
    state: Rc<RefCell<FeedState>>,
}

impl Feed {
    /// Hand the filler its next step.
    pub(crate) fn push(&self, step: Step) {
        let waker = {
            let mut st = self.state.borrow_mut();
            st.steps.push_back(step);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        let waker = {
            let mut st = self.state.borrow_mut();
            st.closed = true;
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// The receiving side: the next step, `None` once the feed is closed and drained.
struct FeedRx {
    state: Rc<RefCell<FeedState>>,
}

impl FeedRx {
    async fn next(&self) -> Option<Step> {
        poll_fn(|cx| {
            let mut st = self.state.borrow_mut();
            if let Some(step) = st.steps.pop_front() {
                return Poll::Ready(Some(step));
            }
            if st.closed {
                return Poll::Ready(None);
            }
            st.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// Fetches bytes of one object version from `[.., run_end)` for the segments it is given.
pub(crate) struct Filler<F: OriginFetch> {
    env: Rc<ReadEnv>,
    fetch: Rc<F>,
    target: Rc<Target>,
    /// One past the last object byte this filler may ask for.
    run_end: u64,
    body: Option<OpenBody<F::Body>>,
    /// A GET sent before the ETag was known, used when this filler first needs a body at its
    /// first byte.
    early: Option<EarlyGet<F::Body>>,
    /// The open body broke off while being read into place: the next GET resumes it.
    resuming: bool,
    /// Set once a failure was final: later segments fail with it at once.
    failed: Option<Error>,
}

impl<F: OriginFetch> Filler<F> {
    /// A filler for object bytes before `run_end`, starting from `opened` if a body is
    /// already open (the cold first fetch).
    pub(crate) fn new(
        env: Rc<ReadEnv>,
        fetch: Rc<F>,
        target: Rc<Target>,
        run_end: u64,
        opened: Option<OpenBody<F::Body>>,
    ) -> Self {
        Self {
            env,
            fetch,
            target,
            run_end,
            body: opened,
            early: None,
            resuming: false,
            failed: None,
        }
    }

    /// This filler starts from `early`'s answer if it fits (see [`early`]).
    pub(crate) fn with_early(mut self, early: Option<EarlyGet<F::Body>>) -> Self {
        self.early = early;
        self
    }

    /// Start a task that fills the steps of a run whose first block is `first_block`; returns
    /// the feed to hand it steps through.
    pub(crate) fn spawn_run(self, first_block: u64) -> Feed {
        let state = Rc::new(RefCell::new(FeedState::default()));
        let rx = FeedRx {
            state: state.clone(),
        };
        monoio::spawn(async move {
            let mut filler = self;
            let mut block = first_block;
            while let Some(step) = rx.next().await {
                match step {
                    Step::Fill(writer, _permit) => filler.fill(writer, block).await,
                    Step::Skip => filler.skip(block),
                }
                block += 1;
            }
            filler.close();
        });
        Feed { state }
    }

    /// Start a task that fills the head segment of split block `index` once the block's tail
    /// has its first byte (or failed): the client waits on the tail, so its request goes out
    /// alone, and the head follows without holding anyone up.
    pub(crate) fn spawn_head(
        self,
        writer: SegmentWriter,
        fill: Arc<BlockFill>,
        index: u64,
        permit: Rc<Permit>,
    ) {
        monoio::spawn(async move {
            let mut filler = self;
            let _ = fill.read(writer.range().end).await;
            filler.fill(writer, index).await;
            drop(permit);
            filler.close();
        });
    }

    /// Start a task that fills `writer`'s block (`index`, the whole block) from the disk
    /// tier, promoting it into RAM in the buffer it was read into; when the disk no longer has
    /// the block or what it read fails its checks, from the origin instead, like any fill.
    pub(crate) fn spawn_from_disk(
        self,
        disk: Arc<DiskTier>,
        mut writer: SegmentWriter,
        index: u64,
        permit: Rc<Permit>,
    ) {
        monoio::spawn(async move {
            let len = writer.remaining();
            writer.set_source(Source::Disk);
            let key = writer.key().clone();
            match disk.read_pieces(&key, len, |p| writer.publish(p)).await {
                Some(block) => {
                    writer.complete_as(block);
                }
                None => {
                    // Checked pieces may have gone to readers: the rest goes into a buffer
                    // of its own, from the origin.
                    if writer.remaining() < len {
                        writer.lost();
                    }
                    writer.set_source(Source::Origin);
                    self.fill_alone(writer, index).await
                }
            }
            drop(permit);
        });
    }

    /// Start a task that fills `writer`'s segment of block `index` from the origin, on its
    /// own (not part of a run).
    pub(crate) fn spawn_block(self, writer: SegmentWriter, index: u64, permit: Rc<Permit>) {
        monoio::spawn(async move {
            self.fill_alone(writer, index).await;
            drop(permit);
        });
    }

    async fn fill_alone(mut self, writer: SegmentWriter, index: u64) {
        self.fill(writer, index).await;
        self.close();
    }

    /// Block `index` is served otherwise: rather than read its bytes only to drop them (the
    /// same bytes another fill is fetching), close the body; the next block this filler is
    /// handed opens a new one at its own offset.
    fn skip(&mut self, index: u64) {
        let block_end = (index + 1) * self.target.block_size;
        if self.body.as_ref().is_some_and(|b| b.pos < block_end) {
            self.close();
        }
    }

    fn close(&mut self) {
        if let Some(body) = self.body.take() {
            body.close(self.env.metrics());
        }
    }

    /// Fill `writer`'s segment of block `index` and settle it. The attempts are counted per
    /// segment, progress or not: an origin that keeps cutting every body gives up the block
    /// after [`MAX_ATTEMPTS`] requests instead of trickling it in.
    async fn fill(&mut self, mut writer: SegmentWriter, index: u64) {
        if let Some(e) = &self.failed {
            writer.fail(e.clone());
            return;
        }
        let block_start = index * self.target.block_size;
        let mut attempts = 0;
        while writer.remaining() > 0 {
            let at = block_start + writer.next_offset() as u64;
            match self.read_in_place(&mut writer, at, &mut attempts).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "block fill failed");
                    self.failed = Some(e.clone());
                    writer.fail(e);
                    return;
                }
            }
            match self.piece_at(at, &mut attempts).await {
                Ok(mut piece) => {
                    let take = piece.len().min(writer.remaining());
                    writer.push(&piece[..take]);
                    piece.advance(take);
                    if let Some(body) = &mut self.body {
                        body.pos -= piece.len() as u64;
                        body.leftover = piece;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "block fill failed");
                    self.failed = Some(e.clone());
                    writer.fail(e);
                    return;
                }
            }
        }
        writer.complete();
    }

    /// Read the open body's next bytes straight into `writer`'s part of the block, when the
    /// body is open exactly at `at`, nothing read is left over, and its framing allows it (a
    /// Content-Length body): the socket's bytes then land in the block with no copy.
    /// `Ok(false)` when that is not possible now (the caller goes through
    /// [`Filler::piece_at`]); `Ok(true)` after progress, or after a broken body was closed
    /// and its retry waited out (the next read resumes it).
    async fn read_in_place(
        &mut self,
        writer: &mut SegmentWriter,
        at: u64,
        attempts: &mut u32,
    ) -> Result<bool, Error> {
        let Some(b) = &mut self.body else {
            return Ok(false);
        };
        if b.pos != at || b.pos >= b.end || !b.leftover.is_empty() || !b.body.reads_into() {
            return Ok(false);
        }
        let (res, region) = b.body.read_into(writer.lend()).await;
        let read = *res.as_ref().unwrap_or(&0);
        match region {
            Some(r) => writer.commit(r, read),
            None => writer.lost(),
        }
        match res {
            Ok(0) => Err(body_cut_short()),
            Ok(n) => {
                WorkerMetrics::add(&self.env.metrics().fill_bytes, n as u64);
                b.pos += n as u64;
                Ok(true)
            }
            Err(e) => {
                // The body broke off: resume from the next byte on a new request.
                self.body = None;
                self.pause_before_retry(attempts, e).await?;
                self.resuming = true;
                Ok(true)
            }
        }
    }

    /// The next bytes starting at object offset `at`: from the open body when it is there or
    /// at most a block before it (the bytes between are skipped), else from a new GET.
    async fn piece_at(&mut self, at: u64, attempts: &mut u32) -> Result<Bytes, Error> {
        let bs = self.target.block_size;
        let mut resuming = std::mem::take(&mut self.resuming);
        loop {
            if let Some(b) = &mut self.body {
                if b.pos > at || at - b.pos > bs || at >= b.end {
                    // Behind us, or too far ahead to read through: a new GET is cheaper.
                    self.close();
                    continue;
                }
                let piece = if b.leftover.is_empty() {
                    match b.body.next().await {
                        Ok(Some(p)) => {
                            WorkerMetrics::add(&self.env.metrics().fill_bytes, p.len() as u64);
                            p
                        }
                        Ok(None) if b.pos < b.end => Err(body_cut_short())?,
                        Ok(None) => Bytes::new(),
                        Err(e) => {
                            // The body broke off: resume from `at` on a new request.
                            self.body = None;
                            self.pause_before_retry(attempts, e).await?;
                            resuming = true;
                            continue;
                        }
                    }
                } else {
                    std::mem::take(&mut b.leftover)
                };
                if piece.is_empty() {
                    self.close();
                    continue;
                }
                let mut piece = piece;
                let skip = (at - b.pos).min(piece.len() as u64) as usize;
                b.pos += piece.len() as u64;
                if skip > 0 {
                    let _ = piece.split_to(skip);
                    if piece.is_empty() {
                        continue;
                    }
                }
                return Ok(piece);
            }
            self.open(at, resuming, attempts).await?;
        }
    }

    /// Ask the origin for `[at, run_end)` of the object version, retrying transient failures;
    /// or take the answer of the early GET sent for `at`, when it is one of this version.
    async fn open(&mut self, at: u64, resuming: bool, attempts: &mut u32) -> Result<(), Error> {
        if let Some(e) = self.early.take().filter(|e| e.first() == at) {
            match e.answer().await {
                // Without an ETag the answer's version is unknown: not used.
                (Ok((head, body)), sent) if head.header_str("etag").is_some() => {
                    if self.accept(head, body, at, sent)? {
                        return Ok(());
                    }
                    early::unused(&self.env);
                }
                _ => early::unused(&self.env),
            }
        }
        let m = self.env.metrics();
        WorkerMetrics::add(&m.fill_requests, 1);
        if resuming {
            WorkerMetrics::add(&m.fill_resumes, 1);
        } else if *attempts > 0 {
            WorkerMetrics::add(&m.origin_retries, 1);
        }
        let t = &self.target;
        let end = self.run_end.min(t.size);
        let range = RangeSpec::FromTo {
            first: at,
            last: end - 1,
        };
        let sent = Instant::now();
        let (head, body) = match self.fetch.get(range, Some(&t.etag)).await {
            Ok(x) => x,
            Err(e) => return self.pause_before_retry(attempts, e).await,
        };
        let status = head.status();
        if self.accept(head, body, at, sent)? {
            return Ok(());
        }
        let e = Error::origin_status(status, "fill answered with another status");
        self.pause_before_retry(attempts, e).await
    }

    /// Take `head` and `body`, the answer to a GET of this version from `at` sent at `sent`,
    /// as this filler's open body: `Ok(true)`. `Ok(false)` when the answer does not serve
    /// `at` (another status, another range or size). An answer of another version (`412`, or
    /// another ETag) means the object changed: its metadata is dropped and the fill fails as
    /// [`ErrorKind::Changed`].
    fn accept(
        &mut self,
        head: ResponseHead,
        body: F::Body,
        at: u64,
        sent: Instant,
    ) -> Result<bool, Error> {
        let t = &self.target;
        let same_version = head.header_str("etag").is_none_or(|e| e.trim() == &*t.etag);
        let served = match head.status() {
            206 => head
                .header_str("content-range")
                .and_then(parse_content_range)
                .filter(|&(first, _, size)| first == at && size == t.size)
                .map(|(first, last, _)| (first, last)),
            // A whole-object answer serves a run from the object's start.
            200 if at == 0 => Some((0, t.size - 1)),
            _ => None,
        };
        if head.status() == 412 || (served.is_some() && !same_version) {
            self.env.cache.meta.invalidate(&t.object);
            return Err(Error::new(
                ErrorKind::Changed,
                Side::Origin,
                "object changed during the fill",
            ));
        }
        let Some((first, last)) = served else {
            return Ok(false);
        };
        self.body = Some(OpenBody::new(body, first, last, sent));
        Ok(true)
    }

    /// After a failure: wait out the backoff when another attempt is allowed, else return the
    /// failure as final.
    async fn pause_before_retry(&self, attempts: &mut u32, e: Error) -> Result<(), Error> {
        *attempts += 1;
        if !e.is_transient() || *attempts >= MAX_ATTEMPTS {
            return Err(e);
        }
        tracing::debug!(error = %e, attempt = *attempts, "origin fill failed; trying again");
        monoio::time::sleep(backoff(*attempts)).await;
        Ok(())
    }
}

/// An origin body that ended before the bytes its `Content-Range` promised.
fn body_cut_short() -> Error {
    Error::new(
        ErrorKind::Truncated,
        Side::Origin,
        "origin body ended before its Content-Range",
    )
}
