//! Opening the tier's file at startup: create it, or check its superblock and rebuild the
//! index from the slot headers it holds.
//!
//! Recovery reads one header page per slot written so far, from several threads at once
//! (an SSD serves parallel small reads far faster than one at a time), and trusts a header
//! only when its checksum holds. It does not read block data: every block's own checksum is
//! checked when it is read, so a block torn by a crash is found (and counted) then.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::direct::{self, IoMode};
use super::format::{
    decode_header, SlotError, SlotHeader, SuperError, Superblock, HEADER, PAGE, VERSION,
};
use super::index::{Index, Loc};
use crate::cache::buf::AlignedBuf;

/// The file's name inside `cache.disk.path`.
pub const FILE_NAME: &str = "rangecache-blocks.dat";

/// Threads reading headers during recovery.
const SCAN_THREADS: usize = 8;

/// The opened file and what recovery found.
pub(super) struct Opened {
    pub file: File,
    pub mode: IoMode,
    /// Sequence number of the newest block found (0: none).
    pub newest_seq: u64,
    /// Headers read.
    pub scanned: u64,
    /// Headers whose own checksum failed (torn or damaged): their slots are reused.
    pub torn_headers: u64,
    /// How long opening and recovery took.
    pub took: Duration,
    /// Why an existing file was started afresh, if it was.
    pub reset: Option<&'static str>,
    /// The whole size is reserved on disk (else the file grows as blocks are written).
    pub preallocated: bool,
}

fn err(path: &Path, what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {what}: {e}", path.display()))
}

/// Open or create the tier's file in directory `dir`, laid out for `slots` slots of
/// `slot_size` bytes holding blocks of `block_size`, and fill `index` from it.
pub(super) fn open(
    dir: &Path,
    block_size: u64,
    slot_size: u64,
    index: &Index,
) -> io::Result<Opened> {
    let started = Instant::now();
    let meta = std::fs::metadata(dir).map_err(|e| err(dir, "cache.disk.path", e))?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotADirectory,
            format!("{}: cache.disk.path is not a directory", dir.display()),
        ));
    }
    let path = dir.join(FILE_NAME);
    let (file, mode) = direct::open(&path).map_err(|e| err(&path, "open", e))?;
    direct::lock_exclusive(&file).map_err(|e| err(&path, "in use by another process (lock)", e))?;
    let len = file.metadata().map_err(|e| err(&path, "stat", e))?.len();
    let want = Superblock {
        version: VERSION,
        block_size,
    };
    let mut page = AlignedBuf::zeroed(PAGE);
    let mut reset = None;
    if len >= PAGE as u64 {
        file.read_exact_at(page.as_mut_slice(), 0)
            .map_err(|e| err(&path, "read superblock", e))?;
        match Superblock::decode(page.as_slice()) {
            Ok(sb) if sb == want => {}
            Ok(sb) if sb.version != VERSION => reset = Some("another format version"),
            Ok(_) => reset = Some("another cache.block_size"),
            Err(SuperError::Corrupt) => reset = Some("damaged superblock"),
            Err(SuperError::Foreign) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: not a rangecache disk cache file; move it away or choose another cache.disk.path",
                        path.display()
                    ),
                ))
            }
        }
    } else {
        reset = (len > 0).then_some("shorter than a superblock");
    }
    let fresh = len < PAGE as u64 || reset.is_some();
    if fresh {
        file.set_len(0).map_err(|e| err(&path, "truncate", e))?;
        page.as_mut_slice().copy_from_slice(&want.encode());
        file.write_all_at(page.as_slice(), 0)
            .map_err(|e| err(&path, "write superblock", e))?;
        file.sync_all().map_err(|e| err(&path, "sync", e))?;
    }
    let slots = index.slots() as u64;
    let limit = PAGE as u64 + slots * slot_size;
    let len = file.metadata().map_err(|e| err(&path, "stat", e))?.len();
    if len > limit {
        // cache.disk.size shrank: the slots past the new end are dropped.
        file.set_len(limit).map_err(|e| err(&path, "truncate", e))?;
    }
    let written = (len.min(limit) - PAGE as u64).div_ceil(slot_size);
    let preallocated = len >= limit || preallocate(&file, len, limit);
    let scan = scan(&file, written, slot_size, index).map_err(|e| err(&path, "recover", e))?;
    index.set_hand(scan.newest.map(|(_, slot)| slot));
    Ok(Opened {
        file,
        mode,
        newest_seq: scan.newest.map_or(0, |(seq, _)| seq),
        scanned: written,
        torn_headers: scan.torn,
        took: started.elapsed(),
        reset,
        preallocated,
    })
}

/// Reserve the file's whole size up front (`fallocate`): writes then land inside the file,
/// which the file system lets run side by side (writes that extend a file are serialized),
/// and the space is the tier's whatever else fills the disk. False when the file system
/// refuses (no room, or no `fallocate`): the file then grows as blocks are written.
fn preallocate(file: &File, from: u64, to: u64) -> bool {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else {
        return false;
    };
    // SAFETY: `fallocate` on a valid open descriptor has no memory-safety preconditions.
    unsafe { libc::fallocate(file.as_raw_fd(), 0, offset, len) == 0 }
}

struct Scan {
    newest: Option<(u64, u32)>,
    torn: u64,
}

/// Read the headers of slots `0..written` into `index`: several threads read and decode,
/// then one applies what they found (so two copies of a key settle by sequence number alone).
fn scan(file: &File, written: u64, slot_size: u64, index: &Index) -> io::Result<Scan> {
    let next = AtomicU64::new(0);
    let threads = SCAN_THREADS.min(written as usize).max(1);
    let found = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> io::Result<(Vec<(u32, SlotHeader)>, u64)> {
                    let mut page = AlignedBuf::zeroed(HEADER);
                    let (mut headers, mut torn) = (Vec::new(), 0);
                    loop {
                        let slot = next.fetch_add(1, Relaxed);
                        if slot >= written {
                            return Ok((headers, torn));
                        }
                        let at = PAGE as u64 + slot * slot_size;
                        match file.read_exact_at(page.as_mut_slice(), at) {
                            Ok(()) => {}
                            // The last slot's header was never completely written.
                            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => continue,
                            Err(e) => return Err(e),
                        }
                        match decode_header(page.as_slice(), |o, b, k| index.intern(o, b, k)) {
                            Ok(h) => headers.push((slot as u32, h)),
                            Err(SlotError::Empty) => {}
                            Err(_) => torn += 1,
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect::<io::Result<Vec<_>>>()
    })?;
    let mut scan = Scan {
        newest: None,
        torn: 0,
    };
    for (headers, torn) in found {
        scan.torn += torn;
        for (slot, h) in headers {
            if scan.newest.is_none_or(|(seq, _)| h.seq > seq) {
                scan.newest = Some((h.seq, slot));
            }
            let loc = Loc {
                slot,
                seq: h.seq,
                len: h.len,
            };
            index.recover(h.key, loc);
        }
    }
    Ok(scan)
}
