//! The disk tier's writers: a few threads that take blocks from one bounded queue and write
//! each into the slot the index hands out, then publish it. Responses only ever enqueue (and
//! drop a block when the queue is full); they never wait for the disk.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::admission::Ticket;
use super::format::{encode_header, round_up, HEADER, PAGE};
use super::index::Loc;
use super::{Shared, TierState};
use crate::cache::buf::AlignedBuf;
use crate::cache::BlockKey;

/// Work for the writer thread.
pub(super) enum Job {
    /// Write this block (if it is not on disk already); its admission ticket is settled
    /// after.
    Write(BlockKey, Bytes, Ticket),
    /// Purged blocks wait in [`Shared::invalidations`]: zero their headers now.
    Invalidate,
    /// Make everything written so far durable, then answer.
    Flush(SyncSender<()>),
}

/// How often written data is made durable (`fdatasync`) while writes keep coming: a power
/// loss loses at most this much of the newest writes (the blocks simply miss after restart).
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// How long a full file system keeps the tier from writing before it tries again.
const FULL_RETRY: Duration = Duration::from_secs(30);

/// Writer threads per tier by default: enough writes in flight to keep an SSD's queue busy (one at a
/// time wrote about 10,000 64 KiB blocks a second here, less than one origin stream fills).
pub(super) const WRITERS: usize = 4;

/// Start the writer threads, sharing `rx`; they run until every sender of `rx` is gone and
/// the queue is drained.
pub(super) fn spawn(
    shared: &Arc<Shared>,
    file: &File,
    rx: Receiver<Job>,
    writers: usize,
) -> io::Result<Vec<JoinHandle<()>>> {
    let rx = Arc::new(Mutex::new(rx));
    (0..writers.max(1))
        .map(|i| {
            let writer = Writer::new(shared.clone(), file.try_clone()?);
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("rangecache-disk{i}"))
                .spawn(move || writer.run(&rx))
        })
        .collect()
}

struct Writer {
    shared: Arc<Shared>,
    file: File,
    buf: AlignedBuf,
    dirty: bool,
    last_sync: Instant,
    full_since: Option<Instant>,
}

impl Writer {
    fn new(shared: Arc<Shared>, file: File) -> Self {
        let buf = AlignedBuf::zeroed(shared.slot_size as usize);
        Self {
            shared,
            file,
            buf,
            dirty: false,
            last_sync: Instant::now(),
            full_since: None,
        }
    }

    /// The next job: one writer at a time waits on the queue.
    fn next(rx: &Mutex<Receiver<Job>>) -> Result<Job, RecvTimeoutError> {
        rx.lock()
            .unwrap_or_else(|p| p.into_inner())
            .recv_timeout(SYNC_EVERY)
    }

    fn run(mut self, rx: &Mutex<Receiver<Job>>) {
        loop {
            match Self::next(rx) {
                Ok(Job::Write(key, block, ticket)) => {
                    self.write(&key, &block);
                    self.shared.admission.settled(ticket);
                }
                Ok(Job::Invalidate) => self.invalidate(),
                Ok(Job::Flush(done)) => {
                    // Every write queued before the flush has been taken by some writer:
                    // wait for the others to finish theirs.
                    let shared = &self.shared;
                    while shared.queued.load(Relaxed) > 0 || shared.writing.load(Relaxed) > 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    self.invalidate();
                    self.dirty = true;
                    self.sync();
                    let _ = done.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.dirty && self.last_sync.elapsed() >= SYNC_EVERY {
                self.sync();
            }
            if let Some(since) = self.full_since {
                if since.elapsed() >= FULL_RETRY {
                    self.full_since = None;
                    self.shared.set_state(TierState::Active);
                }
            }
        }
        self.invalidate();
        self.sync();
    }

    fn write(&mut self, key: &BlockKey, block: &Bytes) {
        let shared = self.shared.clone();
        shared.writing.fetch_add(1, Relaxed);
        shared.queued.fetch_sub(1, Relaxed);
        self.write_one(key, block);
        shared.writing.fetch_sub(1, Relaxed);
    }

    fn write_one(&mut self, key: &BlockKey, block: &Bytes) {
        let shared = &*self.shared;
        if shared.state() != TierState::Active {
            shared.counters.write_drops.add(1);
            return;
        }
        if shared.index.contains(key) {
            return;
        }
        let len = block.len();
        let n = HEADER + round_up(len);
        if len > self.buf.capacity() - HEADER {
            shared.counters.write_drops.add(1);
            return;
        }
        let seq = shared.seq.fetch_add(1, Relaxed) + 1;
        let buf = self.buf.as_mut_slice();
        if encode_header(buf, key, seq, block, shared.chunk).is_none() {
            shared.counters.write_drops.add(1);
            return;
        }
        buf[HEADER..HEADER + len].copy_from_slice(block);
        buf[HEADER + len..n].fill(0);
        let (slot, _evicted) = shared.index.reserve();
        match self.file.write_all_at(&buf[..n], shared.offset(slot)) {
            Ok(()) => {
                self.dirty = true;
                shared.index.publish(
                    key.clone(),
                    Loc {
                        slot,
                        seq,
                        len: len as u32,
                    },
                );
                shared.counters.writes.add(1);
                shared.counters.write_bytes.add(len as u64);
            }
            Err(e) => self.failed(&e),
        }
    }

    /// Zero the headers of purged slots that were not reused since: after a restart they are
    /// empty, not blocks that come back.
    fn invalidate(&mut self) {
        let pending = std::mem::take(
            &mut *self
                .shared
                .invalidations
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if pending.is_empty() {
            return;
        }
        let zero = AlignedBuf::zeroed(PAGE);
        for loc in pending {
            if !self.shared.index.begin_zeroing(loc.slot) {
                continue;
            }
            let written = self
                .file
                .write_all_at(zero.as_slice(), self.shared.offset(loc.slot));
            self.shared.index.end_zeroing(loc.slot);
            if let Err(e) = written {
                self.failed(&e);
                return;
            }
            self.dirty = true;
        }
    }

    fn sync(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        if let Err(e) = self.file.sync_data() {
            self.failed(&e);
        }
    }

    /// A write failed: a full file system stops writes for a while (what is on disk is still
    /// served); any other error takes the whole tier out of service.
    fn failed(&mut self, e: &io::Error) {
        let shared = &*self.shared;
        shared.counters.write_errors.add(1);
        if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
            if self.full_since.is_none() {
                tracing::warn!(
                    path = %shared.path.display(),
                    error = %e,
                    "disk cache: file system full; writes stop for {}s, cached blocks still served",
                    FULL_RETRY.as_secs()
                );
            }
            self.full_since = Some(Instant::now());
            shared.set_state(TierState::Full);
        } else {
            tracing::warn!(
                path = %shared.path.display(),
                error = %e,
                "disk cache: write failed; the disk tier is disabled (RAM and origin keep serving)"
            );
            shared.disable();
        }
    }
}
