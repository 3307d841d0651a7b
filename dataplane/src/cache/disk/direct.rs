//! Page-aligned buffers and the tier's file, opened for direct I/O where the file system
//! allows it.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use super::format::PAGE;

/// A zeroed, page-aligned heap buffer of fixed capacity: what `O_DIRECT` reads and writes
/// need. It tracks how many leading bytes are initialised for monoio (all of them are:
/// the buffer starts zeroed).
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    cap: usize,
    init: usize,
}

// SAFETY: `AlignedBuf` owns its allocation exclusively (no aliasing pointer escapes except
// through `&self`/`&mut self` borrows), like a `Vec<u8>`.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads the bytes, as for `Vec<u8>`.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `cap` bytes (a multiple of [`PAGE`], at least one page).
    pub fn zeroed(cap: usize) -> Self {
        let cap = cap.max(PAGE).next_multiple_of(PAGE);
        let layout = Layout::from_size_align(cap, PAGE).expect("page-aligned layout");
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Self {
            ptr,
            cap,
            init: cap,
        }
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// The start of the buffer, for callers that hand out disjoint windows of it (see
    /// `span.rs`); valid for [`AlignedBuf::capacity`] bytes while the buffer lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The whole buffer.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to `cap` initialised (zeroed, then written) bytes we own.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.cap) }
    }

    /// The whole buffer, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.cap, PAGE).expect("page-aligned layout");
        // SAFETY: allocated in `zeroed` with this very layout.
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl AsRef<[u8]> for AlignedBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

// SAFETY: `read_ptr` is stable for the buffer's life (the allocation never moves) and the
// first `bytes_init` bytes are initialised.
unsafe impl monoio::buf::IoBuf for AlignedBuf {
    fn read_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.init
    }
}

// SAFETY: `write_ptr` is stable and valid for `bytes_total` bytes; `set_init` only records
// what the kernel reports having written (never past the capacity).
unsafe impl monoio::buf::IoBufMut for AlignedBuf {
    fn write_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn bytes_total(&mut self) -> usize {
        self.cap
    }

    unsafe fn set_init(&mut self, pos: usize) {
        // Every byte is initialised from the start (zeroed); a read reports how far it got.
        self.init = self.init.max(pos.min(self.cap));
    }
}

/// Read buffers of one size, kept for reuse: a fresh 1 MiB page-aligned buffer costs a
/// zeroing pass and, from fresh memory, a page fault per page when the kernel first writes it,
/// which under virtualization cost more than the read itself. Buffers come back when the
/// block they hold is dropped (evicted from RAM, sent and released); at most `max` are kept.
pub struct BufPool {
    size: usize,
    max: usize,
    free: Mutex<Vec<AlignedBuf>>,
}

impl BufPool {
    /// A pool of buffers of `size` bytes keeping at most `max` idle ones.
    pub fn new(size: usize, max: usize) -> Arc<Self> {
        Arc::new(Self {
            size,
            max,
            free: Mutex::new(Vec::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Vec<AlignedBuf>> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A buffer of the pool's size (contents unspecified but initialised).
    pub fn take(&self) -> AlignedBuf {
        self.lock()
            .pop()
            .unwrap_or_else(|| AlignedBuf::zeroed(self.size))
    }

    /// Return `buf` for reuse (dropped when the pool is full or it is another size).
    pub fn give(&self, buf: AlignedBuf) {
        if buf.capacity() == self.size {
            let mut free = self.lock();
            if free.len() < self.max {
                free.push(buf);
            }
        }
    }

    /// Idle buffers held now.
    #[cfg(test)]
    pub fn idle(&self) -> usize {
        self.lock().len()
    }
}

/// How the tier's file was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// `O_DIRECT`: reads and writes bypass the page cache.
    Direct,
    /// The file system refused `O_DIRECT` (tmpfs, some network file systems): buffered I/O
    /// through the page cache, same format and checks.
    Buffered,
}

/// Open (creating it if missing) `path` for reading and writing, directly when the file system
/// allows it.
pub fn open(path: &Path) -> io::Result<(File, IoMode)> {
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true).truncate(false);
    match opts.clone().custom_flags(libc::O_DIRECT).open(path) {
        Ok(f) => Ok((f, IoMode::Direct)),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            Ok((opts.open(path)?, IoMode::Buffered))
        }
        Err(e) => Err(e),
    }
}

/// Open `path` again, read-only, as `mode` says (a worker's own handle).
pub fn open_mode(path: &Path, mode: IoMode) -> io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.read(true);
    if mode == IoMode::Direct {
        opts.custom_flags(libc::O_DIRECT);
    }
    opts.open(path)
}

/// Take an exclusive advisory lock on `file` without waiting: two processes never share one
/// tier.
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` on a valid open descriptor has no memory-safety preconditions.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_page_aligned_zeroed_and_rounded_up() {
        let mut b = AlignedBuf::zeroed(5000);
        assert_eq!(b.capacity(), 2 * PAGE);
        assert_eq!(b.as_slice().as_ptr() as usize % PAGE, 0);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        b.as_mut_slice()[8191] = 7;
        assert_eq!(b.as_slice()[8191], 7);
    }

    #[test]
    fn pooled_buffers_are_reused_up_to_the_pool_size() {
        let pool = BufPool::new(2 * PAGE, 1);
        let a = pool.take();
        let ptr = a.as_slice().as_ptr();
        pool.give(a);
        assert_eq!(pool.idle(), 1);
        assert_eq!(
            pool.take().as_slice().as_ptr(),
            ptr,
            "the same buffer again"
        );
        pool.give(AlignedBuf::zeroed(PAGE));
        pool.give(AlignedBuf::zeroed(2 * PAGE));
        pool.give(AlignedBuf::zeroed(2 * PAGE));
        assert_eq!(pool.idle(), 1, "other sizes and extras are freed");
    }
}
