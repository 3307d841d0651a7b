//! A stream with an owned read buffer, for ownership-passing (io_uring) I/O.

use std::io;

use bytes::{Buf, Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use super::BytesVec;

/// Most iovecs Linux accepts in one `writev`.
const IOV_MAX: usize = 1024;

/// Bytes asked of the kernel per read when the buffer needs room.
const READ_CHUNK: usize = 64 * 1024;

/// A stream plus the bytes read from it that nobody has consumed yet.
///
/// Parsers take from the front of [`BufStream::buffer`] (`split_to`, zero copy); [`fill`] appends
/// what the next read returns.
///
/// [`fill`]: BufStream::fill
pub struct BufStream<S> {
    io: S,
    rbuf: BytesMut,
    written: u64,
}

impl<S> BufStream<S> {
    /// Wrap `io` with an empty read buffer.
    pub fn new(io: S) -> Self {
        Self {
            io,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            written: 0,
        }
    }

    /// Bytes received but not yet consumed.
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// Bytes written to the stream so far (by [`BufStream::write_all`] and
    /// [`BufStream::write_vectored`], including the parts of failed writes that went out).
    pub fn written(&self) -> u64 {
        self.written
    }
}

impl<S: AsyncReadRent + AsyncWriteRent> BufStream<S> {
    /// Read once more from the stream, appending to the buffer. Returns the number of bytes
    /// read; 0 means the peer closed its side.
    ///
    /// If the returned future is dropped mid-read the buffered bytes are lost: callers only drop
    /// it (on a timeout) when they are about to close the connection.
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
            self.rbuf.reserve(READ_CHUNK);
        }
        let buf = std::mem::take(&mut self.rbuf);
        let len = buf.len();
        let cap = buf.capacity();
        let (res, slice) = self.io.read(buf.slice_mut(len..cap)).await;
        self.rbuf = slice.into_inner();
        res
    }

    /// Read once into `dst`, at its `write_ptr`, at most its `bytes_total`: from the bytes
    /// already buffered if there are any (copied), else straight from the stream. Returns the
    /// number of bytes read (0: the peer closed its side) and `dst`.
    ///
    /// As for [`BufStream::fill`], a caller drops the returned future only when it is done
    /// with the stream; `dst` then stays with the kernel until the read completes.
    pub async fn read_into<T: IoBufMut>(&mut self, mut dst: T) -> (io::Result<usize>, T) {
        if self.rbuf.is_empty() {
            return self.io.read(dst).await;
        }
        let n = self.rbuf.len().min(dst.bytes_total());
        // SAFETY: `IoBufMut` promises `write_ptr` is valid for `bytes_total` bytes, and `n` is
        // at most that; the source is our own buffer, a distinct allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(self.rbuf.as_ptr(), dst.write_ptr(), n);
            dst.set_init(n);
        }
        self.rbuf.advance(n);
        (Ok(n), dst)
    }

    /// Write all of `buf`.
    pub async fn write_all(&mut self, buf: Bytes) -> io::Result<()> {
        let (res, _) = self.io.write_all(buf).await;
        res.map(|n| self.written += n as u64)
    }

    /// Write all of `bufs` with vectored writes (one syscall when the kernel takes it all);
    /// returns the number of bytes written.
    ///
    /// The loop is ours, not monoio's `write_vectored_all`: monoio 0.2.4 does not advance a
    /// partly written iovec, so after a short write it would send bytes twice.
    pub async fn write_vectored(&mut self, mut bufs: Vec<Bytes>) -> io::Result<usize> {
        bufs.retain(|b| !b.is_empty());
        let total: usize = bufs.iter().map(Bytes::len).sum();
        while !bufs.is_empty() {
            // Linux takes at most IOV_MAX (1024) iovecs per call.
            let rest = if bufs.len() > IOV_MAX {
                bufs.split_off(IOV_MAX)
            } else {
                Vec::new()
            };
            let (res, vec) = self.io.writev(BytesVec::new(bufs)).await;
            bufs = vec.into_inner();
            bufs.extend(rest);
            match res {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "peer accepted no bytes",
                    ))
                }
                Ok(n) => {
                    self.written += n as u64;
                    consume(&mut bufs, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Flush and shut down the write side.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }
}

/// Drop the first `n` written bytes from `bufs`: whole slices first, then the front of the
/// slice the write ended in.
fn consume(bufs: &mut Vec<Bytes>, mut n: usize) {
    let mut done = 0;
    for b in bufs.iter_mut() {
        if n >= b.len() {
            n -= b.len();
            done += 1;
        } else {
            b.advance(n);
            break;
        }
    }
    bufs.drain(..done);
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
    use monoio::BufResult;

    use super::*;

    /// A writer that takes at most `max` bytes per call, like a socket with a full buffer.
    struct Trickle {
        out: Vec<u8>,
        max: usize,
    }

    impl AsyncReadRent for Trickle {
        async fn read<T: IoBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
            (Ok(0), buf)
        }
        async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
            (Ok(0), buf)
        }
    }

    impl AsyncWriteRent for Trickle {
        async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
            // SAFETY: IoBuf guarantees `read_ptr` is valid for `bytes_init` bytes.
            let data = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
            let n = data.len().min(self.max);
            self.out.extend_from_slice(&data[..n]);
            (Ok(n), buf)
        }
        async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
            let mut left = self.max;
            let mut n = 0;
            for i in 0..buf.read_iovec_len() {
                // SAFETY: IoVecBuf guarantees `read_iovec_len` valid iovecs at the pointer,
                // each describing initialised memory owned by `buf`.
                let iov = unsafe { &*buf.read_iovec_ptr().add(i) };
                // SAFETY: as above, `iov_base` is valid for `iov_len` bytes.
                let data =
                    unsafe { std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len) };
                let take = data.len().min(left);
                self.out.extend_from_slice(&data[..take]);
                n += take;
                left -= take;
                if left == 0 {
                    break;
                }
            }
            (Ok(n), buf)
        }
        fn flush(&mut self) -> impl Future<Output = io::Result<()>> {
            std::future::ready(Ok(()))
        }
        fn shutdown(&mut self) -> impl Future<Output = io::Result<()>> {
            std::future::ready(Ok(()))
        }
    }

    #[test]
    fn vectored_writes_survive_short_writes() {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap();
        for max in [1, 3, 7, 64, 1000] {
            let parts: Vec<Bytes> = (0..40u8)
                .map(|i| Bytes::from(vec![i; (i as usize * 7) % 23 + 1]))
                .collect();
            let expected: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
            let mut s = BufStream::new(Trickle {
                out: Vec::new(),
                max,
            });
            let n = rt.block_on(s.write_vectored(parts)).unwrap();
            assert_eq!(n, expected.len());
            assert_eq!(s.get_ref().out, expected, "max {max}");
        }
    }
}
