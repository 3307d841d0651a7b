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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Cache, CacheConfig, ObjectMeta};
    use crate::test_util::block_on;
    use std::sync::Arc;
    use std::time::Instant;

    fn pending(bound: Duration) -> (oneshot::Sender<()>, Pending) {
        let (tx, done) = oneshot::channel();
        (tx, Pending { done, bound })
    }

    #[test]
    fn wait_reports_done_late_and_abandoned() {
        let (tx, p) = pending(Duration::from_secs(5));
        tx.send(()).unwrap();
        assert!(block_on(wait(p)), "answered in time");

        let (_tx, p) = pending(Duration::from_millis(30));
        let start = Instant::now();
        assert!(!block_on(wait(p)), "no answer within the bound");
        assert!(start.elapsed() >= Duration::from_millis(30));

        let (tx, p) = pending(Duration::from_secs(5));
        drop(tx);
        assert!(!block_on(wait(p)), "the fan-out went away");
    }

    #[test]
    fn apply_drops_one_object_or_a_bucket() {
        let cache = Cache::new(CacheConfig::default());
        let meta = Arc::new(ObjectMeta {
            size: 1,
            etag: Arc::from("\"e\""),
            last_modified: None,
            headers: Vec::new(),
            fetched: Instant::now(),
            checksums_known: true,
        });
        let ids = [
            ObjectId::new("o", "b", "k1"),
            ObjectId::new("o", "b", "k2"),
            ObjectId::new("o", "c", "k1"),
            ObjectId::new("p", "b", "k1"),
        ];
        for id in &ids {
            cache
                .meta
                .insert(id.clone(), meta.clone(), cache.meta.epoch());
        }
        let one = Invalidation::Object(ids[0].clone());
        assert_eq!(one.parts(), ("o", "b", Some("k1")));
        assert_eq!(one.apply(&cache.meta), 1);
        assert_eq!(one.apply(&cache.meta), 0);
        let bucket = Invalidation::Bucket {
            origin: "o".into(),
            bucket: "b".into(),
        };
        assert_eq!(bucket.parts(), ("o", "b", None));
        assert_eq!(bucket.apply(&cache.meta), 1);
        assert!(cache.meta.get(&ids[2]).is_some(), "another bucket");
        assert!(cache.meta.get(&ids[3]).is_some(), "another origin");
    }
}
