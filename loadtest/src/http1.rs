//! A buffered HTTP/1.1 connection shared by the simulator (server side) and the load
//! generator (client side): one reusable read buffer, heads parsed in place with `httparse`
//! by the caller, bodies handed to a sink slice by slice as they arrive (never collected,
//! never copied past the read buffer).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A TCP stream with one read buffer.
#[derive(Debug)]
pub struct BufConn {
    /// The socket, for writes and socket options.
    pub stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl BufConn {
    /// Wrap `stream` with a read buffer of `capacity` bytes (also the largest head accepted).
    pub fn new(stream: TcpStream, capacity: usize) -> Self {
        BufConn {
            stream,
            buf: vec![0; capacity],
            start: 0,
            end: 0,
        }
    }

    /// The bytes read but not consumed yet.
    pub fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Mark `n` buffered bytes as used.
    pub fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.end - self.start);
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Read more bytes into the buffer; returns how many (0 at end of stream). Fails when the
    /// buffer is full of unconsumed bytes (a head larger than the buffer).
    pub async fn fill(&mut self) -> io::Result<usize> {
        if self.end == self.buf.len() {
            if self.start == 0 {
                return Err(invalid("message head larger than the read buffer"));
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = self.stream.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// Read a body of exactly `len` bytes, handing each piece to `sink` as it arrives.
    pub async fn read_body(&mut self, mut len: u64, mut sink: impl FnMut(&[u8])) -> io::Result<()> {
        while len > 0 {
            if self.start == self.end && self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let take = (self.end - self.start).min(usize::try_from(len).unwrap_or(usize::MAX));
            sink(&self.buf[self.start..self.start + take]);
            self.consume(take);
            len -= take as u64;
        }
        Ok(())
    }

    /// Read one line ending in CRLF (without it); for chunk-size lines and trailers.
    async fn read_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buffered().windows(2).position(|w| w == b"\r\n") {
                let line = self.buffered()[..i].to_vec();
                self.consume(i + 2);
                return Ok(line);
            }
            if self.fill().await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Read a `Transfer-Encoding: chunked` body (trailers discarded), handing the data to
    /// `sink`.
    pub async fn read_chunked(&mut self, mut sink: impl FnMut(&[u8])) -> io::Result<()> {
        loop {
            let line = self.read_line().await?;
            let hex = line.split(|&b| b == b';').next().unwrap_or_default();
            let hex = std::str::from_utf8(hex).map_err(|_| invalid("chunk size"))?;
            let size = u64::from_str_radix(hex.trim(), 16).map_err(|_| invalid("chunk size"))?;
            if size == 0 {
                while !self.read_line().await?.is_empty() {}
                return Ok(());
            }
            self.read_body(size, &mut sink).await?;
            if !self.read_line().await?.is_empty() {
                return Err(invalid("chunk not followed by CRLF"));
            }
        }
    }

    /// Write all of `data`.
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data).await
    }
}

/// The value of header `name` (lowercase) in an owned header list.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}
