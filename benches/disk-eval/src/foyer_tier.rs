//! foyer's disk store (`HybridCache` with a block engine on a file-system device, O_DIRECT,
//! io_uring io engine) as a [`Tier`].
//!
//! The bridge: foyer needs Tokio (its flushers, reclaimers and psync reads are Tokio tasks), so
//! it gets a Tokio runtime of its own on the side (`tokio_threads` worker threads), built and
//! filled from the main thread. The monoio reader then awaits foyer's load future in one of two
//! ways, both measured:
//! - [`Bridge::Await`]: `Store::load` polled directly on the monoio thread. With the io_uring
//!   io engine the read is submitted to foyer's own ring thread and completes through a
//!   channel whose waker is monoio's (cross-thread wake), so no Tokio context is needed;
//! - [`Bridge::Spawn`]: the load spawned as a Tokio task and its `JoinHandle` awaited from
//!   monoio: what any foyer call that needs a Tokio context costs (one more thread hop).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use foyer::{
    BlockEngineConfig, DeviceBuilder, FsDeviceBuilder, HybridCache, HybridCacheBuilder,
    HybridCachePolicy, IoEngineConfig, Load, UringIoEngineConfig,
};

use crate::driver::{ReadFuture, Tier};

/// How the monoio thread waits for foyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bridge {
    /// Poll foyer's future on the monoio thread.
    Await,
    /// Run it as a Tokio task; await the join handle.
    Spawn,
}

/// foyer's store and the Tokio runtime that runs it.
pub struct FoyerTier {
    cache: HybridCache<u64, Bytes>,
    rt: tokio::runtime::Runtime,
}

impl FoyerTier {
    /// A fresh store of `capacity` bytes in `dir` (O_DIRECT, io_uring engine, 64 MiB foyer
    /// blocks, a 1 MiB memory tier that reads never use).
    pub fn open(dir: &Path, capacity: u64, tokio_threads: usize) -> Result<FoyerTier> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(tokio_threads)
            .enable_all()
            .build()?;
        let device = FsDeviceBuilder::new(dir)
            .with_capacity(usize::try_from(capacity)?)
            .with_direct(true)
            .build()
            .context("foyer device")?;
        let cache =
            rt.block_on(
                HybridCacheBuilder::new()
                    .with_policy(HybridCachePolicy::WriteOnInsertion)
                    .memory(1 << 20)
                    .with_weighter(|_k: &u64, v: &Bytes| v.len())
                    .storage()
                    .with_io_engine_config(
                        UringIoEngineConfig::new().boxed() as Box<dyn IoEngineConfig>
                    )
                    .with_engine_config(
                        BlockEngineConfig::new(device)
                            .with_block_size(64 << 20)
                            .with_buffer_pool_size(256 << 20)
                            .with_submit_queue_size_threshold(512 << 20),
                    )
                    .build(),
            )?;
        Ok(FoyerTier { cache, rt })
    }

    /// Write `count` blocks from `block(i)` to disk only and wait until foyer's flushers are
    /// idle; in batches of `batch` bytes so foyer's submit queue (512 MiB) never drops one.
    pub fn fill(&self, count: u64, block: impl Fn(u64) -> Bytes, batch: u64) {
        let mut queued = 0u64;
        for i in 0..count {
            let b = block(i);
            queued += b.len() as u64;
            self.cache.storage_writer(i).force().insert(b);
            if queued >= batch {
                self.rt.block_on(self.cache.storage().wait());
                queued = 0;
            }
        }
        self.rt.block_on(self.cache.storage().wait());
    }

    /// The same store read through `bridge`.
    pub fn with_bridge(self: &Arc<Self>, bridge: Bridge) -> Arc<dyn Tier> {
        Arc::new(Bridged {
            inner: self.clone(),
            bridge,
        })
    }

    /// Close the store (waits for its tasks).
    pub fn close(&self) -> Result<()> {
        self.rt.block_on(self.cache.close())?;
        Ok(())
    }
}

fn value(load: foyer::Result<Load<u64, Bytes, foyer::HybridCacheProperties>>) -> Option<Bytes> {
    match load {
        Ok(Load::Entry { value, .. }) => Some(value),
        Ok(Load::Piece { piece, .. }) => Some(piece.value().clone()),
        _ => None,
    }
}

struct Bridged {
    inner: Arc<FoyerTier>,
    bridge: Bridge,
}

impl Tier for Bridged {
    fn read(&self, index: u64) -> ReadFuture<'_> {
        let store = self.inner.cache.storage();
        match self.bridge {
            Bridge::Await => Box::pin(async move { value(store.load(&index).await) }),
            Bridge::Spawn => {
                let store = store.clone();
                let task = self
                    .inner
                    .rt
                    .spawn(async move { value(store.load(&index).await) });
                Box::pin(async move { task.await.ok().flatten() })
            }
        }
    }
}
