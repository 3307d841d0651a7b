//! In-flight block fills: the first miss of a block becomes its filler; every later request
//! for it, on any worker, reads the same bytes as they arrive from the origin.
//!
//! A [`BlockFill`] is a growing list of `Bytes` pieces plus an outcome. The filler appends and
//! wakes; readers poll from their own offset. Locks are `std` mutexes held only to append or to
//! clone a piece: never across an await or a syscall.

use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use bytes::{Bytes, BytesMut};

use super::registry::{Registry, Role};
use super::store::{BlockKey, BlockStore};

/// Why a fill did not complete. Cheap to clone: every waiter gets the same failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FillError {
    /// The origin answered 412 to `If-Match`: the object changed since the plan was made.
    Changed,
    /// The origin answered this status instead of the requested bytes.
    Status(u16),
    /// The origin could not be reached or answered too slowly (no bytes yet).
    Unreachable,
    /// The origin timed out.
    Timeout,
    /// The origin's body ended or failed before the block was complete.
    Truncated,
    /// The filler went away without finishing (worker shut down).
    Abandoned,
}

impl std::fmt::Display for FillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FillError::Changed => f.write_str("object changed during the fill (412)"),
            FillError::Status(s) => write!(f, "origin answered {s}"),
            FillError::Unreachable => f.write_str("origin unreachable"),
            FillError::Timeout => f.write_str("origin timed out"),
            FillError::Truncated => f.write_str("origin body ended early"),
            FillError::Abandoned => f.write_str("fill abandoned"),
        }
    }
}

impl std::error::Error for FillError {}

#[derive(Default)]
struct FillState {
    pieces: Vec<Bytes>,
    len: usize,
    outcome: Option<Result<Bytes, FillError>>,
    wakers: Vec<Waker>,
}

/// One block being fetched: its bytes so far and, at the end, the whole block or the failure.
pub struct BlockFill {
    expected: usize,
    state: Mutex<FillState>,
}

impl BlockFill {
    /// A fill for a block of `expected` bytes.
    pub fn new(expected: usize) -> Self {
        Self {
            expected,
            state: Mutex::new(FillState::default()),
        }
    }

    /// The block's full length.
    pub fn expected(&self) -> usize {
        self.expected
    }

    fn lock(&self) -> MutexGuard<'_, FillState> {
        // A panic while holding this lock leaves consistent data (appends are atomic
        // w.r.t. the fields readers use), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append bytes from the origin (the filler only; never beyond `expected`).
    pub fn push(&self, piece: Bytes) {
        if piece.is_empty() {
            return;
        }
        let wakers = {
            let mut st = self.lock();
            debug_assert!(st.len + piece.len() <= self.expected);
            st.len += piece.len();
            st.pieces.push(piece);
            std::mem::take(&mut st.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Bytes appended so far.
    pub fn filled(&self) -> usize {
        self.lock().len
    }

    /// Mark the block complete; returns the whole block (one contiguous `Bytes`) for the store.
    pub fn finish(&self) -> Bytes {
        let (block, wakers) = {
            let mut st = self.lock();
            // Always one fresh allocation of exactly the block: pieces are slices of larger
            // read buffers, and the store must hold (and count) only the block's own bytes.
            let mut buf = BytesMut::with_capacity(st.len);
            st.pieces.iter().for_each(|p| buf.extend_from_slice(p));
            let block = buf.freeze();
            st.pieces = vec![block.clone()];
            st.outcome = Some(Ok(block.clone()));
            (block, std::mem::take(&mut st.wakers))
        };
        wakers.into_iter().for_each(Waker::wake);
        block
    }

    /// Mark the fill failed; readers get `err` (once they have read what was there).
    pub fn fail(&self, err: FillError) {
        let wakers = {
            let mut st = self.lock();
            if st.outcome.is_some() {
                return;
            }
            st.outcome = Some(Err(err));
            std::mem::take(&mut st.wakers)
        };
        wakers.into_iter().for_each(Waker::wake);
    }

    /// True once finished or failed.
    pub fn is_settled(&self) -> bool {
        self.lock().outcome.is_some()
    }

    /// The next bytes at `offset` or later (up to the end of one piece): `Ok(None)` once
    /// `offset` reached the block's end, `Err` if the fill failed before reaching `offset`.
    /// Waits while the filler has not yet delivered bytes past `offset`.
    pub async fn read(&self, offset: usize) -> Result<Option<Bytes>, FillError> {
        poll_fn(|cx| {
            let mut st = self.lock();
            if offset >= self.expected {
                return Poll::Ready(Ok(None));
            }
            if offset < st.len {
                let mut start = 0;
                for piece in &st.pieces {
                    if offset < start + piece.len() {
                        return Poll::Ready(Ok(Some(piece.slice(offset - start..))));
                    }
                    start += piece.len();
                }
            }
            match &st.outcome {
                Some(Err(e)) => Poll::Ready(Err(e.clone())),
                // Finished blocks hold all `expected` bytes: covered above.
                Some(Ok(_)) => Poll::Ready(Err(FillError::Truncated)),
                None => {
                    if !st.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        st.wakers.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }
}

/// How a block will be served to one request.
pub enum Claim {
    /// It is in the store.
    Hit(Bytes),
    /// Another request is filling it: read from that fill.
    Wait(Arc<BlockFill>),
    /// This request must fill it (and everyone who joins reads from it).
    Fill(Arc<BlockFill>),
}

/// The block fills in flight, shared by all workers.
#[derive(Default)]
pub struct Inflight {
    fills: Registry<BlockKey, BlockFill>,
}

impl Inflight {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decide how `key` is served: from the store, by joining a fill in flight, or by a new
    /// fill this caller must run. The caller has already missed in the store (and that miss
    /// was counted), so the recheck peeks without counting. A filler inserts into the store
    /// before it leaves the registry (see [`Registry::claim`]), so a block is never fetched
    /// twice by requests that overlap in time.
    pub fn claim(&self, key: &BlockKey, expected: usize, store: &BlockStore) -> Claim {
        match self
            .fills
            .claim(key, || store.peek(key), || BlockFill::new(expected))
        {
            Role::Ready(block) => Claim::Hit(block),
            Role::Follow(fill) => Claim::Wait(fill),
            Role::Lead(fill) => Claim::Fill(fill),
        }
    }

    /// Remove `key`'s fill (only if it is still `fill`): called by the filler once the block is
    /// in the store, or after it failed.
    pub fn release(&self, key: &BlockKey, fill: &Arc<BlockFill>) {
        self.fills.release(key, fill);
    }

    /// Fills in flight now.
    pub fn len(&self) -> usize {
        self.fills.len()
    }

    /// True when no fill is in flight.
    pub fn is_empty(&self) -> bool {
        self.fills.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .unwrap();
        rt.block_on(f)
    }

    #[test]
    fn readers_see_bytes_as_they_arrive_and_the_whole_block() {
        let fill = Arc::new(BlockFill::new(10));
        fill.push(Bytes::from_static(b"abcd"));
        block_on(async {
            assert_eq!(
                fill.read(0).await.unwrap().unwrap(),
                Bytes::from_static(b"abcd")
            );
            assert_eq!(
                fill.read(2).await.unwrap().unwrap(),
                Bytes::from_static(b"cd")
            );
        });
        let f2 = fill.clone();
        let t = std::thread::spawn(move || {
            block_on(async move {
                let mut got = Vec::new();
                let mut off = 0;
                while let Some(b) = f2.read(off).await.unwrap() {
                    off += b.len();
                    got.extend_from_slice(&b);
                }
                got
            })
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        fill.push(Bytes::from_static(b"efghij"));
        let block = fill.finish();
        assert_eq!(&block[..], b"abcdefghij");
        assert_eq!(t.join().unwrap(), b"abcdefghij");
    }

    #[test]
    fn failure_reaches_waiters_after_the_bytes_they_could_have() {
        let fill = Arc::new(BlockFill::new(8));
        fill.push(Bytes::from_static(b"abc"));
        fill.fail(FillError::Changed);
        block_on(async {
            assert_eq!(
                fill.read(0).await.unwrap().unwrap(),
                Bytes::from_static(b"abc")
            );
            assert_eq!(fill.read(3).await, Err(FillError::Changed));
        });
    }
}
