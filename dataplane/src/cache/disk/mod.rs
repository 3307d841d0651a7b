//! The disk tier: a persistent block cache in one file on local storage, under the RAM
//! store, that survives restarts.
//!
//! Blocks go to disk on their *second access* ([`admission`]): a block fetched from the
//! origin is remembered; read again (a RAM hit or a second fill) it is queued for the disk
//! ([`DiskTier::offer_fill`], [`DiskTier::offer_hit`]). A block read back whole from the disk
//! is promoted into RAM like a fill but not written again; a response that wants only part of
//! a block reads just the chunks covering it ([`DiskTier::read_range`]) and promotes the block
//! only when a part of it is read again while RAM would still hold it
//! ([`DiskTier::promote_part`]). The write queue is bounded (a full queue drops the block,
//! counted) and drained by writer threads, so a response never waits for a disk write. Reads
//! are issued from the worker that needs the block: through the io_uring ring on the io_uring
//! driver (`O_DIRECT`, page-aligned buffers), with `pread` on the runtime's blocking pool on
//! the epoll driver ([`read_on_blocking_pool`]).
//!
//! Every read is checked against the index: the slot's header must name the same key,
//! sequence number and length, and every chunk read must match its checksum in the header.
//! Anything else (a torn write, a flipped bit, an I/O error) is a miss, counted and logged at
//! most once per [`LOG_INTERVAL`], and the block is fetched from the origin as if the disk
//! never had it.
//!
//! After a restart (clean or not) the index is rebuilt from the slot headers ([`recover`]).
//! A full file system stops writes for a while and keeps serving what is on disk; any other
//! write error disables the tier: RAM and the origin keep serving, no client sees the fault.

mod admission;
mod direct;
mod format;
pub mod index;
mod read;
mod recover;
mod writer;

use std::cell::RefCell;
use std::fs::File;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use self::admission::{Admission, Reuse};
pub use self::direct::IoMode;
use self::format::{slot_size, SlotError};
use self::index::{Index, Loc};
pub use self::read::{read_on_blocking_pool, PIECE};
pub use self::recover::FILE_NAME;
use self::writer::Job;
use super::buf::BufPool;
use super::{BlockKey, ObjectId};

/// At most one warning per this interval for read-side faults (checksum failures, I/O
/// errors); the counters have every one.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Bytes of blocks the write queue may hold by default.
const DEFAULT_QUEUE_BYTES: u64 = 64 << 20;

/// [`DiskConfig::ram_blocks`] unless told.
const DEFAULT_RAM_BLOCKS: usize = 1024;

/// How to open a disk tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// Directory holding the tier's file ([`FILE_NAME`]); must exist and be writable.
    pub path: PathBuf,
    /// Bytes the file may take (rounded down to whole slots; at least one slot).
    pub size: u64,
    /// Block size (`cache.block_size`); a file laid out for another size is started afresh.
    pub block_size: u64,
    /// Most blocks waiting to be written; more are dropped (counted).
    pub write_queue: usize,
    /// Writer threads (at least 1): writes in flight at once.
    pub writers: usize,
    /// Blocks the RAM tier holds: a disk hit for part of a block promotes the block into RAM
    /// when a part of it was read within about this many other blocks (see
    /// [`DiskTier::promote_part`]).
    pub ram_blocks: usize,
}

impl DiskConfig {
    /// A tier in `path` of `size` bytes for blocks of `block_size`, with a write queue of
    /// 64 MiB of blocks (at least 4), 4 writer threads, and a RAM tier of 1,024 blocks.
    pub fn new(path: impl Into<PathBuf>, size: u64, block_size: u64) -> Self {
        Self {
            path: path.into(),
            size,
            block_size,
            write_queue: (DEFAULT_QUEUE_BYTES / block_size.max(1)).max(4) as usize,
            writers: writer::WRITERS,
            ram_blocks: DEFAULT_RAM_BLOCKS,
        }
    }
}

/// Whether the tier reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TierState {
    /// Reads and writes.
    Active,
    /// The file system is full: reads only, writes retried after a pause.
    Full,
    /// A write failed: out of service until restart.
    Disabled,
}

impl TierState {
    /// The state's name in metrics and stats (`active`, `full`, `disabled`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Full => "full",
            Self::Disabled => "disabled",
        }
    }
}

/// One counter of the tier.
#[derive(Default)]
struct Counter(AtomicU64);

impl Counter {
    fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

#[derive(Default)]
struct Counters {
    hits: Counter,
    part_hits: Counter,
    read_bytes: Counter,
    misses: Counter,
    writes: Counter,
    write_bytes: Counter,
    write_drops: Counter,
    write_errors: Counter,
    checksum_failures: Counter,
    read_errors: Counter,
}

/// The tier's counters, read at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct DiskStats {
    /// Bytes of block data the file may hold (whole slots).
    pub capacity: u64,
    /// Bytes of block data held.
    pub bytes: u64,
    /// Blocks held.
    pub blocks: u64,
    /// Blocks, or parts of blocks, read from disk and verified.
    pub hits: u64,
    /// Of [`DiskStats::hits`], reads of part of a block (only the chunks a response wanted).
    pub part_hits: u64,
    /// Bytes read from the file for hits (headers and chunks): against the bytes served,
    /// the read amplification.
    pub read_bytes: u64,
    /// RAM misses the disk did not hold either.
    pub misses: u64,
    /// Blocks written.
    pub writes: u64,
    /// Bytes of blocks written.
    pub write_bytes: u64,
    /// Blocks not written: queue full, tier not writing, key too long for a header.
    pub write_drops: u64,
    /// Writes that failed (each also changes [`DiskStats::state`]).
    pub write_errors: u64,
    /// Blocks read whose header or data did not check out (torn or damaged): served from
    /// the origin instead.
    pub checksum_failures: u64,
    /// Reads that failed with an I/O error: served from the origin instead.
    pub read_errors: u64,
    /// Blocks found on disk at startup.
    pub recovered_blocks: u64,
    /// Slot headers found damaged at startup.
    pub recovered_torn: u64,
    /// Seconds startup took to open the file and rebuild the index.
    pub recovery_seconds: f64,
    /// Whether the tier reads and writes.
    pub state: TierState,
    /// Direct or buffered I/O.
    pub mode: IoMode,
}

/// Idle read buffers kept per tier (each a slot's size).
const POOLED_BUFFERS: usize = 64;

thread_local! {
    /// Each worker's own handle on each tier's file, opened on its first read (a handle of
    /// its own runtime; without the tier's lock, so a closed tier can be opened again).
    static FILES: RefCell<Vec<(Weak<Shared>, Rc<monoio::fs::File>)>> = const { RefCell::new(Vec::new()) };
}

/// What the workers and the writer thread share.
struct Shared {
    path: PathBuf,
    index: Index,
    /// The file, held open for its lock; workers on the io_uring driver read through handles
    /// of their own, reads on the blocking pool (epoll driver) through this one.
    file: File,
    file_path: PathBuf,
    mode: IoMode,
    /// Read buffers.
    pool: Arc<BufPool>,
    slot_size: u64,
    /// Bytes per checksummed chunk ([`format::chunk_size`] of the block size).
    chunk: usize,
    state: AtomicU8,
    counters: Counters,
    /// Blocks queued for writing, and being written now.
    queued: AtomicUsize,
    writing: AtomicUsize,
    /// The last write sequence number handed out.
    seq: AtomicU64,
    /// Slots purged whose headers the writer should zero.
    invalidations: Mutex<Vec<Loc>>,
    /// Which blocks are written (second access).
    admission: Admission,
    /// Which partial hits promote their block.
    reuse: Reuse,
    /// When a read-side warning was last logged (ms since `born`), for rate limiting.
    last_warn_ms: AtomicU64,
    born: Instant,
}

impl Shared {
    /// This thread's handle on the file (opened on first use; handles of tiers gone are
    /// closed on the way).
    fn thread_file(self: &Arc<Self>) -> std::io::Result<Rc<monoio::fs::File>> {
        FILES.with(|files| {
            let mut files = files.borrow_mut();
            files.retain(|(tier, _)| tier.strong_count() > 0);
            let ours = Arc::as_ptr(self);
            if let Some((_, f)) = files
                .iter()
                .find(|(tier, _)| std::ptr::eq(tier.as_ptr(), ours))
            {
                return Ok(f.clone());
            }
            let std_file = direct::open_mode(&self.file_path, self.mode)?;
            let f = Rc::new(monoio::fs::File::from_std(std_file)?);
            files.push((Arc::downgrade(self), f.clone()));
            Ok(f)
        })
    }

    fn offset(&self, slot: u32) -> u64 {
        format::PAGE as u64 + u64::from(slot) * self.slot_size
    }

    fn state(&self) -> TierState {
        match self.state.load(Relaxed) {
            0 => TierState::Active,
            1 => TierState::Full,
            _ => TierState::Disabled,
        }
    }

    fn set_state(&self, to: TierState) {
        let code = match to {
            TierState::Active => 0,
            TierState::Full => 1,
            TierState::Disabled => 2,
        };
        // Disabled is final.
        let _ = self
            .state
            .fetch_update(Relaxed, Relaxed, |now| (now != 2).then_some(code));
    }

    fn disable(&self) {
        self.set_state(TierState::Disabled);
        self.index.clear();
    }

    /// Log a read-side fault, at most once per [`LOG_INTERVAL`].
    fn warn_limited(&self, what: &str, key: &BlockKey, detail: &dyn std::fmt::Display) {
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.last_warn_ms.load(Relaxed);
        if last != 0 && now.saturating_sub(last) < LOG_INTERVAL.as_millis() as u64 {
            return;
        }
        if self
            .last_warn_ms
            .compare_exchange(last, now.max(1), Relaxed, Relaxed)
            .is_ok()
        {
            tracing::warn!(
                path = %self.path.display(),
                object = ?key.object,
                block = key.index,
                checksum_failures = self.counters.checksum_failures.get(),
                read_errors = self.counters.read_errors.get(),
                "disk cache: {what} ({detail}); served from the origin instead"
            );
        }
    }
}

/// A disk tier. `Send + Sync`: open one at startup and share it (behind an `Arc`) with every
/// worker. Dropping it drains the write queue and stops the writer.
pub struct DiskTier {
    shared: Arc<Shared>,
    tx: Option<SyncSender<Job>>,
    writers: Vec<JoinHandle<()>>,
    capacity: u64,
    recovered_blocks: u64,
    recovered_torn: u64,
    recovery: Duration,
    mode: IoMode,
}

impl DiskTier {
    /// Open the tier in `config.path` (which must exist), rebuilding the index from what the
    /// file holds. Blocking: call it at startup, before the workers serve. Errors name the
    /// path and what failed.
    pub fn open(config: &DiskConfig) -> std::io::Result<Arc<DiskTier>> {
        let slot_size = slot_size(config.block_size);
        let slots = (config.size.saturating_sub(format::PAGE as u64) / slot_size)
            .clamp(1, u64::from(u32::MAX)) as usize;
        let index = Index::new(slots);
        let opened = recover::open(&config.path, config.block_size, slot_size, &index)?;
        if let Some(why) = opened.reset {
            tracing::warn!(path = %config.path.display(), "disk cache: existing file started afresh: {why}");
        }
        if !opened.preallocated {
            tracing::warn!(
                path = %config.path.display(),
                size = config.size,
                "disk cache: could not reserve cache.disk.size on the file system (too little \
                 free space?); the file grows as blocks are written, and a full file system \
                 pauses writes"
            );
        }
        if opened.mode == IoMode::Buffered {
            tracing::warn!(path = %config.path.display(), "disk cache: the file system refuses O_DIRECT; using buffered I/O");
        }
        let recovered_blocks = index.len() as u64;
        tracing::info!(
            path = %config.path.display(),
            blocks = recovered_blocks,
            slots_scanned = opened.scanned,
            torn_headers = opened.torn_headers,
            seconds = opened.took.as_secs_f64(),
            "disk cache: index rebuilt"
        );
        let shared = Arc::new(Shared {
            path: config.path.clone(),
            index,
            file: opened.file,
            file_path: config.path.join(FILE_NAME),
            mode: opened.mode,
            pool: BufPool::new(slot_size as usize, POOLED_BUFFERS),
            slot_size,
            chunk: format::chunk_size(config.block_size),
            state: AtomicU8::new(0),
            counters: Counters::default(),
            queued: AtomicUsize::new(0),
            writing: AtomicUsize::new(0),
            seq: AtomicU64::new(opened.newest_seq),
            invalidations: Mutex::new(Vec::new()),
            admission: Admission::new(slots),
            reuse: Reuse::new(config.ram_blocks),
            last_warn_ms: AtomicU64::new(0),
            born: Instant::now(),
        });
        let (tx, rx) = sync_channel(config.write_queue.max(1));
        let writers = writer::spawn(&shared, &shared.file, rx, config.writers)?;
        Ok(Arc::new(DiskTier {
            shared,
            tx: Some(tx),
            writers,
            capacity: slots as u64 * config.block_size,
            recovered_blocks,
            recovered_torn: opened.torn_headers,
            recovery: opened.took,
            mode: opened.mode,
        }))
    }

    /// Queue `block` (the whole of block `key`) for writing, whatever the admission policy
    /// says. Never waits: false when it was dropped (queue full, tier not writing).
    pub fn admit(&self, key: &BlockKey, block: &Bytes) -> bool {
        let ticket = self.shared.admission.ticket(key);
        self.enqueue(key, block, ticket)
    }

    /// Block `key` was just fetched from the origin: queued for writing if this is its second
    /// access (see [`admission`]). Never waits.
    pub fn offer_fill(&self, key: &BlockKey, block: &Bytes) {
        let ticket = self.shared.admission.ticket(key);
        if self.shared.admission.on_fill(ticket) {
            self.enqueue(key, block, ticket);
        }
    }

    /// Block `key` was just served from RAM: queued for writing unless the disk has it or it
    /// is queued already. Never waits; costs one index lookup.
    pub fn offer_hit(&self, key: &BlockKey, block: &Bytes) {
        let shared = &self.shared;
        if shared.state() != TierState::Active || shared.index.contains(key) {
            return;
        }
        let ticket = shared.admission.ticket(key);
        if shared.admission.on_hit(ticket) {
            self.enqueue(key, block, ticket);
        }
    }

    fn enqueue(&self, key: &BlockKey, block: &Bytes, ticket: admission::Ticket) -> bool {
        let shared = &self.shared;
        let sent = shared.state() == TierState::Active
            && self.tx.as_ref().is_some_and(|tx| {
                shared.queued.fetch_add(1, Relaxed);
                let sent = tx
                    .try_send(Job::Write(key.clone(), block.clone(), ticket))
                    .is_ok();
                if !sent {
                    shared.queued.fetch_sub(1, Relaxed);
                }
                sent
            });
        if !sent && shared.admission.dropped(ticket) {
            shared.counters.write_drops.add(1);
        }
        sent
    }

    /// True when the tier holds `key` (counts nothing).
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.shared.index.contains(key)
    }

    /// True when the tier holds `key`; when it does not, counts a miss. For the read path,
    /// once per block the RAM store did not have.
    pub fn probe(&self, key: &BlockKey) -> bool {
        let held = self.contains(key);
        if !held {
            self.shared.counters.misses.add(1);
        }
        held
    }

    /// A response wants part of block `key`, which the tier holds and RAM does not: true when
    /// the block should be read whole and promoted into RAM (a part of it was read within
    /// about [`DiskConfig::ram_blocks`] other blocks, so RAM would have kept it); false when
    /// only the chunks covering the part should be read ([`DiskTier::read_range`]), and the
    /// read is remembered.
    pub fn promote_part(&self, key: &BlockKey) -> bool {
        self.shared.reuse.again(key)
    }

    /// True when some block of `object`, of any version, is on disk: a read of it should
    /// learn the object's current metadata first (a `HEAD`), then read what the disk holds.
    pub fn holds_object(&self, object: &ObjectId) -> bool {
        self.shared.index.holds_object(object)
    }

    /// Block `key` from disk, whole and verified; `None` when the tier does not hold it or
    /// what it read did not check out (counted). See [`DiskTier::read_range`].
    pub async fn read(&self, key: &BlockKey) -> Option<Bytes> {
        let len = self.shared.index.get(key)?.len as usize;
        let (_, block) = self.read_range(key, 0..len, len).await?;
        Some(block)
    }

    /// Drop every block of objects matching `pred`; returns how many. Their headers are
    /// zeroed on disk by the writer shortly after, so they do not come back after a restart.
    pub fn purge(&self, pred: impl Fn(&ObjectId) -> bool) -> u64 {
        let gone = self.shared.index.remove_matching(pred);
        let n = gone.len() as u64;
        if n > 0 {
            self.shared
                .invalidations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(gone);
            if let Some(tx) = &self.tx {
                // If the queue is full the writer picks them up with its next job or tick.
                let _ = tx.try_send(Job::Invalidate);
            }
        }
        n
    }

    /// Wait until every block queued so far is written and durable, at most `wait`; true if
    /// it was in time. For shutdown, tests and benchmarks.
    pub fn flush(&self, wait: Duration) -> bool {
        let Some(tx) = &self.tx else { return true };
        let (done_tx, done_rx) = sync_channel(1);
        let deadline = Instant::now() + wait;
        let mut job = Job::Flush(done_tx);
        loop {
            match tx.try_send(job) {
                Ok(()) => break,
                Err(TrySendError::Full(j)) if Instant::now() < deadline => {
                    job = j;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return false,
            }
        }
        done_rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .is_ok()
    }

    /// Blocks waiting to be written now.
    pub fn queued(&self) -> usize {
        self.shared.queued.load(Relaxed)
    }

    /// The counters now.
    pub fn stats(&self) -> DiskStats {
        let s = &*self.shared;
        let c = &s.counters;
        DiskStats {
            capacity: self.capacity,
            bytes: s.index.bytes(),
            blocks: s.index.len() as u64,
            hits: c.hits.get(),
            misses: c.misses.get(),
            writes: c.writes.get(),
            write_bytes: c.write_bytes.get(),
            part_hits: c.part_hits.get(),
            read_bytes: c.read_bytes.get(),
            write_drops: c.write_drops.get(),
            write_errors: c.write_errors.get(),
            checksum_failures: c.checksum_failures.get(),
            read_errors: c.read_errors.get(),
            recovered_blocks: self.recovered_blocks,
            recovered_torn: self.recovered_torn,
            recovery_seconds: self.recovery.as_secs_f64(),
            state: s.state(),
            mode: self.mode,
        }
    }
}

impl Drop for DiskTier {
    fn drop(&mut self) {
        drop(self.tx.take());
        for w in self.writers.drain(..) {
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for DiskTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskTier")
            .field("path", &self.shared.path)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

fn slot_error(e: SlotError) -> &'static str {
    match e {
        SlotError::Empty => "empty slot",
        SlotError::HeaderChecksum => "header checksum",
        SlotError::Superseded => "header names another block",
        SlotError::DataChecksum => "data checksum",
    }
}

#[cfg(test)]
mod tests;
