//! The SigV4 canonical request and string to sign, rebuilt from a request as received.
//!
//! Everything here is a pure function of bytes. The canonical request is written into one
//! buffer (one allocation) and hashed once; query components that are already in canonical
//! form are borrowed, not re-encoded.

use crate::s3::uri::hex_value;
use std::borrow::Cow;

use ring::{digest, hmac};

use super::RequestParts;
use crate::http::Header;

/// The algorithm line of a request's string to sign.
pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Hex SHA-256 of the empty string, the payload hash of a request without a body and the
/// first hash line of every aws-chunked chunk's string to sign.
pub(crate) const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The unreserved set of RFC 3986, which SigV4 never percent-encodes.
#[inline]
pub(crate) fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of a 32-byte digest or signature.
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (i, b) in bytes.iter().enumerate() {
        out[2 * i] = HEX_LOWER[usize::from(b >> 4)];
        out[2 * i + 1] = HEX_LOWER[usize::from(b & 0xf)];
    }
    out
}

/// Decodes exactly 64 hex digits (either case) into 32 bytes.
pub(crate) fn unhex32(text: &[u8]) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in text.chunks_exact(2).enumerate() {
        out[i] = hex_value(pair[0])? << 4 | hex_value(pair[1])?;
    }
    Some(out)
}

/// Percent-encodes `bytes` the SigV4 way into `out`: everything but the unreserved set (and
/// `/` when `keep_slash`) becomes `%XX` with uppercase hex.
fn encode_into(out: &mut Vec<u8>, bytes: &[u8], keep_slash: bool) {
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[
                b'%',
                HEX_UPPER[usize::from(b >> 4)],
                HEX_UPPER[usize::from(b & 0xf)],
            ]);
        }
    }
}

/// Decodes a query component with form semantics, as SigV4 signers parse queries: `+` is a
/// space and `%XX` a byte; a `%` that does not start a valid escape stays a literal `%`.
pub(crate) fn query_decode(raw: &str) -> Cow<'_, [u8]> {
    let bytes = raw.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
}

/// Whether a raw query component is already what [`canonical_query_component`] would make of
/// it: only unreserved bytes and `%XX` escapes with uppercase hex of reserved bytes.
fn is_canonical_component(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if is_unreserved(b) {
            i += 1;
        } else if b == b'%' {
            let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return false;
            };
            let upper = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
            if !upper(h) || !upper(l) {
                return false;
            }
            let value = hex_value(h).unwrap_or(0) << 4 | hex_value(l).unwrap_or(0);
            if is_unreserved(value) {
                return false;
            }
            i += 3;
        } else {
            return false;
        }
    }
    true
}

/// A query name or value in canonical form: decoded with form semantics, then encoded with
/// everything but the unreserved set escaped. Borrowed when the raw text already is canonical
/// (the common case for SDK-built queries).
pub(crate) fn canonical_query_component(raw: &str) -> Cow<'_, [u8]> {
    if is_canonical_component(raw.as_bytes()) {
        return Cow::Borrowed(raw.as_bytes());
    }
    let decoded = query_decode(raw);
    let mut out = Vec::with_capacity(decoded.len() + 8);
    encode_into(&mut out, &decoded, false);
    Cow::Owned(out)
}

/// A query parameter's canonical name and value.
type QueryPair<'a> = (Cow<'a, [u8]>, Cow<'a, [u8]>);

/// Writes the canonical query string of `raw_query` into `out`: every `name[=value]` pair
/// (empty segments skipped, a missing `=` meaning an empty value) in canonical form, sorted
/// by name then value, joined with `&`. With `presigned`, `X-Amz-Signature` is left out.
pub(crate) fn write_canonical_query(out: &mut Vec<u8>, raw_query: &str, presigned: bool) {
    if raw_query.is_empty() {
        return;
    }
    let mut pairs: Vec<QueryPair<'_>> = raw_query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            (
                canonical_query_component(name),
                canonical_query_component(value),
            )
        })
        .filter(|(name, _)| !(presigned && name.as_ref() == b"X-Amz-Signature"))
        .collect();
    pairs.sort_unstable();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        out.extend_from_slice(name);
        out.push(b'=');
        out.extend_from_slice(value);
    }
}

/// The canonical URI S3 would compute for a path sent in a form other than the one SigV4
/// signers produce: percent-decoded (a `+` stays a `+`), then encoded once with `/` kept.
/// `None` when that is the raw path itself, so there is nothing else to try.
///
/// A `%` that does not start a valid escape is encoded as `%25`; the router rejects such
/// paths anyway.
pub(crate) fn normalized_path(raw_path: &str) -> Option<Vec<u8>> {
    let bytes = raw_path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + 16);
    let mut i = 0;
    while i < bytes.len() {
        let mut b = bytes[i];
        i += 1;
        if b == b'%' {
            let hi = bytes.get(i).copied().and_then(hex_value);
            let lo = bytes.get(i + 1).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                b = hi << 4 | lo;
                i += 2;
            }
        }
        encode_into(&mut out, &[b], true);
    }
    (out != bytes).then_some(out)
}

/// Appends a header value the SigV4 way: leading and trailing spaces dropped and every run of
/// spaces inside collapsed to one (tabs and other bytes are kept as they are).
fn write_trimmed_value(out: &mut Vec<u8>, value: &[u8]) {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|&b| b != b' ')
        .map_or(start, |p| p + 1);
    let value = &value[start..end];
    if !value.windows(2).any(|w| w == b"  ") {
        out.extend_from_slice(value);
        return;
    }
    let mut last_space = false;
    for &b in value {
        if b == b' ' && last_space {
            continue;
        }
        last_space = b == b' ';
        out.push(b);
    }
}

/// Appends `name:value\n` for one signed header, joining the values of a repeated header with
/// `,` in the order received. `false` if the request has no header called `name`.
fn write_canonical_header(out: &mut Vec<u8>, headers: &[Header], name: &[u8]) -> bool {
    let mut found = false;
    for header in headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)) {
        if found {
            out.push(b',');
        } else {
            out.extend_from_slice(name);
            out.push(b':');
            found = true;
        }
        write_trimmed_value(out, &header.value);
    }
    if found {
        out.push(b'\n');
    }
    found
}

/// A signed header that the request does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MissingSignedHeader;

/// Builds the canonical request of `parts` with `uri` as its canonical URI.
///
/// `signed_headers` is the list exactly as the client sent it (`;`-separated, already checked
/// non-empty); its names are looked up case-insensitively and written as listed.
pub(crate) fn canonical_request(
    parts: &RequestParts<'_>,
    uri: &[u8],
    presigned: bool,
    signed_headers: &str,
    payload_hash: &str,
) -> Result<Vec<u8>, MissingSignedHeader> {
    let mut out = Vec::with_capacity(
        512 + parts.raw_path.len() + parts.raw_query.len() + signed_headers.len() * 4,
    );
    out.extend_from_slice(parts.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(if uri.is_empty() { b"/" } else { uri });
    out.push(b'\n');
    write_canonical_query(&mut out, parts.raw_query, presigned);
    out.push(b'\n');
    for name in signed_headers.as_bytes().split(|&b| b == b';') {
        if !write_canonical_header(&mut out, parts.headers, name) {
            return Err(MissingSignedHeader);
        }
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

/// SHA-256 of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = digest::digest(&digest::SHA256, bytes);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// Writes the string to sign of a request into `out` (cleared first):
/// `AWS4-HMAC-SHA256\n<timestamp>\n<scope>\n<hex sha256(canonical request)>`.
pub(crate) fn write_string_to_sign(
    out: &mut Vec<u8>,
    timestamp: &str,
    scope: &str,
    canonical_request_sha256: &[u8; 32],
) {
    out.clear();
    out.extend_from_slice(ALGORITHM.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(timestamp.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(scope.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&hex32(canonical_request_sha256));
}

/// Whether `signature` is the HMAC-SHA256 of `string_to_sign` under `key`, compared in
/// constant time (ring's `hmac::verify`).
pub(crate) fn signature_matches(
    key: &hmac::Key,
    string_to_sign: &[u8],
    signature: &[u8; 32],
) -> bool {
    hmac::verify(key, string_to_sign, signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(raw: &str, presigned: bool) -> String {
        let mut out = Vec::new();
        write_canonical_query(&mut out, raw, presigned);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn query_is_sorted_and_encoded() {
        assert_eq!(query("", false), "");
        assert_eq!(query("lifecycle", false), "lifecycle=");
        assert_eq!(query("prefix=J&max-keys=2", false), "max-keys=2&prefix=J");
        assert_eq!(query("a=2&a=1&b", false), "a=1&a=2&b=");
        // '+' is a space, '%7E' is '~', lowercase escapes become uppercase, '/' is escaped.
        assert_eq!(
            query("p=a+b&q=%7e&r=a/b&s=%2f&t=%zz", false),
            "p=a%20b&q=~&r=a%2Fb&s=%2F&t=%25zz"
        );
        assert_eq!(query("&&x=1&", false), "x=1");
        assert_eq!(
            query("X-Amz-Signature=ab&X-Amz-Date=1", true),
            "X-Amz-Date=1"
        );
        assert_eq!(
            query("X-Amz-Signature=ab&X-Amz-Date=1", false),
            "X-Amz-Date=1&X-Amz-Signature=ab"
        );
        assert_eq!(query("k=%E2%82%AC", false), "k=%E2%82%AC");
        assert_eq!(query("k=\u{20ac}", false), "k=%E2%82%AC");
    }

    #[test]
    fn canonical_components_are_borrowed() {
        assert!(matches!(
            canonical_query_component("abc-_.~%2F"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(canonical_query_component("%2f"), Cow::Owned(_)));
        assert!(matches!(canonical_query_component("%41"), Cow::Owned(_)));
    }

    #[test]
    fn normalized_paths() {
        assert_eq!(normalized_path("/test.txt"), None);
        assert_eq!(normalized_path("/a%20b/%E2%82%AC~"), None);
        assert_eq!(
            normalized_path("/test$file.text").as_deref(),
            Some(&b"/test%24file.text"[..])
        );
        assert_eq!(normalized_path("/a%7eb").as_deref(), Some(&b"/a~b"[..]));
        assert_eq!(normalized_path("/a+b").as_deref(), Some(&b"/a%2Bb"[..]));
        assert_eq!(normalized_path("/a%2fb").as_deref(), Some(&b"/a/b"[..]));
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let mut out = Vec::new();
        write_trimmed_value(&mut out, b"  a   b  c ");
        assert_eq!(out, b"a b c");
        out.clear();
        write_trimmed_value(&mut out, b"   ");
        assert_eq!(out, b"");
        out.clear();
        write_trimmed_value(&mut out, b"a\t\tb");
        assert_eq!(out, b"a\t\tb");
    }

    #[test]
    fn hex_round_trip() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i * 37) as u8);
        assert_eq!(unhex32(&hex32(&bytes)), Some(bytes));
        assert_eq!(unhex32(&hex32(&bytes).to_ascii_uppercase()), Some(bytes));
        assert_eq!(unhex32(b"00"), None);
        assert_eq!(unhex32(&[b'g'; 64]), None);
    }
}
