//! HTTP byte ranges as S3 reads them: one range per request (`bytes=a-b`, `bytes=a-`,
//! `bytes=-n`). Shared by the simulator (parse + resolve) and the load generator (format +
//! the interval it must receive).

use std::io::Write as _;

/// A single-range `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (last inclusive).
    Bounded {
        /// First byte.
        first: u64,
        /// Last byte, inclusive.
        last: u64,
    },
    /// `bytes=first-`: from `first` to the end.
    From(u64),
    /// `bytes=-len`: the last `len` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// `bytes=first..first+len-1`; `len` must be > 0.
    pub fn span(first: u64, len: u64) -> Self {
        debug_assert!(len > 0);
        ByteRange::Bounded {
            first,
            last: first + len - 1,
        }
    }

    /// Append the header value (`bytes=...`) to `out`.
    pub fn write_value(&self, out: &mut Vec<u8>) {
        // Writing to a Vec cannot fail.
        let _ = match *self {
            ByteRange::Bounded { first, last } => write!(out, "bytes={first}-{last}"),
            ByteRange::From(first) => write!(out, "bytes={first}-"),
            ByteRange::Suffix(len) => write!(out, "bytes=-{len}"),
        };
    }

    /// The header value as a string.
    pub fn value(&self) -> String {
        let mut v = Vec::new();
        self.write_value(&mut v);
        String::from_utf8(v).expect("ascii")
    }

    /// The bytes `[start, end)` this range selects from an object of `size` bytes, clamped as
    /// S3 does; `None` when it is unsatisfiable (S3 answers 416 InvalidRange).
    pub fn resolve(&self, size: u64) -> Option<(u64, u64)> {
        if size == 0 {
            return None;
        }
        match *self {
            ByteRange::Bounded { first, last } => {
                (first < size).then(|| (first, last.min(size - 1) + 1))
            }
            ByteRange::From(first) => (first < size).then_some((first, size)),
            ByteRange::Suffix(0) => None,
            ByteRange::Suffix(len) => Some((size.saturating_sub(len), size)),
        }
    }

    /// Parse a `Range` header as S3 does: `Ok(None)` for a header S3 ignores (another unit,
    /// several ranges, `last < first`, not a number), so the whole object is sent with 200.
    pub fn parse(value: &str) -> Option<ByteRange> {
        let spec = value.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        let num = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                None
            } else {
                s.parse().ok()
            }
        };
        match (a.is_empty(), b.is_empty()) {
            (true, false) => num(b).map(ByteRange::Suffix),
            (false, true) => num(a).map(ByteRange::From),
            (false, false) => {
                let (first, last) = (num(a)?, num(b)?);
                (last >= first).then_some(ByteRange::Bounded { first, last })
            }
            (true, true) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ByteRange::span(10, 5).value(), "bytes=10-14");
        assert_eq!(ByteRange::From(7).value(), "bytes=7-");
        assert_eq!(ByteRange::Suffix(65536).value(), "bytes=-65536");
    }

    #[test]
    fn parses_like_s3() {
        assert_eq!(ByteRange::parse("bytes=0-9"), Some(ByteRange::span(0, 10)));
        assert_eq!(ByteRange::parse("bytes=5-"), Some(ByteRange::From(5)));
        assert_eq!(ByteRange::parse("bytes=-3"), Some(ByteRange::Suffix(3)));
        assert_eq!(ByteRange::parse("bytes=9-2"), None);
        assert_eq!(ByteRange::parse("bytes=0-1,4-5"), None);
        assert_eq!(ByteRange::parse("items=0-1"), None);
        assert_eq!(ByteRange::parse("bytes=a-1"), None);
        assert_eq!(ByteRange::parse("bytes=-"), None);
    }

    #[test]
    fn resolves_like_s3() {
        assert_eq!(ByteRange::span(0, 10).resolve(100), Some((0, 10)));
        assert_eq!(ByteRange::span(90, 50).resolve(100), Some((90, 100)));
        assert_eq!(ByteRange::span(100, 1).resolve(100), None);
        assert_eq!(ByteRange::From(99).resolve(100), Some((99, 100)));
        assert_eq!(ByteRange::From(100).resolve(100), None);
        assert_eq!(ByteRange::Suffix(10).resolve(100), Some((90, 100)));
        assert_eq!(ByteRange::Suffix(1000).resolve(100), Some((0, 100)));
        assert_eq!(ByteRange::Suffix(0).resolve(100), None);
        assert_eq!(ByteRange::From(0).resolve(0), None);
    }
}
