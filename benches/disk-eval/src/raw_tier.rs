//! The ceiling of an io_uring tier of one's own on monoio: O_DIRECT reads of whole blocks from
//! fio's laid-out file, no index, no checksum. Two ways, to tell what a read path costs:
//! - [`RawMode::Reused`]: one file handle per thread, aligned buffers reused from a pool;
//! - [`RawMode::PerRead`]: as rangecache's `DiskTier::read` does today: `dup` + monoio file
//!   + async close, and a fresh zeroed aligned buffer, per read.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::cell::RefCell;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::ptr::NonNull;
use std::rc::Rc;

use anyhow::{Context, Result};
use bytes::Bytes;

use crate::driver::{ReadFuture, Tier};

const PAGE: usize = 4096;

/// A page-aligned, zero-initialised buffer for O_DIRECT.
struct Aligned {
    ptr: NonNull<u8>,
    cap: usize,
}

impl Aligned {
    fn new(cap: usize) -> Aligned {
        let cap = cap.max(PAGE).next_multiple_of(PAGE);
        let layout = Layout::from_size_align(cap, PAGE).expect("page-aligned layout");
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Aligned { ptr, cap }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.cap, PAGE).expect("page-aligned layout");
        // SAFETY: allocated in `new` with this very layout.
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

// SAFETY: the allocation never moves while the buffer lives, and all `cap` bytes are
// initialised (zeroed at allocation).
unsafe impl monoio::buf::IoBuf for Aligned {
    fn read_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.cap
    }
}

// SAFETY: `write_ptr` is valid for `bytes_total` bytes for the buffer's life; every byte is
// initialised already, so `set_init` has nothing to record.
unsafe impl monoio::buf::IoBufMut for Aligned {
    fn write_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn bytes_total(&mut self) -> usize {
        self.cap
    }

    unsafe fn set_init(&mut self, _pos: usize) {}
}

/// How a read gets its file handle and buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawMode {
    /// Per-thread handle, pooled buffers.
    Reused,
    /// `dup` + open + close and a fresh buffer per read.
    PerRead,
}

/// O_DIRECT reads of a file of `block`-sized blocks.
pub struct RawTier {
    file: std::fs::File,
    block: u64,
    mode: RawMode,
}

thread_local! {
    static HANDLE: RefCell<Option<Rc<monoio::fs::File>>> = const { RefCell::new(None) };
    static POOL: RefCell<Vec<Aligned>> = const { RefCell::new(Vec::new()) };
}

impl RawTier {
    /// Open `path` with O_DIRECT.
    pub fn open(path: &Path, block: u64, mode: RawMode) -> Result<RawTier> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .with_context(|| format!("open {} O_DIRECT", path.display()))?;
        Ok(RawTier { file, block, mode })
    }

    async fn read_reused(&self, offset: u64) -> Option<Bytes> {
        let file = HANDLE.with(|h| {
            h.borrow_mut()
                .get_or_insert_with(|| {
                    let std = self.file.try_clone().expect("dup");
                    Rc::new(monoio::fs::File::from_std(std).expect("monoio file"))
                })
                .clone()
        });
        let buf = POOL
            .with(|p| p.borrow_mut().pop())
            .unwrap_or_else(|| Aligned::new(self.block as usize));
        let (res, buf) = file.read_exact_at(buf, offset).await;
        POOL.with(|p| p.borrow_mut().push(buf));
        res.ok().map(|_| Bytes::new())
    }

    async fn read_per_read(&self, offset: u64) -> Option<Bytes> {
        let std = self.file.try_clone().ok()?;
        let file = monoio::fs::File::from_std(std).ok()?;
        let buf = Aligned::new(self.block as usize + PAGE);
        let (res, buf) = file.read_exact_at(buf, offset).await;
        let _ = file.close().await;
        drop(buf);
        res.ok().map(|_| Bytes::new())
    }
}

impl Tier for RawTier {
    fn read(&self, index: u64) -> ReadFuture<'_> {
        let offset = index * self.block;
        match self.mode {
            RawMode::Reused => Box::pin(self.read_reused(offset)),
            RawMode::PerRead => Box::pin(self.read_per_read(offset)),
        }
    }

    fn unchecked_len(&self) -> Option<u64> {
        Some(self.block)
    }
}
