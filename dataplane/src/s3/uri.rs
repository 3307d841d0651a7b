//! URI helpers with S3's exact rules: strict percent-decoding of request paths, the AWS
//! canonical URI encoding used on the way to the origin, and raw query-string splitting.
//!
//! The encoder and the decoder are exact inverses for every UTF-8 string, so a key that a
//! client sent comes out byte-identical on the origin request (and in its SigV4 canonical URI).

use std::fmt;

/// A request path that cannot be percent-decoded into a UTF-8 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidPercentEncoding {
    /// A `%` at this byte offset is not followed by two hex digits.
    BadEscape {
        /// Byte offset of the offending `%` in the raw input.
        offset: usize,
    },
    /// The escapes decode to bytes that are not valid UTF-8 (S3 keys are UTF-8).
    NotUtf8,
}

impl fmt::Display for InvalidPercentEncoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadEscape { offset } => write!(f, "invalid percent escape at byte {offset}"),
            Self::NotUtf8 => f.write_str("percent-decoded path is not valid UTF-8"),
        }
    }
}

impl std::error::Error for InvalidPercentEncoding {}

/// Percent-decode a path component.
///
/// Every `%` must start a `%XX` escape (either hex case); anything else is an error rather
/// than being passed through, because a lenient decoder would let two different raw paths name
/// the same key. `+` stays `+` (form encoding applies to queries, not paths). The result must
/// be valid UTF-8.
pub fn decode_path(raw: &str) -> Result<String, InvalidPercentEncoding> {
    let bytes = raw.as_bytes();
    // Most keys carry no escapes: one scan, one copy.
    let Some(first) = memchr_percent(bytes) else {
        return Ok(raw.to_owned());
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(InvalidPercentEncoding::BadEscape { offset: i }),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| InvalidPercentEncoding::NotUtf8)
}

fn memchr_percent(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'%')
}

/// The value of one hex digit (either case), `None` for any other byte.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const UPPER_HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Append `s` to `out` in AWS's URI encoding (SigV4 `UriEncode`, which S3 also expects on the
/// wire): `A-Z a-z 0-9 - _ . ~` are kept, `/` is kept when `keep_slash` (object key paths) and
/// encoded otherwise (query values), and every other byte of the UTF-8 string becomes `%XX`
/// with uppercase hex. The output is the canonical form, so it signs as-is with
/// `PercentEncodingMode::Single`.
pub fn aws_uri_encode(s: &str, keep_slash: bool, out: &mut String) {
    out.reserve(s.len());
    // Copy runs of kept characters as slices; most keys are mostly unreserved.
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/');
        if keep {
            continue;
        }
        // A non-empty run holds only kept ASCII bytes, so both of its ends are char
        // boundaries; an empty run may sit inside a multi-byte character and must not be
        // sliced at all.
        if run_start < i {
            out.push_str(&s[run_start..i]);
        }
        out.push('%');
        out.push(char::from(UPPER_HEX[usize::from(b >> 4)]));
        out.push(char::from(UPPER_HEX[usize::from(b & 0x0f)]));
        run_start = i + 1;
    }
    // Every byte of a multi-byte character is encoded, so what is left is either empty or
    // starts with a kept ASCII byte: a char boundary.
    out.push_str(&s[run_start..]);
}

/// The upstream request path for a bucket or object: `/bucket` when `key` is `None`,
/// `/bucket/` + the AWS-encoded key (slashes kept) otherwise; `Some("")` gives `/bucket/`.
/// The bucket is encoded too (a no-op for valid names) so the result is always a clean path.
pub fn origin_path(bucket: &str, key: Option<&str>) -> String {
    let mut out = String::with_capacity(2 + bucket.len() + key.map_or(0, |k| k.len() + 16));
    out.push('/');
    aws_uri_encode(bucket, false, &mut out);
    if let Some(key) = key {
        out.push('/');
        aws_uri_encode(key, true, &mut out);
    }
    out
}

/// Split a raw query string into `(name, value)` pairs without decoding anything:
/// `"a=1&b&c="` gives `[("a", "1"), ("b", ""), ("c", "")]`. Empty segments (`"a&&b"`) are
/// skipped; a value keeps any further `=` (`"a=b=c"` gives `("a", "b=c")`).
pub fn query_pairs(raw: &str) -> impl Iterator<Item = (&str, &str)> + '_ {
    raw.split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| segment.split_once('=').unwrap_or((segment, "")))
}

/// True when the raw query string has a parameter whose raw (undecoded) name is exactly
/// `name`, with or without a value.
pub fn has_query_param(raw: &str, name: &str) -> bool {
    query_pairs(raw).any(|(n, _)| n == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn enc(s: &str, keep_slash: bool) -> String {
        let mut out = String::new();
        aws_uri_encode(s, keep_slash, &mut out);
        out
    }

    #[test]
    fn decode_plain_and_escaped() {
        assert_eq!(decode_path("plain/key.txt").unwrap(), "plain/key.txt");
        assert_eq!(decode_path("a%20b").unwrap(), "a b");
        assert_eq!(decode_path("a%2Fb%2fc").unwrap(), "a/b/c");
        assert_eq!(decode_path("%C3%A9t%c3%a9").unwrap(), "été");
        assert_eq!(decode_path("").unwrap(), "");
    }

    #[test]
    fn decode_keeps_plus_and_literal_unicode() {
        assert_eq!(decode_path("a+b").unwrap(), "a+b");
        assert_eq!(decode_path("a%2Bb").unwrap(), "a+b");
        assert_eq!(decode_path("日本/é").unwrap(), "日本/é");
    }

    #[test]
    fn decode_rejects_bad_escapes() {
        for (raw, offset) in [
            ("%", 0),
            ("a%2", 1),
            ("ab%zz", 2),
            ("%g0", 0),
            ("x%2%41", 1),
        ] {
            assert_eq!(
                decode_path(raw),
                Err(InvalidPercentEncoding::BadEscape { offset }),
                "{raw}"
            );
        }
    }

    #[test]
    fn decode_rejects_non_utf8() {
        assert_eq!(decode_path("%FF"), Err(InvalidPercentEncoding::NotUtf8));
        assert_eq!(decode_path("a%C3"), Err(InvalidPercentEncoding::NotUtf8));
        assert_eq!(decode_path("%C0%AF"), Err(InvalidPercentEncoding::NotUtf8));
    }

    #[test]
    fn encode_matches_aws_canonical_examples() {
        assert_eq!(
            enc("photos/Jan Sample.jpg", true),
            "photos/Jan%20Sample.jpg"
        );
        assert_eq!(enc("a+b", true), "a%2Bb");
        assert_eq!(enc("~._-", true), "~._-");
        assert_eq!(enc("é", true), "%C3%A9");
        assert_eq!(enc("AZaz09", false), "AZaz09");
        assert_eq!(enc("a/b", false), "a%2Fb");
        assert_eq!(enc("a/b", true), "a/b");
        assert_eq!(enc("a=b&c*d", true), "a%3Db%26c%2Ad");
        assert_eq!(enc("100%", true), "100%25");
        assert_eq!(enc("日", true), "%E6%97%A5");
        assert_eq!(enc("x😀y", true), "x%F0%9F%98%80y");
        assert_eq!(enc("", true), "");
    }

    #[test]
    fn encode_appends() {
        let mut out = String::from("/b/");
        aws_uri_encode("k k", true, &mut out);
        assert_eq!(out, "/b/k%20k");
    }

    #[test]
    fn origin_paths() {
        assert_eq!(origin_path("bucket", None), "/bucket");
        assert_eq!(origin_path("bucket", Some("")), "/bucket/");
        assert_eq!(
            origin_path("bucket", Some("a b/c+d")),
            "/bucket/a%20b/c%2Bd"
        );
        assert_eq!(origin_path("bucket", Some("a//b/")), "/bucket/a//b/");
        assert_eq!(origin_path("my.bucket-1", Some("é")), "/my.bucket-1/%C3%A9");
    }

    #[test]
    fn query_pairs_split_without_decoding() {
        let pairs: Vec<_> = query_pairs("a=1&b&c=").collect();
        assert_eq!(pairs, [("a", "1"), ("b", ""), ("c", "")]);
        let pairs: Vec<_> = query_pairs("&x=a%20b&&y=b=c&").collect();
        assert_eq!(pairs, [("x", "a%20b"), ("y", "b=c")]);
        assert_eq!(query_pairs("").count(), 0);
    }

    #[test]
    fn has_query_param_matches_whole_names() {
        let q = "uploads&prefix=a&list-type=2";
        assert!(has_query_param(q, "uploads"));
        assert!(has_query_param(q, "list-type"));
        assert!(!has_query_param(q, "upload"));
        assert!(!has_query_param(q, "uploadId"));
        assert!(!has_query_param("", "uploads"));
        assert!(!has_query_param("prefix=uploads", "uploads"));
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(s in any::<String>(), keep_slash in any::<bool>()) {
            prop_assert_eq!(decode_path(&enc(&s, keep_slash)).unwrap(), s);
        }

        #[test]
        fn encoded_is_canonical_ascii(s in any::<String>()) {
            let e = enc(&s, true);
            prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric()
                || b"-_.~/%".contains(&b)));
            // Encoding is idempotent on its own output only through decoding.
            prop_assert_eq!(enc(&decode_path(&e).unwrap(), true), e);
        }

        #[test]
        fn decode_never_panics(s in "[%0-9a-fA-FgG/ +é]{0,12}") {
            let _ = decode_path(&s);
        }
    }
}
