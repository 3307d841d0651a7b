//! Writing heads and chunk framing. Bodies are never copied here: callers write the head
//! built here, then their `Bytes` slices, with one vectored write.

use bytes::{BufMut, Bytes, BytesMut};

/// The line terminator, also the terminator after each chunk's data.
pub const CRLF: &[u8] = b"\r\n";

/// The last chunk of a chunked body with no trailers: `0\r\n\r\n`.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// The standard reason phrase for `status` (RFC 9110 plus the codes S3 sends), or `""` for
/// codes without one; an empty reason is valid HTTP/1.1.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Appends `HTTP/1.1 {status} {reason}\r\n`, one `name: value\r\n` per header in order, and the
/// empty line to `out`.
///
/// The caller guarantees `status` is 100..=999, names are tokens and values hold no CR or LF
/// (they come from our own code or from heads this module parsed); debug builds assert it.
/// Framing headers (`Content-Length`, `Transfer-Encoding`) are written as given, never added.
pub fn encode_response_head<'a>(
    out: &mut BytesMut,
    status: u16,
    headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) {
    debug_assert!((100..=999).contains(&status), "status {status}");
    let reason = reason_phrase(status);
    out.reserve(256);
    out.put_slice(b"HTTP/1.1 ");
    let digits = [
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ];
    out.put_slice(&digits);
    out.put_u8(b' ');
    out.put_slice(reason.as_bytes());
    out.put_slice(CRLF);
    put_headers(out, headers);
}

/// Appends `{method} {target} HTTP/1.1\r\n`, the headers as for
/// [`encode_response_head`], and the empty line to `out`.
///
/// The caller guarantees `method` is a token and `target` is a valid request target without
/// spaces or line breaks; debug builds assert the latter.
pub fn encode_request_head<'a>(
    out: &mut BytesMut,
    method: &str,
    target: &str,
    headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
) {
    debug_assert!(
        !target.bytes().any(|b| matches!(b, b' ' | b'\r' | b'\n')),
        "target {target:?}"
    );
    out.reserve(method.len() + target.len() + 256);
    out.put_slice(method.as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    put_headers(out, headers);
}

fn put_headers<'a>(out: &mut BytesMut, headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) {
    for (name, value) in headers {
        // A CR or LF here would let a value inject headers: a bug in the caller, not input.
        debug_assert!(!name.is_empty() && !name.iter().any(|&b| b <= b' ' || b == b':'));
        debug_assert!(!value.iter().any(|&b| b == b'\r' || b == b'\n'));
        out.reserve(name.len() + value.len() + 4);
        out.put_slice(name);
        out.put_slice(b": ");
        out.put_slice(value);
        out.put_slice(CRLF);
    }
    out.put_slice(CRLF);
}

/// The chunk-size line for a chunk of `len` bytes: lowercase hex, no leading zeros, CRLF.
/// `len` 0 gives `0\r\n`, the start of the last chunk.
pub fn chunk_size_line(len: usize) -> Bytes {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 2 * std::mem::size_of::<usize>() + 2];
    let mut i = digits.len() - 2;
    digits[i..].copy_from_slice(CRLF);
    let mut n = len;
    loop {
        i -= 1;
        digits[i] = HEX[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    Bytes::copy_from_slice(&digits[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_head() {
        let mut out = BytesMut::new();
        let headers: [(&[u8], &[u8]); 2] = [(b"Content-Length", b"10"), (b"ETag", b"\"abc\"")];
        encode_response_head(&mut out, 206, headers);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nETag: \"abc\"\r\n\r\n"
        );
        let mut out = BytesMut::new();
        encode_response_head(&mut out, 599, []);
        assert_eq!(&out[..], b"HTTP/1.1 599 \r\n\r\n");
    }

    #[test]
    fn request_head() {
        let mut out = BytesMut::new();
        let headers: [(&[u8], &[u8]); 1] = [(b"Host", b"bucket.s3.amazonaws.com")];
        encode_request_head(&mut out, "GET", "/key?partNumber=1", headers);
        assert_eq!(
            &out[..],
            b"GET /key?partNumber=1 HTTP/1.1\r\nHost: bucket.s3.amazonaws.com\r\n\r\n"
        );
    }

    #[test]
    fn encoded_heads_parse_back() {
        let mut out = BytesMut::new();
        let headers: [(&[u8], &[u8]); 2] = [(b"Host", b"h"), (b"Transfer-Encoding", b"chunked")];
        encode_request_head(&mut out, "PUT", "/b/k", headers);
        let head = super::super::parse_request(&mut out, &Default::default())
            .unwrap()
            .unwrap();
        assert_eq!(head.framing(), super::super::BodyFraming::Chunked);
        assert!(out.is_empty());
    }

    #[test]
    fn chunk_lines() {
        assert_eq!(&chunk_size_line(0)[..], b"0\r\n");
        assert_eq!(&chunk_size_line(10)[..], b"a\r\n");
        assert_eq!(&chunk_size_line(0x10000)[..], b"10000\r\n");
        assert_eq!(
            &chunk_size_line(usize::MAX)[..],
            format!("{:x}\r\n", usize::MAX).as_bytes()
        );
        assert_eq!(LAST_CHUNK, b"0\r\n\r\n");
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(299), "");
    }
}
