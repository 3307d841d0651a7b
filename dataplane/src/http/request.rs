//! Request heads: find, check strictly, freeze once, slice.

use bytes::{Bytes, BytesMut};

use super::head::{self, is_tchar, Span};
use super::{find_header, Header, Limits, Method, ParseError};

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No `Content-Length` and no `Transfer-Encoding`: the request has no body.
    None,
    /// Exactly this many body bytes follow the head.
    Length(u64),
    /// A chunked body follows; read it with [`ChunkedDecoder`](super::ChunkedDecoder).
    Chunked,
}

/// A parsed request head. Owns the frozen head bytes; every accessor slices them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    head: Bytes,
    method: Span,
    verb: Method,
    target: Span,
    path: Span,
    query: Span,
    authority: Option<Span>,
    host: Option<Span>,
    version_minor: u8,
    headers: Vec<Header>,
    framing: BodyFraming,
    keep_alive: bool,
    expects_continue: bool,
}

impl RequestHead {
    /// The method token as sent (case-sensitive, e.g. `GET`).
    pub fn method(&self) -> &str {
        self.method.str(&self.head)
    }

    /// The method, parsed once with the head.
    pub fn verb(&self) -> Method {
        self.verb
    }

    /// The request target exactly as sent: origin-form (`/bucket/key?x`), absolute-form
    /// (`http://host/bucket/key?x`) or `*`.
    pub fn target(&self) -> &str {
        self.target.str(&self.head)
    }

    /// The target's path, before any `?`, still percent-encoded. For absolute-form this is the
    /// path after the authority (`/` when the target has none); for `*` it is `*`.
    pub fn path(&self) -> &str {
        if self.path.is_empty() {
            "/"
        } else {
            self.path.str(&self.head)
        }
    }

    /// The target's query, after the first `?` and still encoded; `""` if there is none.
    pub fn query(&self) -> &str {
        self.query.str(&self.head)
    }

    /// The authority of an absolute-form target (`host[:port]`), `None` for other forms.
    pub fn target_authority(&self) -> Option<&str> {
        self.authority.map(|s| s.str(&self.head))
    }

    /// The host the request is for: the absolute-form authority if there is one (RFC 9112
    /// §3.2.2 says it overrides `Host`), else the one `Host` header. `None` only for an
    /// HTTP/1.0 request without `Host`.
    pub fn host(&self) -> Option<&str> {
        self.host.map(|s| s.str(&self.head))
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

    /// How the body is delimited; already checked for conflicts.
    pub fn framing(&self) -> BodyFraming {
        self.framing
    }

    /// Whether the client lets the connection persist after this exchange: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Whether an HTTP/1.1 client sent `Expect: 100-continue` and waits for a `100 Continue`
    /// before its body. Always false for HTTP/1.0, which must be ignored (RFC 9110 §10.1.1).
    pub fn expects_continue(&self) -> bool {
        self.expects_continue
    }

    /// The head's length in bytes, from the start line through the empty line.
    pub fn head_len(&self) -> usize {
        self.head.len()
    }

    /// The frozen head bytes, as received (after any leading empty lines).
    pub fn as_bytes(&self) -> &Bytes {
        &self.head
    }
}

/// Parses a request head from the front of `buf`.
///
/// `Ok(None)`: the head is not complete yet; read more into `buf` and call again (leading empty
/// lines may already have been dropped from `buf`). `Ok(Some(head))`: the head was split off
/// the front of `buf` and frozen, leaving the body or the next pipelined request in `buf`.
/// `Err`: answer [`ParseError::status`] and close; `buf` is then unspecified.
///
/// Errors are raised as soon as the bytes that prove them have arrived: a bare LF or obs-fold
/// in a partial head, a request target longer than `max_uri_bytes` in a partial request line,
/// `HeadTooLarge` once `max_head_bytes` have arrived without the end of the head. Each call
/// scans at most `max_head_bytes` of `buf` again, so feed it after reads, not per byte.
pub fn parse_request(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, ParseError> {
    head::skip_leading_crlf(buf);
    let Some(head_len) = head::scan_head(buf, limits.max_head_bytes)? else {
        check_target_len(&buf[..buf.len().min(limits.max_head_bytes)], limits)?;
        if buf.len() >= limits.max_head_bytes {
            return Err(ParseError::HeadTooLarge);
        }
        return Ok(None);
    };
    check_target_len(&buf[..head_len], limits)?;
    let head = buf.split_to(head_len).freeze();
    parse_frozen(head, limits).map(Some)
}

/// Fails with `UriTooLong` if the (possibly partial) request line at the front of `buf` already
/// holds a target longer than the limit.
fn check_target_len(buf: &[u8], limits: &Limits) -> Result<(), ParseError> {
    let line = &buf[..memchr::memchr(b'\n', buf).unwrap_or(buf.len())];
    let Some(sp) = memchr::memchr(b' ', line) else {
        return Ok(());
    };
    let rest = &line[sp + 1..];
    // Stop at CR too, so a partial line ending in CR measures what the complete line will.
    let target_len = memchr::memchr2(b' ', b'\r', rest).unwrap_or(rest.len());
    if target_len > limits.max_uri_bytes {
        return Err(ParseError::UriTooLong);
    }
    Ok(())
}

/// Parses a complete head (ending in the empty line) that `scan_head` already checked.
fn parse_frozen(head: Bytes, limits: &Limits) -> Result<RequestHead, ParseError> {
    let base: &[u8] = &head;
    let (method, target, version_minor, headers) =
        head::with_header_slots(limits.max_headers, |slots| {
            let mut req = httparse::Request::new(&mut []);
            match req.parse_with_uninit_headers(base, slots) {
                Ok(httparse::Status::Complete(n)) if n == base.len() => {}
                Ok(_) => return Err(ParseError::Malformed),
                Err(httparse::Error::Token) => return Err(classify_token_error(base)),
                Err(httparse::Error::NewLine) => return Err(classify_newline_error(base)),
                Err(e) => return Err(head::map_httparse_error(e)),
            }
            let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version)
            else {
                return Err(ParseError::Malformed);
            };
            Ok((
                Span::of(base, method.as_bytes()),
                Span::of(base, target.as_bytes()),
                version,
                head::collect_headers(&head, req.headers),
            ))
        })?;

    let method_str = method.get(base);
    let verb = Method::parse(method_str);
    let target_bytes = target.get(base);
    if target_bytes.len() > limits.max_uri_bytes {
        return Err(ParseError::UriTooLong);
    }
    let parts = split_target(method_str, target_bytes)?;
    let path = target.sub(parts.path.0, parts.path.1);
    let query = target.sub(parts.query.0, parts.query.1);
    let authority = parts.authority.map(|(o, l)| target.sub(o, l));

    let mut host_header = None;
    for h in headers.iter().filter(|h| h.is("host")) {
        if host_header.is_some() {
            return Err(ParseError::DuplicateHost);
        }
        if !head::is_valid_host(&h.value) {
            return Err(ParseError::InvalidHost);
        }
        host_header = Some(Span::of(base, &h.value));
    }
    if host_header.is_none() && version_minor == 1 {
        return Err(ParseError::MissingHost);
    }
    let host = authority.or(host_header);

    let body = head::body_headers(&headers, version_minor, false)?;
    let framing = match (body.chunked, body.content_length) {
        (true, _) => BodyFraming::Chunked,
        (false, Some(n)) => BodyFraming::Length(n),
        (false, None) => BodyFraming::None,
    };
    let keep_alive = head::persistent(&headers, version_minor);
    let expects_continue = version_minor == 1
        && headers
            .iter()
            .any(|h| h.is("expect") && h.value.eq_ignore_ascii_case(b"100-continue"));

    Ok(RequestHead {
        head,
        method,
        verb,
        target,
        path,
        query,
        authority,
        host,
        version_minor,
        headers,
        framing,
        keep_alive,
        expects_continue,
    })
}

/// httparse reports a bad method, a bad target and a missing version all as `Token`; tell
/// them apart for the error answer.
fn classify_token_error(head: &[u8]) -> ParseError {
    let line = head.split(|&b| b == b'\r').next().unwrap_or(b"");
    let method_len = line.iter().take_while(|&&b| is_tchar(b)).count();
    match line.get(method_len..) {
        Some([b' ', rest @ ..]) if method_len > 0 => {
            if rest.contains(&b' ') {
                ParseError::InvalidTarget
            } else {
                ParseError::InvalidVersion
            }
        }
        _ => ParseError::InvalidMethod,
    }
}

/// httparse reports `HTTP/1.10` as a bad line ending after `HTTP/1.1`; call that a version.
fn classify_newline_error(head: &[u8]) -> ParseError {
    let line = head.split(|&b| b == b'\r').next().unwrap_or(b"");
    if line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0") {
        ParseError::Malformed
    } else {
        ParseError::InvalidVersion
    }
}

/// Offsets (start, len) into a request target.
struct TargetParts {
    path: (usize, usize),
    query: (usize, usize),
    authority: Option<(usize, usize)>,
}

/// Accepts origin-form, absolute-form with an `http`/`https` scheme (any case), and `*` for
/// `OPTIONS`; everything else (authority-form, other schemes, fragments, non-ASCII bytes) is
/// `InvalidTarget`.
fn split_target(method: &[u8], target: &[u8]) -> Result<TargetParts, ParseError> {
    // httparse admits `#` and bytes >= 0x80; a target that is not visible ASCII without a
    // fragment is not one a router should see. (A non-short-circuiting fold vectorises.)
    let visible = target
        .iter()
        .fold(true, |ok, &b| ok & b.is_ascii_graphic() & (b != b'#'));
    if target.is_empty() || !visible {
        return Err(ParseError::InvalidTarget);
    }
    if target == b"*" {
        if method != b"OPTIONS" {
            return Err(ParseError::InvalidTarget);
        }
        return Ok(TargetParts {
            path: (0, 1),
            query: (0, 0),
            authority: None,
        });
    }
    let (authority, path_start) = if target[0] == b'/' {
        (None, 0)
    } else {
        let scheme_len = if starts_with_ignore_case(target, b"http://") {
            7
        } else if starts_with_ignore_case(target, b"https://") {
            8
        } else {
            return Err(ParseError::InvalidTarget);
        };
        let rest = &target[scheme_len..];
        let auth_len = rest
            .iter()
            .position(|&b| b == b'/' || b == b'?')
            .unwrap_or(rest.len());
        let auth = &rest[..auth_len];
        if auth.is_empty() || !head::is_valid_host(auth) {
            return Err(ParseError::InvalidHost);
        }
        (Some((scheme_len, auth_len)), scheme_len + auth_len)
    };
    let after = &target[path_start..];
    let (path_len, query) = match memchr::memchr(b'?', after) {
        Some(q) => (q, (path_start + q + 1, after.len() - q - 1)),
        None => (after.len(), (target.len(), 0)),
    };
    Ok(TargetParts {
        path: (path_start, path_len),
        query,
        authority,
    })
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests;
