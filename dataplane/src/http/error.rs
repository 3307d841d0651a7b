//! The framing parser's error: a small `Copy` enum that knows the status to answer with.
//!
//! Every variant means "this connection's framing can no longer be trusted": the server answers
//! [`ParseError::status`] with `Connection: close` and closes, and the origin client drops the
//! connection. Nothing here is ever matched by its message.

use std::fmt;

/// Why a request head, response head or chunked body was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// The head (request or status line plus header section) is longer than
    /// `Limits::max_head_bytes`.
    HeadTooLarge,
    /// More header fields than `Limits::max_headers` (or more trailer fields in a chunked body).
    TooManyHeaders,
    /// The request target is longer than `Limits::max_uri_bytes`.
    UriTooLong,
    /// A line feed not preceded by a carriage return.
    BareLf,
    /// A header line starting with a space or tab (obsolete line folding).
    ObsFold,
    /// The request method is not a token.
    InvalidMethod,
    /// The request target is not origin-form, absolute-form (`http://` / `https://`), or `*`
    /// with `OPTIONS`, or holds bytes outside visible ASCII.
    InvalidTarget,
    /// The HTTP version is neither `HTTP/1.0` nor `HTTP/1.1`.
    InvalidVersion,
    /// A header name is not a token, or whitespace precedes its colon.
    InvalidHeaderName,
    /// A header value holds a control character.
    InvalidHeaderValue,
    /// An HTTP/1.1 request without a `Host` header.
    MissingHost,
    /// More than one `Host` header.
    DuplicateHost,
    /// A `Host` header (or absolute-form authority) that is not `host[:port]`.
    InvalidHost,
    /// A `Content-Length` that is not a plain decimal `u64`.
    InvalidContentLength,
    /// More than one `Content-Length` (separate headers or a comma list); responses tolerate
    /// repeats of one equal value.
    DuplicateContentLength,
    /// Both `Content-Length` and `Transfer-Encoding`.
    ContentLengthWithTransferEncoding,
    /// A well-formed transfer-coding list that ends in one `chunked` but also names another
    /// coding (`gzip, chunked`): valid HTTP that rangecache does not implement (501).
    UnsupportedTransferEncoding,
    /// `Transfer-Encoding` other than a final, single `chunked`: `chunked, gzip`, `xchunked`,
    /// `chunked` twice, more than one `Transfer-Encoding` header, or a malformed list (400).
    InvalidTransferEncoding,
    /// `Transfer-Encoding` in an HTTP/1.0 message, whose framing is then unreliable.
    TransferEncodingInHttp10,
    /// A chunk size that is not 1 to 16 hex digits followed by an extension or CRLF.
    InvalidChunkSize,
    /// A chunk size of more than 16 hex digits (beyond `u64`).
    ChunkTooLarge,
    /// A chunk extension that is not `;name[=value]`.
    InvalidChunkExtension,
    /// A chunk-size line (size plus extensions) longer than the decoder's bound.
    ChunkLineTooLong,
    /// Chunk data not followed by CRLF.
    InvalidChunkTerminator,
    /// The trailer section of a chunked body is longer than `Limits::max_head_bytes`.
    TrailersTooLarge,
    /// A response status code outside 100..=999.
    InvalidStatus,
    /// Anything else that is not HTTP/1.1 framing.
    Malformed,
}

impl ParseError {
    /// The HTTP status a server answers this error with before closing: 414 for
    /// [`UriTooLong`](Self::UriTooLong), 431 for an oversized head or too many headers,
    /// 501 for [`UnsupportedTransferEncoding`](Self::UnsupportedTransferEncoding), 400
    /// otherwise.
    pub fn status(self) -> u16 {
        match self {
            Self::UriTooLong => 414,
            Self::HeadTooLarge | Self::TooManyHeaders => 431,
            Self::UnsupportedTransferEncoding => 501,
            _ => 400,
        }
    }

    /// A short human-readable description, fit for an error body or a log field.
    pub fn message(self) -> &'static str {
        match self {
            Self::HeadTooLarge => "message head too large",
            Self::TooManyHeaders => "too many header fields",
            Self::UriTooLong => "request target too long",
            Self::BareLf => "line feed without carriage return",
            Self::ObsFold => "obsolete line folding in header section",
            Self::InvalidMethod => "invalid request method",
            Self::InvalidTarget => "invalid request target",
            Self::InvalidVersion => "unsupported HTTP version",
            Self::InvalidHeaderName => "invalid header name",
            Self::InvalidHeaderValue => "invalid header value",
            Self::MissingHost => "missing Host header",
            Self::DuplicateHost => "more than one Host header",
            Self::InvalidHost => "invalid Host header",
            Self::InvalidContentLength => "invalid Content-Length",
            Self::DuplicateContentLength => "more than one Content-Length",
            Self::ContentLengthWithTransferEncoding => "both Content-Length and Transfer-Encoding",
            Self::UnsupportedTransferEncoding => "unsupported transfer coding",
            Self::InvalidTransferEncoding => "Transfer-Encoding is not a single final chunked",
            Self::TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 message",
            Self::InvalidChunkSize => "invalid chunk size",
            Self::ChunkTooLarge => "chunk size too large",
            Self::InvalidChunkExtension => "invalid chunk extension",
            Self::ChunkLineTooLong => "chunk size line too long",
            Self::InvalidChunkTerminator => "chunk data not followed by CRLF",
            Self::TrailersTooLarge => "trailer section too large",
            Self::InvalidStatus => "invalid response status",
            Self::Malformed => "malformed HTTP message",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(ParseError::UriTooLong.status(), 414);
        assert_eq!(ParseError::HeadTooLarge.status(), 431);
        assert_eq!(ParseError::TooManyHeaders.status(), 431);
        assert_eq!(ParseError::UnsupportedTransferEncoding.status(), 501);
        assert_eq!(ParseError::InvalidTransferEncoding.status(), 400);
        assert_eq!(ParseError::BareLf.status(), 400);
        assert_eq!(
            ParseError::DuplicateContentLength.to_string(),
            "more than one Content-Length"
        );
    }
}
