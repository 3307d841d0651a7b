//! A stream with an owned read buffer, for ownership-passing (io_uring) I/O.

use std::io;

use bytes::{Bytes, BytesMut};
use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use super::BytesVec;

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
}

impl<S> BufStream<S> {
    /// Wrap `io` with an empty read buffer.
    pub fn new(io: S) -> Self {
        Self {
            io,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
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

    /// Write all of `buf`.
    pub async fn write_all(&mut self, buf: Bytes) -> io::Result<()> {
        let (res, _) = self.io.write_all(buf).await;
        res.map(|_| ())
    }

    /// Write all of `bufs` with vectored writes (one syscall when the kernel takes it all).
    pub async fn write_vectored(&mut self, bufs: Vec<Bytes>) -> io::Result<usize> {
        let vec = BytesVec::new(bufs);
        if vec.is_empty() {
            return Ok(0);
        }
        let (res, _) = self.io.write_vectored_all(vec).await;
        res
    }

    /// Flush and shut down the write side.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.io.shutdown().await
    }
}
