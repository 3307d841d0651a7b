//! The access log: one JSON line per request, written off the workers.
//!
//! A worker formats its lines into a buffer of its own ([`WorkerLog`]) and hands full buffers
//! (or whatever it holds every [`FLUSH_INTERVAL`]) to one writer thread over a bounded channel
//! with a non-blocking `try_send`. A worker never waits for a disk, a pipe or a lock: when the
//! writer falls behind and the channel is full, the batch is dropped and its lines are counted
//! in `rangecache_access_log_dropped_total`. Memory is bounded by [`CHANNEL_BATCHES`] batches
//! of about [`BATCH_BYTES`] each plus one buffer per worker.
//!
//! The writer reopens a file target when asked ([`AccessLog::reopen`], on SIGHUP), so that
//! logrotate's `create` mode works.

mod line;

use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use line::AccessRecord;

use crate::{Metrics, WorkerMetrics};

/// A worker hands its buffer over once it holds this many bytes.
pub const BATCH_BYTES: usize = 32 * 1024;

/// Batches that may wait for the writer; past this, batches are dropped and counted.
pub const CHANNEL_BATCHES: usize = 64;

/// A worker hands over what it holds at least this often, so lines appear promptly.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// The process's standard output.
    Stdout,
    /// A file, opened for appending (created if missing).
    File(PathBuf),
}

/// What the writer thread receives.
enum Msg {
    /// Complete lines to write.
    Batch(Vec<u8>),
    /// Everything sent before this is written; stop.
    Close,
}

/// The running access log: the writer thread and the way to reach it.
pub struct AccessLog {
    sender: SyncSender<Msg>,
    reopen: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl std::fmt::Debug for AccessLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLog").finish_non_exhaustive()
    }
}

/// What a worker holds to send batches to the writer. Cheap to clone.
#[derive(Clone)]
pub struct AccessLogSink {
    sender: SyncSender<Msg>,
}

impl std::fmt::Debug for AccessLogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessLogSink")
    }
}

impl AccessLog {
    /// Open `target` (a file must be openable now: errors are startup errors) and start the
    /// writer thread.
    pub fn start(target: AccessLogTarget) -> io::Result<Self> {
        let out = Output::open(&target)?;
        let (sender, receiver) = mpsc::sync_channel(CHANNEL_BATCHES);
        let reopen = Arc::new(AtomicBool::new(false));
        let flag = reopen.clone();
        let thread = std::thread::Builder::new()
            .name("rangecache-accesslog".into())
            .spawn(move || write_loop(out, target, receiver, &flag))?;
        Ok(Self {
            sender,
            reopen,
            thread,
        })
    }

    /// A sender for one worker.
    pub fn sink(&self) -> AccessLogSink {
        AccessLogSink {
            sender: self.sender.clone(),
        }
    }

    /// Ask the writer to reopen a file target before its next write (SIGHUP, logrotate).
    pub fn reopen(&self) {
        self.reopen.store(true, Relaxed);
    }

    /// Wait until every batch sent so far is written, then stop the writer. Call after the
    /// workers stopped (their last lines are handed over when they exit). Blocks.
    pub fn close(self) {
        if self.sender.send(Msg::Close).is_ok() {
            let _ = self.thread.join();
        }
    }
}

/// An open output.
enum Output {
    Stdout,
    File(File),
}

impl Output {
    fn open(target: &AccessLogTarget) -> io::Result<Self> {
        Ok(match target {
            AccessLogTarget::Stdout => Output::Stdout,
            AccessLogTarget::File(path) => Output::File(open_append(path)?),
        })
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Output::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            Output::File(f) => f.write_all(bytes),
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn write_loop(
    mut out: Output,
    target: AccessLogTarget,
    receiver: Receiver<Msg>,
    reopen: &AtomicBool,
) {
    // Errors are logged once per streak, not once per batch.
    let mut failing = false;
    loop {
        let batch = match receiver.recv_timeout(Duration::from_secs(1)) {
            Ok(Msg::Batch(bytes)) => Some(bytes),
            Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => None,
        };
        if reopen.swap(false, Relaxed) {
            if let AccessLogTarget::File(path) = &target {
                match open_append(path) {
                    Ok(f) => {
                        out = Output::File(f);
                        tracing::info!(path = %path.display(), "access log reopened");
                    }
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot reopen the access log; still writing the old file")
                    }
                }
            }
        }
        let Some(batch) = batch else { continue };
        match out.write(&batch) {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "access log write failed; lines are lost until it works again");
            }
            Err(_) => {}
        }
    }
}

/// One worker's side of the access log: a buffer of formatted lines. Lives on its worker;
/// whatever it holds when dropped (the worker stopped) is handed over.
pub struct WorkerLog {
    sink: AccessLogSink,
    buf: RefCell<Vec<u8>>,
    lines: Cell<u64>,
    metrics: Arc<Metrics>,
    worker: usize,
}

impl WorkerLog {
    /// A buffer for worker `worker` that counts drops in its metrics block, with a task on
    /// the current monoio runtime that hands it over every [`FLUSH_INTERVAL`].
    pub fn start(sink: AccessLogSink, metrics: Arc<Metrics>, worker: usize) -> Rc<Self> {
        let log = Rc::new(Self {
            sink,
            buf: RefCell::new(Vec::with_capacity(BATCH_BYTES + 1024)),
            lines: Cell::new(0),
            metrics,
            worker,
        });
        let weak = Rc::downgrade(&log);
        monoio::spawn(async move {
            loop {
                monoio::time::sleep(FLUSH_INTERVAL).await;
                match weak.upgrade() {
                    Some(log) => log.flush(),
                    None => return,
                }
            }
        });
        log
    }

    /// Append one record's line; hand the buffer over once it is full.
    pub fn push(&self, record: &AccessRecord<'_>) {
        let full = {
            let mut buf = self.buf.borrow_mut();
            record.write_json(&mut buf);
            buf.len() >= BATCH_BYTES
        };
        self.lines.set(self.lines.get() + 1);
        if full {
            self.flush();
        }
    }

    /// Hand what the buffer holds to the writer, or drop it (counted) if the writer is behind.
    pub fn flush(&self) {
        let lines = self.lines.replace(0);
        if lines == 0 {
            return;
        }
        let bytes = std::mem::replace(
            &mut *self.buf.borrow_mut(),
            Vec::with_capacity(BATCH_BYTES + 1024),
        );
        match self.sink.sender.try_send(Msg::Batch(bytes)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                let m = self.metrics.worker(self.worker);
                WorkerMetrics::add(&m.ops.access_log_dropped, lines);
            }
        }
    }
}

impl Drop for WorkerLog {
    fn drop(&mut self) {
        let lines = self.lines.replace(0);
        let bytes = std::mem::take(self.buf.get_mut());
        if lines > 0 && self.sink.sender.try_send(Msg::Batch(bytes)).is_err() {
            let m = self.metrics.worker(self.worker);
            WorkerMetrics::add(&m.ops.access_log_dropped, lines);
        }
    }
}
