//! A list of `Bytes` handed to the kernel as one vectored write, without copying them.

use bytes::Bytes;
use monoio::buf::IoVecBuf;

/// Owned `Bytes` slices plus the `iovec` array that describes them.
///
/// Built once, then moved into `write_vectored_all`; the kernel reads the slices in place.
pub struct BytesVec {
    bufs: Vec<Bytes>,
    iovecs: Vec<libc::iovec>,
}

impl BytesVec {
    /// Describe `bufs` (empty slices are skipped) for a vectored write.
    pub fn new(bufs: Vec<Bytes>) -> Self {
        let bufs: Vec<Bytes> = bufs.into_iter().filter(|b| !b.is_empty()).collect();
        let iovecs = bufs
            .iter()
            .map(|b| libc::iovec {
                iov_base: b.as_ptr() as *mut libc::c_void,
                iov_len: b.len(),
            })
            .collect();
        Self { bufs, iovecs }
    }

    /// Give the slices back (after the write).
    pub fn into_inner(self) -> Vec<Bytes> {
        self.bufs
    }

    /// Total bytes described.
    pub fn len(&self) -> usize {
        self.bufs.iter().map(Bytes::len).sum()
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }
}

// SAFETY: `iovecs` points into the heap (or static) storage of the `Bytes` in `bufs`, which this
// struct owns for as long as the runtime owns it; `Bytes` never moves or frees its storage while
// a handle is alive, and neither vector is modified after construction, so the pointer and the
// described memory stay valid and unchanged while the write is in flight.
unsafe impl IoVecBuf for BytesVec {
    fn read_iovec_ptr(&self) -> *const libc::iovec {
        self.iovecs.as_ptr()
    }

    fn read_iovec_len(&self) -> usize {
        self.iovecs.len()
    }
}
