//! Query strings of admin requests, decoded as HTML forms encode them
//! (`application/x-www-form-urlencoded`): `+` is a space, `%XX` is a byte, and the decoded
//! bytes must be UTF-8. A literal `+` in a value is sent as `%2B`, which `curl
//! --data-urlencode`, Python's `urlencode` and browsers all do.

use std::fmt;

/// Why a query string could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadEscape => "a '%' in the query string is not followed by two hex digits",
            Self::NotUtf8 => "a query parameter does not decode to UTF-8",
        })
    }
}

impl std::error::Error for QueryError {}

/// The decoded `(name, value)` pairs of `query`, in order. Empty segments (`a=1&&b=2`, a
/// trailing `&`) are skipped; a name without `=` has an empty value.
pub fn parse(query: &str) -> Result<Vec<(String, String)>, QueryError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// One name or value with `+` and `%XX` decoded.
fn decode(s: &str) -> Result<String, QueryError> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hi = bytes.next().and_then(hex).ok_or(QueryError::BadEscape)?;
                let lo = bytes.next().and_then(hex).ok_or(QueryError::BadEscape)?;
                (hi << 4) | lo
            }
            other => other,
        });
    }
    String::from_utf8(out).map_err(|_| QueryError::NotUtf8)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        parse(query).unwrap()
    }

    fn pair(name: &str, value: &str) -> (String, String) {
        (name.to_owned(), value.to_owned())
    }

    #[test]
    fn splits_and_decodes() {
        assert_eq!(
            pairs("bucket=b&key=a%2Fb%20c+d%2B%25.parquet"),
            [pair("bucket", "b"), pair("key", "a/b c d+%.parquet")]
        );
        assert_eq!(pairs("prefix=%C3%A9t%C3%A9%2F"), [pair("prefix", "été/")]);
        assert_eq!(pairs("prefix=été/"), [pair("prefix", "été/")]);
        assert_eq!(
            pairs("a=1&&b&c=&"),
            [pair("a", "1"), pair("b", ""), pair("c", "")]
        );
        assert_eq!(pairs("k=a=b"), [pair("k", "a=b")]);
        assert_eq!(pairs("b%75cket=x"), [pair("bucket", "x")]);
        assert!(pairs("").is_empty());
    }

    #[test]
    fn rejects_bad_escapes_and_non_utf8() {
        for q in ["key=%", "key=%4", "key=%zz", "key=%4g", "k%=1"] {
            assert_eq!(parse(q), Err(QueryError::BadEscape), "{q}");
        }
        assert_eq!(parse("key=%FF%FE"), Err(QueryError::NotUtf8));
    }
}
