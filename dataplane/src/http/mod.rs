//! HTTP/1.1 framing for the data plane: request and response heads, chunked bodies (HTTP
//! `chunked` and S3 `aws-chunked` both), and the encoders for what rangecache writes.
//!
//! Pure and I/O-free: every function takes the bytes read so far and says what they hold. The
//! parsers find the end of a head themselves, check it strictly (the checks are the defences
//! against request smuggling: conflicting framing headers, bare LF, obs-fold, oversized heads
//! all fail with a [`ParseError`]), then freeze the head once and hand out `Bytes` slices of it,
//! so no header is copied. This module depends only on `std`, `bytes`, `httparse`, `memchr` and
//! `httpdate`.

mod chunked;
mod date;
mod encode;
mod error;
mod head;
mod method;
mod request;
mod response;

use bytes::Bytes;

pub use chunked::{Chunk, ChunkedDecoder, MAX_CHUNK_LINE_BYTES};
pub use date::http_date;
pub use encode::{
    chunk_size_line, encode_request_head, encode_response_head, reason_phrase, CRLF, LAST_CHUNK,
};
pub use error::ParseError;
pub use method::Method;
pub use request::{parse_request, BodyFraming, RequestHead};
pub use response::{parse_response, ResponseFraming, ResponseHead};

/// Bounds on what a peer may make the parsers hold or scan.
///
/// The parsers never look past `max_head_bytes` of a buffer, so a peer that never finishes its
/// head costs at most that much memory and scanning per read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest head (start line, header fields and the empty line) accepted; also bounds a
    /// chunked body's trailer section. Exceeding it is [`ParseError::HeadTooLarge`] (431).
    pub max_head_bytes: usize,
    /// Most header fields accepted in one head (and trailer fields in one chunked body).
    /// Exceeding it is [`ParseError::TooManyHeaders`] (431).
    pub max_headers: usize,
    /// Longest request target accepted. Exceeding it is [`ParseError::UriTooLong`] (414).
    pub max_uri_bytes: usize,
}

impl Limits {
    /// The defaults: a 64 KiB head, 128 header fields, a 16 KiB request target. S3 clients send
    /// about 1 KiB heads with a dozen fields; presigned URLs stay well under 16 KiB.
    pub const DEFAULT: Limits = Limits {
        max_head_bytes: 64 * 1024,
        max_headers: 128,
        max_uri_bytes: 16 * 1024,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One header field: name and value are slices of the frozen head (no copy), the value with
/// surrounding whitespace removed. Names keep the case the peer sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name, a non-empty token (ASCII).
    pub name: Bytes,
    /// The field value without leading or trailing spaces and tabs; may hold obs-text bytes.
    pub value: Bytes,
}

impl Header {
    /// The name as text; names are tokens, so this is always their full content.
    pub fn name_str(&self) -> &str {
        std::str::from_utf8(&self.name).unwrap_or("")
    }

    /// The value as text, or `None` if it is not UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }

    /// Whether this field is called `name`, compared ASCII case-insensitively.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }
}

/// The first header called `name` (ASCII case-insensitive), if any.
pub fn find_header<'a>(headers: &'a [Header], name: &str) -> Option<&'a Header> {
    headers.iter().find(|h| h.is(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_header_ignores_case() {
        let headers = vec![
            Header {
                name: Bytes::from_static(b"Host"),
                value: Bytes::from_static(b"a"),
            },
            Header {
                name: Bytes::from_static(b"X-Amz-Date"),
                value: Bytes::from_static(b"b"),
            },
        ];
        assert_eq!(
            find_header(&headers, "x-amz-date").unwrap().value_str(),
            Some("b")
        );
        assert_eq!(find_header(&headers, "HOST").unwrap().name_str(), "Host");
        assert!(find_header(&headers, "range").is_none());
        assert_eq!(Limits::default().max_head_bytes, 65536);
    }
}
