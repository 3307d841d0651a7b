//! Fleet invalidation: what a write through this node makes the other nodes forget, and the
//! hook through which the control plane carries it to them.
//!
//! The data plane never talks to peers itself (that needs an HTTP client and a runtime it does
//! not have). The control plane installs a [`PeerInvalidator`] in the snapshot; a worker hands
//! it the [`Invalidation`] and awaits the answer with its own (monoio) timer, at most the
//! bound the hook names, before the write's 2xx goes to the client.

use std::time::Duration;

use futures_channel::oneshot;

use crate::cache::{MetaCache, ObjectId};

/// What a write may have changed, named as the cache names objects: by origin name and
/// origin-side bucket, so that every client spelling of a bucket is covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalidation {
    /// The metadata of one object.
    Object(ObjectId),
    /// The metadata of every object of a bucket at an origin (DeleteObjects: its keys are in
    /// the request body, which is streamed, not parsed).
    Bucket {
        /// The origin's name.
        origin: String,
        /// The bucket's name at that origin.
        bucket: String,
    },
}

impl Invalidation {
    /// Drop what `meta` holds for this; returns how many objects' metadata went. Blocks are
    /// keyed by ETag, so dropping the metadata is enough: the next read fetches the new ETag
    /// and never meets the old blocks.
    pub fn apply(&self, meta: &MetaCache) -> u64 {
        match self {
            Invalidation::Object(id) => {
                let had = u64::from(meta.get(id).is_some());
                meta.invalidate(id);
                had
            }
            Invalidation::Bucket { origin, bucket } => {
                meta.purge(|id| id.origin() == origin && id.bucket() == bucket)
            }
        }
    }

    /// The origin name, origin-side bucket and (for one object) key.
    pub fn parts(&self) -> (&str, &str, Option<&str>) {
        match self {
            Invalidation::Object(id) => (id.origin(), id.bucket(), Some(id.key())),
            Invalidation::Bucket { origin, bucket } => (origin, bucket, None),
        }
    }
}

/// An invalidation on its way to the peers.
#[derive(Debug)]
pub struct Pending {
    /// Resolves (or is dropped) once every peer answered, failed or timed out.
    pub done: oneshot::Receiver<()>,
    /// The longest the writer waits for `done`; past it the write is answered anyway.
    pub bound: Duration,
}

/// Carries a write's invalidation to the other nodes of a fleet.
///
/// Contract: `invalidate` returns at once (it is called on a worker thread and must not block
/// it); the work runs elsewhere and completes `done` within about `bound`, whatever the peers
/// do. It returns `None` when there is no peer to wait for. Failures are the implementation's
/// to log and count: the writer learns nothing but "finished".
pub trait PeerInvalidator: Send + Sync + std::fmt::Debug {
    /// Start invalidating `what` on every peer.
    fn invalidate(&self, what: Invalidation) -> Option<Pending>;
}

/// Wait for `pending`, at most its bound. Returns whether every peer was done in time.
pub async fn wait(pending: Pending) -> bool {
    matches!(
        monoio::time::timeout(pending.bound, pending.done).await,
        Ok(Ok(()))
    )
}
