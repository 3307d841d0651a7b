//! Streaming HTTP message bodies: Content-Length, chunked, read-until-close, and S3's
//! `aws-chunked` content coding layered on top of any of them.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use monoio::buf::{IoBuf, IoBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent};

use super::BufStream;
use crate::auth::{AuthError, BodyCheck};
use crate::error::{Error, ErrorKind, Side};
use crate::http::{Chunk, ChunkedDecoder, Header, Limits, ParseError};

/// Why a body could not be read to its end.
#[derive(Debug)]
pub enum BodyError {
    /// The socket failed.
    Io(io::Error),
    /// The framing (chunk sizes, CRLFs, aws-chunked lines) is malformed.
    Protocol(ParseError),
    /// The peer closed the connection before the body was complete.
    Closed,
    /// No progress within the body timeout.
    Timeout,
    /// The body does not match what its signature or checksum promised.
    Rejected(AuthError),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::Io(e) => write!(f, "body read failed: {e}"),
            BodyError::Protocol(e) => write!(f, "malformed body framing: {e}"),
            BodyError::Closed => f.write_str("connection closed before the body was complete"),
            BodyError::Timeout => f.write_str("body read timed out"),
            BodyError::Rejected(e) => write!(f, "body rejected: {}: {}", e.code(), e.message()),
        }
    }
}

impl std::error::Error for BodyError {}

impl BodyError {
    /// The data plane's error for this failure of a body sent by `side`.
    pub fn into_error(self, side: Side) -> Error {
        let context = "body read failed";
        match self {
            BodyError::Io(e) => Error::io(side, context, e),
            BodyError::Protocol(e) => Error::new(ErrorKind::Protocol, side, context).with_cause(e),
            BodyError::Closed => Error::new(ErrorKind::Closed, side, context),
            BodyError::Timeout => Error::new(ErrorKind::Timeout, side, context),
            e @ BodyError::Rejected(_) => {
                Error::new(ErrorKind::Protocol, Side::Client, "body rejected").with_cause(e)
            }
        }
    }
}

impl From<ParseError> for BodyError {
    fn from(e: ParseError) -> Self {
        BodyError::Protocol(e)
    }
}

enum State {
    Done,
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    UntilClose,
}

/// Reads one message body from a [`BufStream`], piece by piece, as the bytes arrive.
///
/// Pieces are zero-copy slices of the stream's read buffer. Bytes after the body (a pipelined
/// request) stay in the buffer.
pub struct BodyReader {
    state: State,
    received: u64,
}

impl BodyReader {
    /// A body with no bytes.
    pub fn empty() -> Self {
        Self {
            state: State::Done,
            received: 0,
        }
    }

    /// A body of exactly `len` bytes.
    pub fn length(len: u64) -> Self {
        Self {
            state: State::Length(len),
            received: 0,
        }
    }

    /// A body in chunked transfer coding.
    pub fn chunked(limits: &Limits) -> Self {
        Self {
            state: State::Chunked(Box::new(ChunkedDecoder::new(limits))),
            received: 0,
        }
    }

    /// A body that ends when the peer closes the connection (responses only).
    pub fn until_close() -> Self {
        Self {
            state: State::UntilClose,
            received: 0,
        }
    }

    /// True once the whole body has been read.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done | State::Length(0))
    }

    /// Payload bytes returned so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The next piece of the body, `None` at its end. Each read from the socket must make
    /// progress within `timeout`.
    pub async fn next<S: AsyncReadRent + AsyncWriteRent>(
        &mut self,
        stream: &mut BufStream<S>,
        timeout: Duration,
    ) -> Result<Option<Bytes>, BodyError> {
        loop {
            let buf = stream.buffer();
            match &mut self.state {
                State::Done => return Ok(None),
                State::Length(0) => {
                    self.state = State::Done;
                    return Ok(None);
                }
                State::Length(remaining) => {
                    if !buf.is_empty() {
                        let take = (buf.len() as u64).min(*remaining) as usize;
                        *remaining -= take as u64;
                        self.received += take as u64;
                        return Ok(Some(buf.split_to(take).freeze()));
                    }
                }
                State::Chunked(decoder) => match decoder.decode(buf)? {
                    Some(Chunk::Data(data)) => {
                        self.received += data.len() as u64;
                        return Ok(Some(data));
                    }
                    Some(Chunk::Start { .. }) => continue,
                    Some(Chunk::End) => {
                        self.state = State::Done;
                        return Ok(None);
                    }
                    None => {}
                },
                State::UntilClose => {
                    if !buf.is_empty() {
                        let data = buf.split().freeze();
                        self.received += data.len() as u64;
                        return Ok(Some(data));
                    }
                }
            }
            let n = match monoio::time::timeout(timeout, stream.fill()).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(BodyError::Io(e)),
                Err(_) => return Err(BodyError::Timeout),
            };
            if n == 0 {
                if matches!(self.state, State::UntilClose) {
                    self.state = State::Done;
                    return Ok(None);
                }
                return Err(BodyError::Closed);
            }
        }
    }

    /// True when the body can be read straight into the caller's memory with
    /// [`BodyReader::read_into`] (a Content-Length body).
    pub fn reads_into(&self) -> bool {
        matches!(self.state, State::Length(_) | State::Done)
    }

    /// Read the body's next bytes straight into `dst` (at most its `bytes_total` and what is
    /// left of the body): `Ok(0)` at the body's end. For bodies that
    /// [`BodyReader::reads_into`]; others get an `Unsupported` I/O error. Each read must make progress
    /// within `timeout`.
    ///
    /// `dst` comes back, with the result, unless the read timed out: then the kernel may
    /// still write into it, and it is dropped only when that read completes.
    pub async fn read_into<S: AsyncReadRent + AsyncWriteRent, T: IoBuf + IoBufMut>(
        &mut self,
        stream: &mut BufStream<S>,
        mut dst: T,
        timeout: Duration,
    ) -> (Result<usize, BodyError>, Option<T>) {
        let remaining = match self.state {
            State::Done | State::Length(0) => {
                self.state = State::Done;
                return (Ok(0), Some(dst));
            }
            State::Length(n) => n,
            _ => {
                let e = io::Error::new(
                    io::ErrorKind::Unsupported,
                    "only a Content-Length body is read into place",
                );
                return (Err(BodyError::Io(e)), Some(dst));
            }
        };
        let limit = (dst.bytes_total() as u64).min(remaining) as usize;
        let read = stream.read_into(dst.slice_mut(0..limit));
        let (res, slice) = match monoio::time::timeout(timeout, read).await {
            Ok(x) => x,
            Err(_) => return (Err(BodyError::Timeout), None),
        };
        let dst = slice.into_inner();
        match res {
            Ok(0) => (Err(BodyError::Closed), Some(dst)),
            Ok(n) => {
                self.state = State::Length(remaining - n as u64);
                self.received += n as u64;
                (Ok(n), Some(dst))
            }
            Err(e) => (Err(BodyError::Io(e)), Some(dst)),
        }
    }

    /// Read and discard the rest of the body.
    pub async fn drain<S: AsyncReadRent + AsyncWriteRent>(
        &mut self,
        stream: &mut BufStream<S>,
        timeout: Duration,
    ) -> Result<(), BodyError> {
        while self.next(stream, timeout).await?.is_some() {}
        Ok(())
    }
}

/// S3's `aws-chunked` content coding (`<hex>;chunk-signature=<sig>\r\n<data>\r\n ... 0...\r\n
/// <trailers>\r\n`) decoded on top of a transfer-level [`BodyReader`].
///
/// Holds at most one transfer piece plus a partial chunk line in memory.
pub struct AwsChunkedBody {
    inner: BodyReader,
    buf: BytesMut,
    decoder: ChunkedDecoder,
    decoded: u64,
    done: bool,
    check: BodyCheck,
}

impl AwsChunkedBody {
    /// Decode the aws-chunked payload carried by `inner`, checking it against `check` (chunk
    /// signatures, trailer signature, trailing checksum) as it streams.
    pub fn new(inner: BodyReader, limits: &Limits, check: BodyCheck) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            decoder: ChunkedDecoder::new(limits),
            decoded: 0,
            done: false,
            check,
        }
    }

    /// Decoded payload bytes returned so far.
    pub fn decoded(&self) -> u64 {
        self.decoded
    }

    /// True once the final chunk, its trailers and the transfer body have all been read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Trailing headers (for example `x-amz-checksum-crc32`), available once done.
    pub fn trailers(&self) -> &[Header] {
        self.decoder.trailers()
    }

    /// The next piece of decoded payload, `None` at its end.
    pub async fn next<S: AsyncReadRent + AsyncWriteRent>(
        &mut self,
        stream: &mut BufStream<S>,
        timeout: Duration,
    ) -> Result<Option<Bytes>, BodyError> {
        if self.done {
            return Ok(None);
        }
        loop {
            match self.decoder.decode(&mut self.buf)? {
                Some(Chunk::Data(data)) => {
                    self.decoded += data.len() as u64;
                    self.check.data(&data);
                    return Ok(Some(data));
                }
                Some(Chunk::Start { size, extension }) => self
                    .check
                    .chunk_start(size, &extension)
                    .map_err(BodyError::Rejected)?,
                Some(Chunk::End) => {
                    // Whatever follows the aws-chunked terminator inside the transfer body is
                    // not payload; the transfer body must still be consumed to keep framing.
                    self.inner.drain(stream, timeout).await?;
                    self.check
                        .end(self.decoder.trailers())
                        .map_err(BodyError::Rejected)?;
                    self.done = true;
                    return Ok(None);
                }
                None => match self.inner.next(stream, timeout).await? {
                    Some(piece) => self.buf.extend_from_slice(&piece),
                    None => return Err(BodyError::Closed),
                },
            }
        }
    }
}
