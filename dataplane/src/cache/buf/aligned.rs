//! Page-aligned buffers and a pool that keeps them for reuse.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

/// The memory page: buffers for direct I/O are aligned to it and sized in multiples of it.
pub const PAGE: usize = 4096;

/// A zeroed heap buffer of fixed capacity, page-aligned (what `O_DIRECT` reads and writes
/// need) or, from [`AlignedBuf::exact`], of exactly the size asked. It tracks how many leading
/// bytes are initialised for monoio (all of them are: the buffer starts zeroed).
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    layout: Layout,
    init: usize,
    /// Its own anonymous mapping (see [`AlignedBuf::populated`]), unmapped on drop; else a
    /// heap allocation of `layout`.
    mapped: bool,
}

// SAFETY: `AlignedBuf` owns its allocation exclusively (no aliasing pointer escapes except
// through `&self`/`&mut self` borrows), like a `Vec<u8>`.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only reads the bytes, as for `Vec<u8>`.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `cap` bytes (a multiple of [`PAGE`], at least one page).
    pub fn zeroed(cap: usize) -> Self {
        Self::alloc(page_layout(cap))
    }

    /// A zeroed buffer of exactly `len` bytes (at least one), aligned to a cache line: for
    /// blocks shorter than a pool's buffers, which must not cost more memory than they hold.
    pub fn exact(len: usize) -> Self {
        Self::alloc(Layout::from_size_align(len.max(1), 64).expect("cache-line layout"))
    }

    fn alloc(layout: Layout) -> Self {
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Self {
            ptr,
            layout,
            init: layout.size(),
            mapped: false,
        }
    }

    /// A zeroed buffer of `cap` bytes (as [`AlignedBuf::zeroed`]) in a mapping of its own
    /// whose pages the kernel provides at once (`MAP_POPULATE`): one call instead of a page
    /// fault per page when the buffer is first written. `None` when the mapping fails.
    pub fn populated(cap: usize) -> Option<Self> {
        let layout = page_layout(cap);
        let cap = layout.size();
        // SAFETY: an anonymous private mapping with no address hint affects no existing
        // memory.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                cap,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        Some(Self {
            ptr: NonNull::new(raw.cast())?,
            layout,
            init: cap,
            mapped: true,
        })
    }

    /// Capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.layout.size()
    }

    /// The start of the buffer, for callers that hand out disjoint windows of it (see
    /// `span.rs`); valid for [`AlignedBuf::capacity`] bytes while the buffer lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The whole buffer.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to `capacity()` initialised (zeroed, then written) bytes we own.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.capacity()) }
    }

    /// The whole buffer, writable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.capacity()) }
    }
}

/// The layout of a page-aligned buffer of at least `len` bytes: whole pages, at least one.
fn page_layout(len: usize) -> Layout {
    let cap = len.max(PAGE).next_multiple_of(PAGE);
    Layout::from_size_align(cap, PAGE).expect("page-aligned layout")
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.mapped {
            // SAFETY: the mapping made in `populated`, of exactly this size, used by nothing
            // else.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.layout.size()) };
        } else {
            // SAFETY: allocated in `alloc` with this very layout.
            unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
        }
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
        self.capacity()
    }

    unsafe fn set_init(&mut self, pos: usize) {
        // Every byte is initialised from the start (zeroed); a read reports how far it got.
        self.init = self.init.max(pos.min(self.capacity()));
    }
}

/// Smallest pool buffer mapped with its pages provided at once ([`AlignedBuf::populated`]);
/// smaller ones come from the heap.
const POPULATE_FROM: usize = 256 << 10;

/// Buffers of one size, kept for reuse: a fresh 1 MiB buffer costs a zeroing pass and, from
/// fresh memory, a page fault per page when it is first written (and, from the allocator, an
/// `mmap` and later a `munmap`), which under virtualization cost more than filling it. New
/// buffers of [`POPULATE_FROM`] bytes or more are mapped with their pages present
/// ([`AlignedBuf::populated`]), which still zeroes them but takes no fault per page. Buffers
/// come back when the block they hold is dropped (evicted from RAM, or sent and released).
///
/// Bound: an idle buffer is kept while fewer than `max_idle` are idle, or while the buffers
/// out of the pool and idle in it stay within `total` (for the RAM tier, the blocks that
/// `cache.memory` holds), so recycled memory never adds more than `max_idle` buffers to what
/// the cache itself may use.
pub struct BufPool {
    size: usize,
    /// The capacity of the pool's buffers: `size` rounded up to whole pages.
    cap: usize,
    max_idle: usize,
    total: usize,
    state: Mutex<PoolState>,
}

struct PoolState {
    idle: Vec<AlignedBuf>,
    /// Buffers handed out by `take` and not given back.
    out: usize,
}

impl BufPool {
    /// A pool of buffers of `size` bytes keeping at most `max_idle` idle ones.
    pub fn new(size: usize, max_idle: usize) -> Arc<Self> {
        Self::with_total(size, max_idle, 0)
    }

    /// A pool of buffers of `size` bytes that keeps an idle buffer while fewer than
    /// `max_idle` are idle or while out and idle buffers together number at most `total`.
    pub fn with_total(size: usize, max_idle: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            size,
            cap: page_layout(size).size(),
            max_idle,
            total,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                out: 0,
            }),
        })
    }

    /// The size the pool's buffers were asked for (their capacity is that, rounded up to
    /// whole pages).
    pub fn size(&self) -> usize {
        self.size
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A buffer of the pool's size (contents unspecified but initialised).
    pub fn take(&self) -> AlignedBuf {
        let reused = {
            let mut st = self.lock();
            st.out += 1;
            st.idle.pop()
        };
        reused
            .or_else(|| {
                (self.cap >= POPULATE_FROM)
                    .then(|| AlignedBuf::populated(self.cap))
                    .flatten()
            })
            .unwrap_or_else(|| AlignedBuf::zeroed(self.size))
    }

    /// Return `buf` for reuse (dropped, outside the lock, when the pool keeps enough or it is
    /// another size).
    pub fn give(&self, buf: AlignedBuf) {
        if buf.capacity() != self.cap {
            return;
        }
        let mut st = self.lock();
        st.out = st.out.saturating_sub(1);
        if st.idle.len() < self.max_idle || st.out + st.idle.len() < self.total {
            st.idle.push(buf);
            return;
        }
        drop(st);
        drop(buf);
    }

    /// Take buffers until the ones out and idle number the pool's total, then give them all
    /// back: each new one is mapped (with its pages present when large), so later takes get
    /// memory that is already mapped. Returns how many were taken.
    pub fn prefill(&self) -> usize {
        let wanted = self.total.saturating_sub(self.lock().out);
        let held: Vec<_> = (0..wanted).map(|_| self.take()).collect();
        held.into_iter().for_each(|b| self.give(b));
        wanted
    }

    /// Idle buffers held now.
    pub fn idle(&self) -> usize {
        self.lock().idle.len()
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

    #[test]
    fn a_pool_with_a_total_keeps_idle_buffers_only_within_it() {
        // Room for 4 buffers in all, and 1 idle whatever the rest.
        let pool = BufPool::with_total(PAGE, 1, 4);
        let out: Vec<_> = (0..6).map(|_| pool.take()).collect();
        for (i, buf) in out.into_iter().enumerate() {
            pool.give(buf);
            let (out, idle) = (5 - i, pool.idle());
            assert!(
                idle <= 1 || out + idle <= 4,
                "{idle} idle with {out} out exceeds the total"
            );
        }
        // All 6 back: 4 kept (the total), 2 freed.
        assert_eq!(pool.idle(), 4);
        let again: Vec<_> = (0..5).map(|_| pool.take()).collect();
        assert_eq!(pool.idle(), 0);
        drop(again);
    }

    #[test]
    fn block_sized_buffers_are_mapped_with_their_pages_present_and_zeroed() {
        let mut b = AlignedBuf::populated(1 << 20).expect("mapped");
        assert!(b.mapped);
        assert_eq!(b.capacity(), 1 << 20);
        assert_eq!(b.as_ptr() as usize % PAGE, 0);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        b.as_mut_slice().fill(9);
        assert!(b.as_slice().iter().all(|&x| x == 9));
        // The pool maps buffers this large; smaller ones come from the heap.
        assert!(BufPool::new(POPULATE_FROM, 1).take().mapped);
        assert!(!BufPool::new(POPULATE_FROM - PAGE, 1).take().mapped);
    }

    #[test]
    fn exact_buffers_are_exactly_their_length_and_never_pooled() {
        let b = AlignedBuf::exact(10);
        assert_eq!(b.capacity(), 10);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        assert_eq!(AlignedBuf::exact(0).capacity(), 1);
        let pool = BufPool::new(PAGE, 4);
        pool.give(b);
        assert_eq!(pool.idle(), 0);
    }
}
