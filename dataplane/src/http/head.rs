//! What request and response heads share: finding the end of a head, the strict line checks
//! httparse does not make, turning httparse's borrowed fields into `Bytes` slices, and reading
//! the framing headers (`Content-Length`, `Transfer-Encoding`, `Connection`).

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};

use super::{Header, ParseError};

/// Header slots kept on the stack; a larger `Limits::max_headers` falls back to the heap.
const STACK_HEADERS: usize = 128;

/// A byte range inside a frozen head, so accessors slice without holding extra `Bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// The span `sub` occupies in `base`; `sub` must be a subslice of `base` (or empty).
    pub(super) fn of(base: &[u8], sub: &[u8]) -> Span {
        if sub.is_empty() {
            return Span::default();
        }
        let start = sub.as_ptr() as usize - base.as_ptr() as usize;
        debug_assert!(start + sub.len() <= base.len());
        Span {
            start,
            end: start + sub.len(),
        }
    }

    /// A span `len` bytes long starting `offset` bytes into `self`.
    pub(super) fn sub(self, offset: usize, len: usize) -> Span {
        debug_assert!(self.start + offset + len <= self.end);
        Span {
            start: self.start + offset,
            end: self.start + offset + len,
        }
    }

    pub(super) fn is_empty(self) -> bool {
        self.start == self.end
    }

    pub(super) fn get(self, base: &[u8]) -> &[u8] {
        &base[self.start..self.end]
    }

    /// The spanned text; parsers only record spans over checked ASCII, so this is never lossy.
    pub(super) fn str(self, base: &[u8]) -> &str {
        std::str::from_utf8(self.get(base)).unwrap_or("")
    }
}

/// Drops empty lines before a start line: RFC 9112 §2.2 lets a server ignore them, and some
/// clients send a CRLF after a request body.
pub(super) fn skip_leading_crlf(buf: &mut BytesMut) {
    let n = buf
        .chunks_exact(2)
        .take_while(|pair| pair == b"\r\n")
        .count();
    buf.advance(n * 2);
}

/// Looks for the end of a head in the first `max_head` bytes of `buf` and returns its length
/// (through the empty line). Checks what httparse lets pass: every LF must follow a CR, and no
/// line after the start line may begin with whitespace (obs-fold). Those errors are raised as
/// soon as the offending bytes have arrived, complete head or not.
pub(super) fn scan_head(buf: &[u8], max_head: usize) -> Result<Option<usize>, ParseError> {
    let window = &buf[..buf.len().min(max_head)];
    let mut line_start = 0;
    for nl in memchr::memchr_iter(b'\n', window) {
        if nl == 0 || window[nl - 1] != b'\r' {
            return Err(ParseError::BareLf);
        }
        // `window[nl - 1]` is a CR, so the previous LF is before it: no underflow.
        if nl - 1 == line_start {
            return Ok(Some(nl + 1));
        }
        if line_start > 0 && is_ws(window[line_start]) {
            return Err(ParseError::ObsFold);
        }
        line_start = nl + 1;
    }
    if line_start > 0 && line_start < window.len() && is_ws(window[line_start]) {
        return Err(ParseError::ObsFold);
    }
    Ok(None)
}

/// Runs `f` with `n` uninitialised httparse header slots, on the stack when they fit.
pub(super) fn with_header_slots<'b, R>(
    n: usize,
    f: impl FnOnce(&mut [MaybeUninit<httparse::Header<'b>>]) -> R,
) -> R {
    if n <= STACK_HEADERS {
        let mut slots = [MaybeUninit::<httparse::Header<'b>>::uninit(); STACK_HEADERS];
        f(&mut slots[..n])
    } else {
        let mut slots = vec![MaybeUninit::<httparse::Header<'b>>::uninit(); n];
        f(&mut slots)
    }
}

/// httparse's fields as slices of `head`, which they borrow from: one refcount each, no copy.
pub(super) fn collect_headers(head: &Bytes, parsed: &[httparse::Header<'_>]) -> Vec<Header> {
    parsed
        .iter()
        .map(|h| Header {
            name: head.slice_ref(h.name.as_bytes()),
            value: head.slice_ref(h.value),
        })
        .collect()
}

/// Maps an httparse error that is not about the start line's method or target.
pub(super) fn map_httparse_error(e: httparse::Error) -> ParseError {
    match e {
        httparse::Error::HeaderName => ParseError::InvalidHeaderName,
        httparse::Error::HeaderValue => ParseError::InvalidHeaderValue,
        httparse::Error::NewLine => ParseError::Malformed,
        httparse::Error::Status => ParseError::InvalidStatus,
        httparse::Error::Token => ParseError::InvalidMethod,
        httparse::Error::TooManyHeaders => ParseError::TooManyHeaders,
        httparse::Error::Version => ParseError::InvalidVersion,
    }
}

/// What the framing headers of a message say, after the strictness checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BodyHeaders {
    /// The one `Content-Length`, if present.
    pub(super) content_length: Option<u64>,
    /// `Transfer-Encoding: chunked` is present (and is all there is).
    pub(super) chunked: bool,
}

/// Reads `Content-Length` and `Transfer-Encoding` strictly (RFC 9112 §6): one plain decimal
/// length, or one `Transfer-Encoding` that is exactly `chunked`, never both, and no
/// `Transfer-Encoding` in HTTP/1.0. `equal_lengths_ok` tolerates repeats of one equal length
/// (for origin responses; requests get no such slack).
pub(super) fn body_headers(
    headers: &[Header],
    version_minor: u8,
    equal_lengths_ok: bool,
) -> Result<BodyHeaders, ParseError> {
    let mut content_length = None;
    let mut te: Option<&[u8]> = None;
    let mut te_count = 0usize;
    for h in headers {
        if h.is("content-length") {
            if equal_lengths_ok {
                for part in h.value.split(|&b| b == b',') {
                    let n = parse_content_length(trim_ows(part))?;
                    if content_length.is_some_and(|prev| prev != n) {
                        return Err(ParseError::DuplicateContentLength);
                    }
                    content_length = Some(n);
                }
            } else {
                if content_length.is_some() || h.value.contains(&b',') {
                    return Err(ParseError::DuplicateContentLength);
                }
                content_length = Some(parse_content_length(&h.value)?);
            }
        } else if h.is("transfer-encoding") {
            te_count += 1;
            te = Some(&h.value);
        }
    }
    let Some(te) = te else {
        return Ok(BodyHeaders {
            content_length,
            chunked: false,
        });
    };
    if version_minor == 0 {
        return Err(ParseError::TransferEncodingInHttp10);
    }
    if content_length.is_some() {
        return Err(ParseError::ContentLengthWithTransferEncoding);
    }
    if te_count > 1 {
        return Err(ParseError::InvalidTransferEncoding);
    }
    check_transfer_encoding(te)?;
    Ok(BodyHeaders {
        content_length: None,
        chunked: true,
    })
}

/// `Ok` only for exactly `chunked` (any case). A well-formed list whose one `chunked` is last
/// (`gzip, chunked`) is valid HTTP we do not implement: 501. Anything else leaves the body
/// length undeterminable (RFC 9112 §6.3): 400.
fn check_transfer_encoding(value: &[u8]) -> Result<(), ParseError> {
    if value.eq_ignore_ascii_case(b"chunked") {
        return Ok(());
    }
    let codings: Vec<&[u8]> = value.split(|&b| b == b',').map(trim_ows).collect();
    let names_ok = codings.iter().all(|c| {
        // A coding may carry parameters (`gzip;q=1`); only its name must be a token here.
        let name = trim_ows(c.split(|&b| b == b';').next().unwrap_or(b""));
        is_token(name)
    });
    let chunked_count = codings
        .iter()
        .filter(|c| c.eq_ignore_ascii_case(b"chunked"))
        .count();
    let chunked_last = codings
        .last()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
    if names_ok && chunked_count == 1 && chunked_last {
        Err(ParseError::UnsupportedTransferEncoding)
    } else {
        Err(ParseError::InvalidTransferEncoding)
    }
}

/// A `Content-Length` value: 1 or more ASCII digits, fitting a `u64`. No sign, no spaces.
fn parse_content_length(value: &[u8]) -> Result<u64, ParseError> {
    if value.is_empty() {
        return Err(ParseError::InvalidContentLength);
    }
    value.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return Err(ParseError::InvalidContentLength);
        }
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(ParseError::InvalidContentLength)
    })
}

/// Whether any `Connection` field lists `token` (ASCII case-insensitive).
pub(super) fn connection_has(headers: &[Header], token: &str) -> bool {
    headers.iter().filter(|h| h.is("connection")).any(|h| {
        h.value
            .split(|&b| b == b',')
            .any(|t| trim_ows(t).eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Persistence per RFC 9112 §9.3: HTTP/1.1 persists unless `close`; HTTP/1.0 only with
/// `keep-alive` (and no `close`).
pub(super) fn persistent(headers: &[Header], version_minor: u8) -> bool {
    if connection_has(headers, "close") {
        return false;
    }
    version_minor >= 1 || connection_has(headers, "keep-alive")
}

/// A `Host` value (or absolute-form authority): `host[:port]` from letters, digits, `-._~`,
/// and `:[]` for ports and IPv6 literals. Narrower than RFC 3986 reg-name on purpose: commas,
/// `@`, `/` and percent signs in a host only ever serve to confuse routers.
pub(super) fn is_valid_host(value: &[u8]) -> bool {
    value.iter().all(|&b| {
        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':' | b'[' | b']')
    })
}

/// RFC 9110 `tchar`.
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// A non-empty run of `tchar`.
pub(super) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Space or horizontal tab.
pub(super) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing spaces and tabs.
pub(super) fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ws(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ws(b)).map_or(start, |i| i + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &'static str, value: &'static str) -> Header {
        Header {
            name: Bytes::from_static(name.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
        }
    }

    #[test]
    fn scan_finds_end_and_rejects_bare_lf_and_folding() {
        assert_eq!(scan_head(b"GET / HTTP/1.1\r\n\r\nxx", 100), Ok(Some(18)));
        assert_eq!(scan_head(b"GET / HTTP/1.1\r\nA: b\r\n", 100), Ok(None));
        assert_eq!(
            scan_head(b"GET / HTTP/1.1\nA: b\r\n", 100),
            Err(ParseError::BareLf)
        );
        assert_eq!(
            scan_head(b"GET / HTTP/1.1\r\n\tb", 100),
            Err(ParseError::ObsFold)
        );
        // Only the first `max_head` bytes are looked at.
        assert_eq!(scan_head(b"GET / HTTP/1.1\r\n\r\n", 17), Ok(None));
    }

    #[test]
    fn content_length_is_plain_digits() {
        assert_eq!(parse_content_length(b"0"), Ok(0));
        assert_eq!(parse_content_length(b"18446744073709551615"), Ok(u64::MAX));
        for bad in [
            &b""[..],
            b"+1",
            b"-1",
            b"1 ",
            b"0x10",
            b"18446744073709551616",
            b"1.0",
        ] {
            assert_eq!(
                parse_content_length(bad),
                Err(ParseError::InvalidContentLength)
            );
        }
    }

    #[test]
    fn response_lengths_may_repeat_one_value() {
        let same = [h("Content-Length", "5"), h("content-length", "5, 5")];
        assert_eq!(
            body_headers(&same, 1, true).unwrap().content_length,
            Some(5)
        );
        let differ = [h("Content-Length", "5"), h("content-length", "6")];
        assert_eq!(
            body_headers(&differ, 1, true),
            Err(ParseError::DuplicateContentLength)
        );
        assert_eq!(
            body_headers(&same, 1, false),
            Err(ParseError::DuplicateContentLength)
        );
    }

    #[test]
    fn connection_tokens() {
        let hs = [h("Connection", "Upgrade, Keep-Alive")];
        assert!(connection_has(&hs, "keep-alive"));
        assert!(persistent(&hs, 0));
        assert!(!persistent(&[h("connection", "close")], 1));
        assert!(!persistent(&[], 0));
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b"  "), b"");
    }
}
