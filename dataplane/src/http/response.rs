//! Origin response heads, for the proxy's origin client: the same strictness as requests,
//! because a confused origin connection would hand one client's bytes to another.

use bytes::{Bytes, BytesMut};

use super::head::{self, Span};
use super::{find_header, Header, Limits, ParseError};

/// How the body of a response is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: the response to a HEAD request, a 1xx, 204 or 304.
    None,
    /// Exactly this many body bytes follow the head.
    Length(u64),
    /// A chunked body follows; read it with [`ChunkedDecoder`](super::ChunkedDecoder).
    Chunked,
    /// No length given: the body runs until the origin closes the connection, which then
    /// cannot be reused.
    UntilClose,
}

/// A parsed response head. Owns the frozen head bytes; every accessor slices them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    head: Bytes,
    status: u16,
    reason: Span,
    version_minor: u8,
    headers: Vec<Header>,
    framing: ResponseFraming,
    keep_alive: bool,
}

impl ResponseHead {
    /// The three-digit status code, 100..=999.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The reason phrase; `""` when absent or when it is not visible ASCII.
    pub fn reason(&self) -> &str {
        self.reason.str(&self.head)
    }

    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub fn version_minor(&self) -> u8 {
        self.version_minor
    }

    /// All header fields in the order received.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The value of the first header called `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        find_header(&self.headers, name).map(|h| &h.value[..])
    }

    /// Like [`header`](Self::header), `None` also when the value is not UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name).and_then(Header::value_str)
    }

    /// How the body is delimited, given whether the request was a HEAD.
    pub fn framing(&self) -> ResponseFraming {
        self.framing
    }

    /// Whether the connection may carry another request after this body: as for requests
    /// (HTTP/1.1 unless `close`, HTTP/1.0 only with `keep-alive`), and never when the body runs
    /// until close.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether this is an interim (1xx) response; the final response follows it.
    pub fn is_informational(&self) -> bool {
        (100..200).contains(&self.status)
    }

    /// The head's length in bytes, from the status line through the empty line.
    pub fn head_len(&self) -> usize {
        self.head.len()
    }

    /// The frozen head bytes, as received.
    pub fn as_bytes(&self) -> &Bytes {
        &self.head
    }
}

/// Parses a response head from the front of `buf`, for a request that was a HEAD or not.
///
/// `Ok(None)`: incomplete, read more and call again. `Ok(Some(head))`: the head was split off
/// the front of `buf` and frozen, leaving the body in `buf`. A 1xx head is returned like any
/// other (with [`ResponseFraming::None`]); the caller reads the final response after it.
/// `Err`: the connection's framing is lost, close it; `buf` is then unspecified.
///
/// The rules are the request rules (no bare LF, no obs-fold, no whitespace before a colon,
/// one valid `Content-Length` or a single final `chunked`, never both, no `Transfer-Encoding`
/// in HTTP/1.0), except that repeats of one equal `Content-Length` are tolerated.
pub fn parse_response(
    buf: &mut BytesMut,
    limits: &Limits,
    request_was_head: bool,
) -> Result<Option<ResponseHead>, ParseError> {
    head::skip_leading_crlf(buf);
    let Some(head_len) = head::scan_head(buf, limits.max_head_bytes)? else {
        if buf.len() >= limits.max_head_bytes {
            return Err(ParseError::HeadTooLarge);
        }
        return Ok(None);
    };
    let head = buf.split_to(head_len).freeze();
    parse_frozen(head, limits, request_was_head).map(Some)
}

fn parse_frozen(
    head: Bytes,
    limits: &Limits,
    request_was_head: bool,
) -> Result<ResponseHead, ParseError> {
    let base: &[u8] = &head;
    let (status, reason, version_minor, headers) =
        head::with_header_slots(limits.max_headers, |slots| {
            let mut res = httparse::Response::new(&mut []);
            // Default config: no obs-fold, no space before a colon, no lenient delimiters.
            match httparse::ParserConfig::default()
                .parse_response_with_uninit_headers(&mut res, base, slots)
            {
                Ok(httparse::Status::Complete(n)) if n == base.len() => {}
                Ok(_) => return Err(ParseError::Malformed),
                Err(e) => return Err(head::map_httparse_error(e)),
            }
            let (Some(code), Some(reason), Some(version)) = (res.code, res.reason, res.version)
            else {
                return Err(ParseError::Malformed);
            };
            // httparse admits obs-text in the phrase; `reason()` promises ASCII text.
            let reason = if reason
                .bytes()
                .all(|b| b == b'\t' || b == b' ' || b.is_ascii_graphic())
            {
                Span::of(base, reason.as_bytes())
            } else {
                Span::default()
            };
            Ok((
                code,
                reason,
                version,
                head::collect_headers(&head, res.headers),
            ))
        })?;
    if !(100..=999).contains(&status) {
        return Err(ParseError::InvalidStatus);
    }

    let body = head::body_headers(&headers, version_minor, true)?;
    let no_body =
        request_was_head || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = if no_body {
        ResponseFraming::None
    } else if body.chunked {
        ResponseFraming::Chunked
    } else if let Some(n) = body.content_length {
        ResponseFraming::Length(n)
    } else {
        ResponseFraming::UntilClose
    };
    let keep_alive =
        framing != ResponseFraming::UntilClose && head::persistent(&headers, version_minor);

    Ok(ResponseHead {
        head,
        status,
        reason,
        version_minor,
        headers,
        framing,
        keep_alive,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8], was_head: bool) -> Result<Option<ResponseHead>, ParseError> {
        parse_response(&mut BytesMut::from(input), &Limits::default(), was_head)
    }

    fn ok(input: &[u8]) -> ResponseHead {
        parse(input, false).unwrap().unwrap()
    }

    fn err(input: &[u8]) -> ParseError {
        parse(input, false).unwrap_err()
    }

    #[test]
    fn s3_partial_content() {
        let raw = b"HTTP/1.1 206 Partial Content\r\n\
x-amz-id-2: Zm9v\r\n\
x-amz-request-id: 4442587FB7D0A2F9\r\n\
Last-Modified: Wed, 12 Oct 2009 17:50:00 GMT\r\n\
ETag: \"fba9dede5f27731c9771645a39863328\"\r\n\
Content-Range: bytes 0-9/443\r\n\
Content-Length: 10\r\n\
Server: AmazonS3\r\n\r\n0123456789";
        let mut buf = BytesMut::from(&raw[..]);
        let head = parse_response(&mut buf, &Limits::default(), false)
            .unwrap()
            .unwrap();
        assert_eq!(&buf[..], b"0123456789");
        assert_eq!((head.status(), head.reason()), (206, "Partial Content"));
        assert_eq!(head.framing(), ResponseFraming::Length(10));
        assert_eq!(
            head.header_str("etag"),
            Some("\"fba9dede5f27731c9771645a39863328\"")
        );
        assert!(head.keep_alive());
        assert_eq!(head.headers().len(), 7);
        assert_eq!(head.head_len(), raw.len() - 10);
    }

    #[test]
    fn framing_by_status_and_method() {
        let with_len = b"HTTP/1.1 200 OK\r\nContent-Length: 443\r\n\r\n";
        assert_eq!(
            parse(with_len, true).unwrap().unwrap().framing(),
            ResponseFraming::None
        );
        assert_eq!(ok(with_len).framing(), ResponseFraming::Length(443));
        for status in ["100 Continue", "204 No Content", "304 Not Modified"] {
            let raw = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
            assert_eq!(
                ok(raw.as_bytes()).framing(),
                ResponseFraming::None,
                "{status}"
            );
        }
        assert!(ok(b"HTTP/1.1 100 Continue\r\n\r\n").is_informational());
        let chunked = ok(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(chunked.framing(), ResponseFraming::Chunked);
        let until_close = ok(b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!(until_close.framing(), ResponseFraming::UntilClose);
        assert!(!until_close.keep_alive());
    }

    #[test]
    fn keep_alive_rules() {
        assert!(
            !ok(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").keep_alive()
        );
        assert!(!ok(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").keep_alive());
        let kept = ok(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
        assert!(kept.keep_alive());
        assert_eq!(kept.version_minor(), 0);
    }

    #[test]
    fn reason_is_optional() {
        let head = ok(b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n");
        assert_eq!((head.status(), head.reason()), (404, ""));
        assert_eq!(
            ok(b"HTTP/1.1 200 \xffK\r\nContent-Length: 0\r\n\r\n").reason(),
            ""
        );
    }

    #[test]
    fn content_length_rules() {
        let equal = ok(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(equal.framing(), ResponseFraming::Length(3));
        assert_eq!(
            ok(b"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n").framing(),
            ResponseFraming::Length(3)
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            ParseError::DuplicateContentLength
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n"),
            ParseError::InvalidContentLength
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ParseError::ContentLengthWithTransferEncoding
        );
    }

    #[test]
    fn transfer_encoding_rules() {
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            ParseError::UnsupportedTransferEncoding
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            ParseError::InvalidTransferEncoding
        );
        assert_eq!(
            err(b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ParseError::TransferEncodingInHttp10
        );
    }

    #[test]
    fn strict_lines() {
        assert_eq!(
            err(b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
            ParseError::BareLf
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"),
            ParseError::BareLf
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"),
            ParseError::ObsFold
        );
        assert_eq!(
            err(b"HTTP/1.1 200 OK\r\nX : a\r\n\r\n"),
            ParseError::InvalidHeaderName
        );
    }

    #[test]
    fn status_codes() {
        assert_eq!(err(b"HTTP/1.1 099 Low\r\n\r\n"), ParseError::InvalidStatus);
        assert_eq!(err(b"HTTP/1.1 20 OK\r\n\r\n"), ParseError::InvalidStatus);
        assert_eq!(err(b"HTTP/1.1 2000 OK\r\n\r\n"), ParseError::InvalidStatus);
        assert_eq!(err(b"HTTP/1.1 abc OK\r\n\r\n"), ParseError::InvalidStatus);
        assert_eq!(err(b"HTTP/2 200 OK\r\n\r\n"), ParseError::InvalidVersion);
        assert_eq!(
            ok(b"HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n").status(),
            999
        );
    }

    #[test]
    fn limits() {
        let small = Limits {
            max_head_bytes: 32,
            max_headers: 1,
            ..Limits::default()
        };
        let parse = |s: &[u8]| parse_response(&mut BytesMut::from(s), &small, false);
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n").unwrap_err(),
            ParseError::TooManyHeaders
        );
        assert_eq!(
            parse(b"HTTP/1.1 200 OK\r\nA: 12345678901234567890\r\n\r\n").unwrap_err(),
            ParseError::HeadTooLarge
        );
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\nA: 1\r\n"), Ok(None));
    }
}
