//! One pooled buffer split into disjoint regions that several writers fill at once.
//!
//! A disk hit reads a slot's header and the chunks it wants in up to a few requests in flight
//! together (see `disk/read.rs`). Each request owns a [`Region`] — a window of one shared
//! page-aligned buffer — for as long as the kernel may write into it (monoio keeps the buffer
//! of an operation alive until it completes, even when the future is dropped). A region is
//! only looked at after its read came back, as [`Bytes`] over exactly its range.
//!
//! A block filled from the origin gives each of its segments' writers a region too, written
//! front to back with [`Region::append`]: each append publishes its own bytes at once, so
//! readers stream them while the rest of the region is still being written.
//!
//! The whole buffer is looked at only once no region is outstanding. The buffer returns to
//! its pool when the last region and the last `Bytes` over it are gone, so a block in RAM
//! keeps the buffer it was written into, copying nothing.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;

use super::aligned::{AlignedBuf, BufPool};

/// The shared buffer: regions and `Bytes` hold it by `Arc`.
pub struct SpanBuf {
    buf: Option<AlignedBuf>,
    base: *mut u8,
    cap: usize,
    pool: Arc<BufPool>,
    /// Regions not yet handed back by their reads.
    outstanding: AtomicUsize,
}

// SAFETY: the buffer is written only through `Region`s, whose ranges are disjoint (checked in
// `split`) and each owned by one writer at a time; it is read only through `Bytes` over ranges
// whose writes completed (a region turned into bytes, or the bytes one append wrote) or, with
// `whole`, once every region came back. No two threads ever access the same byte with one of
// them writing.
unsafe impl Send for SpanBuf {}
// SAFETY: as for `Send`: shared access never reads a byte a read may still write.
unsafe impl Sync for SpanBuf {}

impl SpanBuf {
    /// `buf` (from `pool`, returned to it at the end) split into `ranges`: sorted, disjoint,
    /// each inside the buffer. One region per range, in order.
    pub fn split(buf: AlignedBuf, pool: Arc<BufPool>, ranges: &[Range<usize>]) -> Vec<Region> {
        let cap = buf.capacity();
        let mut end = 0;
        for r in ranges {
            assert!(
                end <= r.start && r.start <= r.end && r.end <= cap,
                "regions must be sorted, disjoint and inside the buffer"
            );
            end = r.end;
        }
        let base = buf.as_ptr();
        let shared = Arc::new(SpanBuf {
            buf: Some(buf),
            base,
            cap,
            pool,
            outstanding: AtomicUsize::new(ranges.len()),
        });
        ranges
            .iter()
            .map(|r| Region {
                buf: shared.clone(),
                range: r.clone(),
                init: 0,
                appended: 0,
            })
            .collect()
    }

    /// `range` of the buffer, when every region's read has come back; `None` before.
    pub fn whole(self: &Arc<Self>, range: Range<usize>) -> Option<Bytes> {
        assert!(range.start <= range.end && range.end <= self.cap);
        (self.outstanding.load(Ordering::Acquire) == 0).then(|| self.bytes(range))
    }

    /// `range` of the buffer as `Bytes` holding the buffer; the caller vouches that nothing
    /// writes it any more (see the `Send` note).
    fn bytes(self: &Arc<Self>, range: Range<usize>) -> Bytes {
        Bytes::from_owner(Filled {
            buf: self.clone(),
            range,
        })
    }
}

impl Drop for SpanBuf {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.give(buf);
        }
    }
}

/// A window of a [`SpanBuf`] that one read fills (monoio's `IoBufMut`).
pub struct Region {
    buf: Arc<SpanBuf>,
    range: Range<usize>,
    init: usize,
    /// Bytes written by [`Region::append`], from the region's start.
    appended: usize,
}

impl Region {
    /// The shared buffer this region belongs to.
    pub fn span(&self) -> &Arc<SpanBuf> {
        &self.buf
    }

    /// Offset of the region in the buffer.
    pub fn start(&self) -> usize {
        self.range.start
    }

    /// Write `data` after what was published so far (by appends and commits), and return
    /// those bytes, readable at once.
    ///
    /// Panics if `data` does not fit in what is left of the region.
    pub fn append(&mut self, data: &[u8]) -> Bytes {
        let at = self.range.start + self.appended;
        assert!(
            at + data.len() <= self.range.end,
            "append past the region's end"
        );
        // SAFETY: `[at, at + len)` lies inside this region (checked above), which only this
        // writer writes, and no `Bytes` covers it yet (appends publish only what they wrote,
        // and every earlier append ended at or before `at`). The source is a distinct
        // borrowed slice, so the two cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(data.as_ptr(), self.buf.base.add(at), data.len());
        }
        self.init = self.init.max(self.appended + data.len());
        self.commit(data.len())
    }

    /// Publish the next `n` bytes after what was published so far, which a read into this
    /// region (writing from its [`IoBufMut::write_ptr`](monoio::buf::IoBufMut::write_ptr))
    /// has just written, and return them.
    ///
    /// Panics if the read did not report writing that many.
    pub fn commit(&mut self, n: usize) -> Bytes {
        let at = self.range.start + self.appended;
        assert!(
            self.appended + n <= self.init,
            "commit past what the read wrote"
        );
        self.appended += n;
        self.buf.bytes(at..at + n)
    }

    /// The region's bytes, once its read has come back (the caller holds the region again,
    /// so no read owns it).
    pub fn into_bytes(self) -> Bytes {
        self.buf.bytes(self.range.clone())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.buf.outstanding.fetch_sub(1, Ordering::Release);
    }
}

// SAFETY: the pointer is into the shared allocation, which never moves and lives as long as
// the region (it holds the `Arc`); the first `init` bytes were written by the kernel (and the
// whole buffer was initialised when allocated).
unsafe impl monoio::buf::IoBuf for Region {
    fn read_ptr(&self) -> *const u8 {
        // SAFETY: `range` lies inside the allocation (checked in `split`).
        unsafe { self.buf.base.add(self.range.start) }
    }

    fn bytes_init(&self) -> usize {
        self.init
    }
}

// SAFETY: as for `IoBuf`; the region's range is disjoint from every other region's, and no
// `Bytes` covers the part the kernel may write (after what appends and commits published) until
// it is committed, so the kernel's writes alias nothing.
unsafe impl monoio::buf::IoBufMut for Region {
    fn write_ptr(&mut self) -> *mut u8 {
        // SAFETY: `range` lies inside the allocation (checked in `split`), and `appended` never
        // passes its length.
        unsafe { self.buf.base.add(self.range.start + self.appended) }
    }

    fn bytes_total(&mut self) -> usize {
        self.range.len() - self.appended
    }

    unsafe fn set_init(&mut self, pos: usize) {
        // `pos` counts from `write_ptr`, after what was published.
        self.init = self.init.max((self.appended + pos).min(self.range.len()));
    }
}

/// What a `Bytes` over part of a [`SpanBuf`] owns.
struct Filled {
    buf: Arc<SpanBuf>,
    range: Range<usize>,
}

impl AsRef<[u8]> for Filled {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `range` is inside the allocation, initialised, and nothing writes it any
        // more: it is a region whose read came back, the bytes of one append, or any range
        // once all regions had come back (see the `Send` note on `SpanBuf`).
        unsafe { std::slice::from_raw_parts(self.buf.base.add(self.range.start), self.range.len()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::buf::PAGE;

    #[test]
    fn regions_fill_one_buffer_which_goes_back_to_its_pool_last() {
        let pool = BufPool::new(4 * 4096, 4);
        let regions = SpanBuf::split(pool.take(), pool.clone(), &[0..4096, 8192..16384]);
        let mut it = regions.into_iter();
        let (mut a, mut b) = (it.next().unwrap(), it.next().unwrap());
        let span = a.span().clone();
        // SAFETY: test writes within each region's bounds, as the kernel would.
        unsafe {
            use monoio::buf::IoBufMut;
            std::ptr::write_bytes(a.write_ptr(), 1, 4096);
            std::ptr::write_bytes(b.write_ptr(), 2, 8192);
        }
        assert!(span.whole(0..16384).is_none(), "regions outstanding");
        let a = a.into_bytes();
        assert!(span.whole(0..16384).is_none(), "b still outstanding");
        let b = b.into_bytes();
        let all = span.whole(0..16384).expect("all back");
        assert!(a.iter().all(|&x| x == 1) && b.iter().all(|&x| x == 2));
        assert_eq!(&all[8192..8200], &[2; 8]);
        drop((a, b, span));
        assert_eq!(pool.idle(), 0, "still held by `all`");
        drop(all);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn appends_publish_each_piece_at_once_and_the_whole_once_every_region_is_back() {
        let pool = BufPool::new(PAGE, 1);
        let mut regions = SpanBuf::split(pool.take(), pool.clone(), &[0..100, 100..300]);
        let mut tail = regions.pop().unwrap();
        let mut head = regions.pop().unwrap();
        let span = head.span().clone();
        let t1 = tail.append(&[2; 150]);
        let h1 = head.append(&[1; 60]);
        let t2 = tail.append(&[3; 50]);
        let h2 = head.append(&[4; 40]);
        assert_eq!((&t1[..], &t2[..]), (&[2u8; 150][..], &[3u8; 50][..]));
        assert_eq!((&h1[..], &h2[..]), (&[1u8; 60][..], &[4u8; 40][..]));
        assert!(span.whole(0..300).is_none());
        drop((head, tail));
        let all = span.whole(0..300).expect("both regions back");
        assert_eq!(&all[55..65], &[1, 1, 1, 1, 1, 4, 4, 4, 4, 4]);
        assert_eq!(&all[245..255], &[2, 2, 2, 2, 2, 3, 3, 3, 3, 3]);
        drop((t1, t2, h1, h2, span));
        assert_eq!(pool.idle(), 0, "still held by `all`");
        drop(all);
        assert_eq!(pool.idle(), 1);
    }

    #[test]
    fn reads_into_a_region_land_after_what_was_published_and_commit_publishes_them() {
        use monoio::buf::IoBufMut;
        let pool = BufPool::new(PAGE, 1);
        let mut r = SpanBuf::split(pool.take(), pool.clone(), std::slice::from_ref(&(0..100)))
            .pop()
            .unwrap();
        let a = r.append(&[1; 30]);
        assert_eq!(r.bytes_total(), 70);
        // SAFETY: as the kernel would: write within `bytes_total` at `write_ptr`, then report.
        unsafe {
            std::ptr::write_bytes(r.write_ptr(), 2, 50);
            r.set_init(50);
        }
        let b = r.commit(50);
        assert_eq!((&a[..], &b[..]), (&[1u8; 30][..], &[2u8; 50][..]));
        assert_eq!(r.bytes_total(), 20);
        let c = r.append(&[3; 20]);
        assert_eq!(&c[..], &[3u8; 20][..]);
        let span = r.span().clone();
        drop(r);
        let all = span.whole(0..100).unwrap();
        assert_eq!(&all[28..32], &[1, 1, 2, 2]);
        assert_eq!(&all[78..82], &[2, 2, 3, 3]);
    }

    #[test]
    #[should_panic(expected = "past what the read wrote")]
    fn a_commit_of_bytes_no_read_wrote_is_refused() {
        let pool = BufPool::new(PAGE, 1);
        let mut r = SpanBuf::split(pool.take(), pool, std::slice::from_ref(&(0..10)))
            .pop()
            .unwrap();
        r.commit(1);
    }

    #[test]
    #[should_panic(expected = "past the region's end")]
    fn an_append_past_the_region_is_refused() {
        let pool = BufPool::new(PAGE, 1);
        let mut r = SpanBuf::split(pool.take(), pool, std::slice::from_ref(&(0..10)))
            .pop()
            .unwrap();
        r.append(&[0; 8]);
        r.append(&[0; 3]);
    }

    #[test]
    #[should_panic(expected = "disjoint")]
    fn overlapping_regions_are_refused() {
        let pool = BufPool::new(2 * 4096, 1);
        SpanBuf::split(pool.take(), pool.clone(), &[0..4096, 2048..8192]);
    }
}
