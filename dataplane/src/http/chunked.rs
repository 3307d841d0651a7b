//! One incremental decoder for HTTP `chunked` transfer coding and S3 `aws-chunked` content
//! coding, which share the wire format: `<hex-size>[;ext]\r\n<data>\r\n ... 0[;ext]\r\n
//! <trailer fields>\r\n`. aws-chunked puts `chunk-signature=<sig>` in each extension and its
//! checksums in trailers, so both are handed to the caller.

use bytes::{Buf, Bytes, BytesMut};

use super::head::{is_tchar, is_token, is_ws, trim_ows};
use super::{Header, Limits, ParseError};

/// Longest chunk-size line accepted, CRLF included. An aws-chunked line is about 90 bytes
/// (`10000;chunk-signature=` plus 64 hex digits); this leaves room for other extensions.
pub const MAX_CHUNK_LINE_BYTES: usize = 4096;

/// One event of a chunked body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Start of a chunk of `size` bytes with its raw extension (text after the first `;`,
    /// without it), possibly empty. The last chunk has `size == 0`.
    Start {
        /// Data bytes in this chunk.
        size: u64,
        /// The extension text as sent, e.g. `chunk-signature=ad80...`; empty if none.
        extension: Bytes,
    },
    /// A piece of the current chunk's data, never empty and never past the chunk's end.
    Data(Bytes),
    /// The body is complete: the last chunk, its trailers and the final CRLF are consumed.
    End,
}

/// Where the decoder is in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    SizeLine,
    Data { remaining: u64 },
    DataCrlf,
    Trailers,
    Done,
}

/// Incremental decoder of a chunked body, fed from the front of a read buffer.
///
/// Zero-copy: `Data` pieces and extensions are frozen splits of the caller's buffer. Work per
/// call is bounded: a line is searched at most once per byte received, and no line may exceed
/// [`MAX_CHUNK_LINE_BYTES`] (size lines) or the trailer budget (`Limits::max_head_bytes` for the
/// whole trailer section, `Limits::max_headers` fields).
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// Bytes at the front of the buffer already searched for the current line's LF.
    scanned: usize,
    trailer_budget: usize,
    max_trailers: usize,
    trailers: Vec<Header>,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body, bounded by `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            state: State::SizeLine,
            scanned: 0,
            trailer_budget: limits.max_head_bytes,
            max_trailers: limits.max_headers,
            trailers: Vec::new(),
        }
    }

    /// Takes the next event from the front of `buf`.
    ///
    /// `Ok(None)`: `buf` holds no complete event; append more bytes and call again (a partial
    /// line stays in `buf`). Emits `Start` for every chunk including the last (size 0), `Data`
    /// pieces as bytes arrive, then `End` once the trailers and the final CRLF are consumed.
    /// After `End`, every call returns `End` again and consumes nothing, so bytes that follow
    /// the body (a pipelined request) stay in `buf`. `Err`: the body's framing is broken; the
    /// connection must be closed. The error is the same however the input was split.
    ///
    /// Between calls the caller may only append to `buf` (it is the connection's read buffer):
    /// the decoder remembers how much of a partial line it has already searched.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Chunk>, ParseError> {
        loop {
            match self.state {
                State::SizeLine => return self.size_line(buf),
                State::Data { remaining } => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = usize::try_from(remaining).map_or(buf.len(), |r| r.min(buf.len()));
                    let rest = remaining - take as u64;
                    self.state = if rest == 0 {
                        State::DataCrlf
                    } else {
                        State::Data { remaining: rest }
                    };
                    return Ok(Some(Chunk::Data(buf.split_to(take).freeze())));
                }
                State::DataCrlf => {
                    match (buf.first(), buf.get(1)) {
                        (None, _) | (Some(b'\r'), None) => return Ok(None),
                        (Some(b'\r'), Some(b'\n')) => buf.advance(2),
                        _ => return Err(ParseError::InvalidChunkTerminator),
                    }
                    self.state = State::SizeLine;
                }
                State::Trailers => return self.trailer_section(buf),
                State::Done => return Ok(Some(Chunk::End)),
            }
        }
    }

    /// The trailer fields received after the last chunk (complete once `End` was returned).
    pub fn trailers(&self) -> &[Header] {
        &self.trailers
    }

    /// Whether `End` has been returned: the whole body is consumed.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Finds the LF ending the line at the front of `buf` within its first `limit` bytes.
    /// `Ok(None)` if more bytes are needed, `Err(())` if the line cannot fit in `limit`.
    fn find_line(&mut self, buf: &[u8], limit: usize) -> Result<Option<usize>, ()> {
        let window = &buf[..buf.len().min(limit)];
        let from = self.scanned.min(window.len());
        match memchr::memchr(b'\n', &window[from..]) {
            Some(i) => {
                self.scanned = 0;
                Ok(Some(from + i))
            }
            None if buf.len() >= limit => Err(()),
            None => {
                self.scanned = window.len();
                Ok(None)
            }
        }
    }

    fn size_line(&mut self, buf: &mut BytesMut) -> Result<Option<Chunk>, ParseError> {
        // Reject garbage at once instead of waiting for a line's worth of it. CR and LF are
        // left to the line checks so the error does not depend on how input was split.
        if let Some(&b) = buf.first() {
            if !b.is_ascii_hexdigit() && b != b'\r' && b != b'\n' {
                return Err(ParseError::InvalidChunkSize);
            }
        }
        let nl = match self.find_line(buf, MAX_CHUNK_LINE_BYTES) {
            Ok(Some(nl)) => nl,
            Ok(None) => return Ok(None),
            Err(()) => return Err(ParseError::ChunkLineTooLong),
        };
        if nl == 0 || buf[nl - 1] != b'\r' {
            return Err(ParseError::BareLf);
        }
        let (size, ext_start) = parse_size_line(&buf[..nl - 1])?;
        let extension = match ext_start {
            Some(start) => buf.split_to(nl + 1).freeze().slice(start..nl - 1),
            None => {
                buf.advance(nl + 1);
                Bytes::new()
            }
        };
        self.state = if size == 0 {
            State::Trailers
        } else {
            State::Data { remaining: size }
        };
        Ok(Some(Chunk::Start { size, extension }))
    }

    /// Consumes trailer lines until the empty line that ends the body (`End`) or until the
    /// buffer runs out (`None`, any partial line left in place).
    fn trailer_section(&mut self, buf: &mut BytesMut) -> Result<Option<Chunk>, ParseError> {
        loop {
            let nl = match self.find_line(buf, self.trailer_budget) {
                Ok(Some(nl)) => nl,
                Ok(None) => return Ok(None),
                Err(()) => return Err(ParseError::TrailersTooLarge),
            };
            if nl == 0 || buf[nl - 1] != b'\r' {
                return Err(ParseError::BareLf);
            }
            if nl == 1 {
                buf.advance(2);
                self.state = State::Done;
                return Ok(Some(Chunk::End));
            }
            if is_ws(buf[0]) {
                return Err(ParseError::ObsFold);
            }
            if self.trailers.len() >= self.max_trailers {
                return Err(ParseError::TooManyHeaders);
            }
            let (name_len, value) = parse_field(&buf[..nl - 1])?;
            // The line fit in the window, which is at most the budget: no underflow.
            self.trailer_budget -= nl + 1;
            let line = buf.split_to(nl + 1).freeze();
            self.trailers.push(Header {
                name: line.slice(..name_len),
                value: line.slice(value.0..value.1),
            });
        }
    }
}

/// Parses `<1-16 hex digits>[chunk-ext]` (the line without its CRLF). Returns the size and,
/// when there is an extension, the offset just past its first `;`.
fn parse_size_line(line: &[u8]) -> Result<(u64, Option<usize>), ParseError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(ParseError::InvalidChunkSize);
    }
    if digits > 16 {
        return Err(ParseError::ChunkTooLarge);
    }
    // 16 hex digits always fit a u64, so this cannot overflow.
    let size = line[..digits]
        .iter()
        .fold(0u64, |n, &b| (n << 4) | u64::from(hex_value(b)));
    let rest = &line[digits..];
    if rest.is_empty() {
        return Ok((size, None));
    }
    let bws = rest.iter().take_while(|&&b| is_ws(b)).count();
    if rest.get(bws) != Some(&b';') {
        return Err(ParseError::InvalidChunkSize);
    }
    check_extensions(&rest[bws..])?;
    Ok((size, Some(digits + bws + 1)))
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// RFC 9112 §7.1.1: `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`, where
/// BWS is optional spaces and tabs. `ext` starts at its first `;`.
fn check_extensions(mut ext: &[u8]) -> Result<(), ParseError> {
    const BAD: ParseError = ParseError::InvalidChunkExtension;
    let skip_ws = |s: &[u8]| -> usize { s.iter().take_while(|&&b| is_ws(b)).count() };
    while !ext.is_empty() {
        ext = &ext[skip_ws(ext)..];
        ext = ext.strip_prefix(b";").ok_or(BAD)?;
        ext = &ext[skip_ws(ext)..];
        let name = ext.iter().take_while(|&&b| is_tchar(b)).count();
        if name == 0 {
            return Err(BAD);
        }
        ext = &ext[name..];
        let ws = skip_ws(ext);
        if ext.get(ws) != Some(&b'=') {
            continue;
        }
        ext = &ext[ws + 1..];
        ext = &ext[skip_ws(ext)..];
        let value = if ext.first() == Some(&b'"') {
            quoted_string_len(ext).ok_or(BAD)?
        } else {
            ext.iter().take_while(|&&b| is_tchar(b)).count()
        };
        if value == 0 {
            return Err(BAD);
        }
        ext = &ext[value..];
    }
    Ok(())
}

/// Length of the quoted-string at the front of `s` (quotes included), if it is one.
fn quoted_string_len(s: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'"' => return Some(i + 1),
            b'\\'
                if s.get(i + 1)
                    .is_some_and(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) =>
            {
                i += 2
            }
            b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => i += 1,
            _ => return None,
        }
    }
    None
}

/// Parses a trailer field line (without CRLF) as `name ":" OWS value OWS`. Returns the name's
/// length and the value's range within the line.
fn parse_field(line: &[u8]) -> Result<(usize, (usize, usize)), ParseError> {
    let colon = memchr::memchr(b':', line).ok_or(ParseError::InvalidHeaderName)?;
    if !is_token(&line[..colon]) {
        return Err(ParseError::InvalidHeaderName);
    }
    let raw = &line[colon + 1..];
    if !raw.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
        return Err(ParseError::InvalidHeaderValue);
    }
    let value = trim_ows(raw);
    let start = if value.is_empty() {
        line.len()
    } else {
        value.as_ptr() as usize - line.as_ptr() as usize
    };
    Ok((colon, (start, start + value.len())))
}

#[cfg(test)]
mod tests;
