//! S3 `Range` handling and block planning: what a client's `Range` header means for an object
//! of a given size, which cache blocks hold those bytes, and the header values the cache writes.
//!
//! Everything here is pure arithmetic on `u64` offsets; the caller owns the I/O. The rule for
//! anything the cache is not sure S3 would answer the same way is [`ParsedRange::PassThrough`]:
//! the request goes to the origin unchanged, so a strange header costs a cache miss, never a
//! wrong answer.

use std::fmt::Write as _;
use std::ops::{Range, RangeInclusive};

/// A single S3 byte range as the client wrote it (RFC 9110 §14.1.1 `int-range` / `suffix-range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=first-last`, both inclusive. [`parse_range`] only produces it with `first <= last`.
    FromTo {
        /// Offset of the first byte wanted.
        first: u64,
        /// Offset of the last byte wanted (inclusive; may lie past the end of the object).
        last: u64,
    },
    /// `bytes=first-`: from `first` to the end of the object.
    From {
        /// Offset of the first byte wanted.
        first: u64,
    },
    /// `bytes=-len`: the last `len` bytes of the object.
    Suffix {
        /// How many bytes from the end.
        len: u64,
    },
}

/// What the `Range` header means for the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedRange {
    /// No `Range` header: the whole object, `200`.
    None,
    /// One byte range the cache answers itself (after [`resolve`]).
    Single(RangeSpec),
    /// A header the cache does not answer itself (multiple ranges, other units, syntax S3 would
    /// ignore or treat specially): the request goes to the origin unchanged.
    PassThrough,
}

impl ParsedRange {
    /// The spec to hand to [`resolve`], or `Err(())` when the request must be passed through.
    ///
    /// `Ok(None)` means "no Range header" and resolves to [`Resolved::Full`].
    #[allow(clippy::result_unit_err)] // the only failure is "pass through"; there is nothing to say
    pub fn spec(self) -> Result<Option<RangeSpec>, ()> {
        match self {
            ParsedRange::None => Ok(None),
            ParsedRange::Single(spec) => Ok(Some(spec)),
            ParsedRange::PassThrough => Err(()),
        }
    }
}

/// Parses the value of a `Range` request header (`None` when the header is absent).
///
/// Accepted: exactly `bytes=a-b`, `bytes=a-` or `bytes=-n` with `a`, `b`, `n` one or more ASCII
/// digits (leading zeros allowed, as RFC 9110's `1*DIGIT`). Every choice below errs toward
/// [`ParsedRange::PassThrough`], which is always safe because the origin then answers:
///
/// - The unit is matched ASCII case-insensitively (`bytes`, `Bytes`, `BYTES`): RFC 9110 range
///   units are case-insensitive.
/// - Leading and trailing spaces/tabs of the whole field value are dropped, because they are not
///   part of an HTTP field value (RFC 9110 §5.5). Whitespace anywhere inside (around `=`, `-` or
///   the numbers) is not in the grammar → `PassThrough`.
/// - A comma anywhere → `PassThrough`: multiple ranges (S3 answers them with the whole object),
///   and also a single range with empty list elements (`bytes=0-1,`), which S3 may read either way.
/// - `first > last` → `PassThrough`: S3 ignores such a header and answers `200` with the whole
///   object.
/// - A number that does not fit in `u64`, an empty header, `bytes=-`, other units, or bytes that
///   are not ASCII (so also non-UTF-8) → `PassThrough`.
pub fn parse_range(header: Option<&[u8]>) -> ParsedRange {
    match header {
        None => ParsedRange::None,
        Some(value) => {
            parse_spec(trim_ows(value)).map_or(ParsedRange::PassThrough, ParsedRange::Single)
        }
    }
}

/// Strips RFC 9110 OWS (spaces and tabs) from both ends.
fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// `None` for anything that is not one well-formed byte range (see [`parse_range`]).
fn parse_spec(value: &[u8]) -> Option<RangeSpec> {
    // One pass: unit, optional number, '-', optional number, end. Anything else, including the
    // comma of a multi-range set, falls out as `None` (pass through).
    let set = match value.split_at_checked(6) {
        Some((unit, set)) if unit.eq_ignore_ascii_case(b"bytes=") => set,
        _ => return None,
    };
    let (first, rest) = number(set)?;
    let (last, rest) = number(rest.strip_prefix(b"-")?)?;
    if !rest.is_empty() {
        return None;
    }
    match (first, last) {
        (None, None) => None,
        (None, Some(len)) => Some(RangeSpec::Suffix { len }),
        (Some(first), None) => Some(RangeSpec::From { first }),
        (Some(first), Some(last)) => (first <= last).then_some(RangeSpec::FromTo { first, last }),
    }
}

/// The leading ASCII digits of `s` as a number (`None` inside when there are none) and the rest;
/// `None` when the number overflows `u64`.
fn number(s: &[u8]) -> Option<(Option<u64>, &[u8])> {
    let len = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let (digits, rest) = s.split_at(len);
    if digits.is_empty() {
        return Some((None, rest));
    }
    let n = digits.iter().try_fold(0u64, |acc, &b| {
        acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })?;
    Some((Some(n), rest))
}

/// An inclusive byte interval inside an object: `first <= last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// Offset of the first byte.
    pub first: u64,
    /// Offset of the last byte (inclusive).
    pub last: u64,
}

impl ByteRange {
    /// The interval `first..=last`; the caller guarantees `first <= last`.
    pub const fn new(first: u64, last: u64) -> Self {
        debug_assert!(first <= last);
        ByteRange { first, last }
    }

    /// Number of bytes in the interval (at least 1). Inside an object `last < u64::MAX`, so this
    /// cannot overflow.
    // An inclusive interval is never empty, so an `is_empty` would always say `false`.
    #[allow(clippy::len_without_is_empty)]
    pub const fn len(&self) -> u64 {
        self.last - self.first + 1
    }
}

/// How the cache answers a GET once the object's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// `200` with the whole object (no `Range`).
    Full,
    /// `206` with `Content-Range: bytes first-last/size` ([`content_range`]).
    Partial(ByteRange),
    /// `416` with `Content-Range: bytes */size` ([`unsatisfied_range`]); S3's code is `InvalidRange`.
    Unsatisfiable,
}

/// Turns a parsed range into what S3 answers for an object of `size` bytes.
///
/// - `None` (no header) → [`Resolved::Full`], also for a zero-byte object.
/// - `FromTo`/`From` with `first >= size` → `Unsatisfiable`; `last >= size` is clamped to
///   `size - 1` (RFC 9110 §14.1.2; `bytes=0-` is a `206` of the whole object, not a `200`).
/// - `Suffix { len: 0 }` → `Unsatisfiable`; a suffix longer than the object → `Partial` of the
///   whole object.
/// - Any range on a zero-byte object → `Unsatisfiable`: there is no byte to satisfy it (RFC
///   9110: "if the selected representation has zero length, the suffix-range is unsatisfiable";
///   the integrator checks what SeaweedFS/S3 answer).
/// - `FromTo` with `first > last` (never made by [`parse_range`], which passes such a header
///   through) → `Full`, because S3 ignores such a header.
pub fn resolve(spec: Option<RangeSpec>, size: u64) -> Resolved {
    let Some(spec) = spec else {
        return Resolved::Full;
    };
    let (first, last) = match spec {
        RangeSpec::FromTo { first, last } if first > last => return Resolved::Full,
        RangeSpec::FromTo { first, last } => (first, last),
        RangeSpec::From { first } => (first, u64::MAX),
        RangeSpec::Suffix { len: 0 } => return Resolved::Unsatisfiable,
        RangeSpec::Suffix { len } => (size.saturating_sub(len), u64::MAX),
    };
    if size == 0 || first >= size {
        return Resolved::Unsatisfiable;
    }
    Resolved::Partial(ByteRange::new(first, last.min(size - 1)))
}

/// Number of blocks an object of `size` bytes occupies (`0` for an empty object).
pub const fn block_count(size: u64, block_size: u64) -> u64 {
    size.div_ceil(block_size)
}

/// The inclusive run of block indices that hold some range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpan {
    /// Index of the block holding the range's first byte.
    pub first_block: u64,
    /// Index of the block holding the range's last byte (`>= first_block`).
    pub last_block: u64,
}

impl BlockSpan {
    /// The block indices, ascending.
    pub const fn indices(&self) -> RangeInclusive<u64> {
        self.first_block..=self.last_block
    }

    /// How many blocks (at least 1).
    #[allow(clippy::len_without_is_empty)] // a span always holds at least one block
    pub const fn len(&self) -> u64 {
        self.last_block - self.first_block + 1
    }
}

/// `log2(block_size)`; block sizes are powers of two so block math is shifts and masks.
fn shift(block_size: u64) -> u32 {
    debug_assert!(
        block_size.is_power_of_two(),
        "block size {block_size} is not a power of two"
    );
    block_size.trailing_zeros()
}

/// Which blocks hold `range`. The caller guarantees `block_size` is a power of two.
pub fn block_span(range: ByteRange, block_size: u64) -> BlockSpan {
    let s = shift(block_size);
    BlockSpan {
        first_block: range.first >> s,
        last_block: range.last >> s,
    }
}

/// Byte interval of block `index` in an object of `size` bytes; the last block is short.
///
/// The caller guarantees `index < block_count(size, block_size)` (so `size > 0`) and a
/// power-of-two `block_size`.
pub fn block_bytes(index: u64, block_size: u64, size: u64) -> ByteRange {
    let first = index << shift(block_size);
    debug_assert!(
        first < size,
        "block {index} is past the end of a {size}-byte object"
    );
    // `size - first` cannot underflow given the contract; `min` keeps the last block short.
    ByteRange::new(first, first + (block_size - 1).min(size - 1 - first))
}

/// The part of block `index` that belongs to `range`, as offsets within the block
/// `[start, end)`; slice the block's bytes with it.
///
/// The caller guarantees the block lies in `block_span(range, block_size)` and that `range`
/// lies within the object, so the slice also fits in a short last block.
pub fn slice_in_block(range: ByteRange, index: u64, block_size: u64) -> Range<usize> {
    let s = shift(block_size);
    let block_first = index << s;
    let block_last = block_first + (block_size - 1);
    debug_assert!(range.first <= block_last && range.last >= block_first);
    let start = range.first.max(block_first) - block_first;
    let end = range.last.min(block_last) - block_first + 1;
    // Both are at most `block_size`, which is a memory buffer's length and so fits `usize`.
    start as usize..end as usize
}

/// The `Content-Range` value of a `206`: `bytes first-last/size`.
pub fn content_range(range: ByteRange, size: u64) -> String {
    let mut s = String::with_capacity(6 + 3 * 20 + 2);
    // Writing into a `String` cannot fail.
    let _ = write!(s, "bytes {}-{}/{}", range.first, range.last, size);
    s
}

/// The `Content-Range` value of a `416`: `bytes */size`.
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;

    fn p(s: &str) -> ParsedRange {
        parse_range(Some(s.as_bytes()))
    }
    fn single(spec: RangeSpec) -> ParsedRange {
        ParsedRange::Single(spec)
    }
    fn ft(first: u64, last: u64) -> RangeSpec {
        RangeSpec::FromTo { first, last }
    }
    fn from(first: u64) -> RangeSpec {
        RangeSpec::From { first }
    }
    fn suffix(len: u64) -> RangeSpec {
        RangeSpec::Suffix { len }
    }
    fn partial(first: u64, last: u64) -> Resolved {
        Resolved::Partial(ByteRange::new(first, last))
    }

    #[test]
    fn parse_accepts_the_three_forms() {
        assert_eq!(parse_range(None), ParsedRange::None);
        assert_eq!(p("bytes=0-0"), single(ft(0, 0)));
        assert_eq!(p("bytes=4194304-5242879"), single(ft(4194304, 5242879)));
        assert_eq!(p("bytes=100-"), single(from(100)));
        assert_eq!(p("bytes=-500"), single(suffix(500)));
        assert_eq!(p("bytes=-0"), single(suffix(0)));
        assert_eq!(p("bytes=007-0009"), single(ft(7, 9)));
        assert_eq!(p("bytes=5-5"), single(ft(5, 5)));
        let max = u64::MAX;
        assert_eq!(p(&format!("bytes=0-{max}")), single(ft(0, max)));
    }

    #[test]
    fn parse_unit_is_case_insensitive_and_outer_ows_is_dropped() {
        assert_eq!(p("Bytes=1-2"), single(ft(1, 2)));
        assert_eq!(p("BYTES=1-2"), single(ft(1, 2)));
        assert_eq!(p(" \tbytes=1-2 \t"), single(ft(1, 2)));
    }

    #[test]
    fn parse_passes_through_what_it_does_not_answer() {
        for h in [
            "",
            " ",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=--1",
            "bytes=1--2",
            "bytes=5-2",                   // first > last: S3 answers 200
            "bytes=0-1,3-4",               // multiple ranges
            "bytes=0-1,",                  // empty list element
            "bytes=,0-1",                  //
            "bytes = 0-1",                 // whitespace inside
            "bytes= 0-1",                  //
            "bytes=0 -1",                  //
            "bytes=0- 1",                  //
            "bytes=+1-2",                  //
            "bytes=0x1-2",                 //
            "bytes=1.5-2",                 //
            "items=0-1",                   // other unit
            "byte=0-1",                    //
            "bytesx=0-1",                  //
            "=0-1",                        //
            "0-1",                         //
            "bytes=18446744073709551616-", // u64::MAX + 1
            "bytes=0-18446744073709551616",
            "bytes=-18446744073709551616",
            "bytes=0-1=2",
        ] {
            assert_eq!(p(h), ParsedRange::PassThrough, "{h:?}");
        }
        assert_eq!(parse_range(Some(b"bytes=0-\xff")), ParsedRange::PassThrough);
        assert_eq!(
            parse_range(Some("bytes=０-1".as_bytes())),
            ParsedRange::PassThrough
        );
    }

    #[test]
    fn parsed_range_spec() {
        assert_eq!(ParsedRange::None.spec(), Ok(None));
        assert_eq!(single(from(3)).spec(), Ok(Some(from(3))));
        assert_eq!(ParsedRange::PassThrough.spec(), Err(()));
    }

    #[test]
    fn resolve_follows_s3() {
        let size = 1000;
        let cases = [
            (None, Resolved::Full),
            (Some(ft(0, 0)), partial(0, 0)),
            (Some(ft(0, 999)), partial(0, 999)),
            (Some(ft(0, 1000)), partial(0, 999)), // last == size: clamped
            (Some(ft(10, u64::MAX)), partial(10, 999)),
            (Some(ft(999, 999)), partial(999, 999)), // the last byte
            (Some(ft(999, 5000)), partial(999, 999)),
            (Some(ft(1000, 1000)), Resolved::Unsatisfiable), // first == size
            (Some(ft(1001, 2000)), Resolved::Unsatisfiable),
            (Some(ft(5, 2)), Resolved::Full), // S3 ignores first > last
            (Some(from(0)), partial(0, 999)),
            (Some(from(999)), partial(999, 999)),
            (Some(from(1000)), Resolved::Unsatisfiable),
            (Some(suffix(0)), Resolved::Unsatisfiable),
            (Some(suffix(1)), partial(999, 999)),
            (Some(suffix(999)), partial(1, 999)),
            (Some(suffix(1000)), partial(0, 999)),
            (Some(suffix(1001)), partial(0, 999)), // longer than the object: whole object
            (Some(suffix(u64::MAX)), partial(0, 999)),
        ];
        for (spec, want) in cases {
            assert_eq!(resolve(spec, size), want, "{spec:?}");
        }
    }

    #[test]
    fn resolve_zero_byte_and_one_byte_objects() {
        assert_eq!(resolve(None, 0), Resolved::Full);
        for spec in [
            ft(0, 0),
            ft(0, 10),
            from(0),
            suffix(0),
            suffix(1),
            suffix(5),
        ] {
            assert_eq!(resolve(Some(spec), 0), Resolved::Unsatisfiable, "{spec:?}");
        }
        assert_eq!(resolve(None, 1), Resolved::Full);
        assert_eq!(resolve(Some(ft(0, 0)), 1), partial(0, 0));
        assert_eq!(resolve(Some(ft(0, 7)), 1), partial(0, 0));
        assert_eq!(resolve(Some(ft(1, 1)), 1), Resolved::Unsatisfiable);
        assert_eq!(resolve(Some(from(0)), 1), partial(0, 0));
        assert_eq!(resolve(Some(from(1)), 1), Resolved::Unsatisfiable);
        assert_eq!(resolve(Some(suffix(1)), 1), partial(0, 0));
        assert_eq!(resolve(Some(suffix(2)), 1), partial(0, 0));
    }

    #[test]
    fn byte_range_len() {
        assert_eq!(ByteRange::new(0, 0).len(), 1);
        assert_eq!(ByteRange::new(4 * MIB, 5 * MIB - 1).len(), MIB);
        assert_eq!(ByteRange::new(0, u64::MAX - 1).len(), u64::MAX);
    }

    #[test]
    fn block_span_cases() {
        let bs = MIB;
        let span = |f, l| block_span(ByteRange::new(f, l), bs);
        let sp = |a, b| BlockSpan {
            first_block: a,
            last_block: b,
        };
        assert_eq!(span(0, 0), sp(0, 0));
        assert_eq!(span(10, 20), sp(0, 0)); // inside one block
        assert_eq!(span(0, MIB - 1), sp(0, 0)); // exactly one block
        assert_eq!(span(4 * MIB, 5 * MIB - 1), sp(4, 4)); // ends exactly at a block boundary
        assert_eq!(span(4 * MIB, 5 * MIB), sp(4, 5)); // one byte into the next block
        assert_eq!(span(MIB - 1, MIB), sp(0, 1)); // two bytes straddling a boundary
        assert_eq!(span(3, 100 * MIB + 7), sp(0, 100)); // many blocks
        assert_eq!(span(3, 100 * MIB + 7).len(), 101);
        assert_eq!(span(3, 100 * MIB + 7).indices().count(), 101);
    }

    #[test]
    fn block_count_and_block_bytes() {
        assert_eq!(block_count(0, MIB), 0);
        assert_eq!(block_count(1, MIB), 1);
        assert_eq!(block_count(MIB, MIB), 1);
        assert_eq!(block_count(MIB + 1, MIB), 2);
        let size = 3 * MIB + 5;
        assert_eq!(block_bytes(0, MIB, size), ByteRange::new(0, MIB - 1));
        assert_eq!(
            block_bytes(2, MIB, size),
            ByteRange::new(2 * MIB, 3 * MIB - 1)
        );
        assert_eq!(
            block_bytes(3, MIB, size),
            ByteRange::new(3 * MIB, 3 * MIB + 4)
        ); // short
        assert_eq!(block_bytes(0, MIB, 1), ByteRange::new(0, 0)); // size 1
        assert_eq!(
            block_bytes(1, MIB, 2 * MIB),
            ByteRange::new(MIB, 2 * MIB - 1)
        ); // full last
    }

    #[test]
    fn slice_in_block_cases() {
        let bs = 1024;
        let r = |f, l| ByteRange::new(f, l);
        assert_eq!(slice_in_block(r(10, 20), 0, bs), 10..21); // inside one block
        assert_eq!(slice_in_block(r(0, 1023), 0, bs), 0..1024); // exactly the block
        assert_eq!(slice_in_block(r(1000, 3000), 0, bs), 1000..1024); // head
        assert_eq!(slice_in_block(r(1000, 3000), 1, bs), 0..1024); // middle
        assert_eq!(slice_in_block(r(1000, 3000), 2, bs), 0..953); // tail
        assert_eq!(slice_in_block(r(2048, 2048), 2, bs), 0..1); // first byte of a block
        assert_eq!(slice_in_block(r(2047, 2047), 1, bs), 1023..1024); // last byte of a block
    }

    #[test]
    fn header_values() {
        assert_eq!(
            content_range(ByteRange::new(0, 99), 1000),
            "bytes 0-99/1000"
        );
        assert_eq!(
            content_range(ByteRange::new(u64::MAX - 2, u64::MAX - 2), u64::MAX),
            format!("bytes {0}-{0}/{1}", u64::MAX - 2, u64::MAX)
        );
        assert_eq!(unsatisfied_range(0), "bytes */0");
        assert_eq!(unsatisfied_range(1000), "bytes */1000");
    }

    /// The model object: byte `i` is `i as u8`. Built once, sliced by every case.
    fn model() -> &'static [u8] {
        static MODEL: OnceLock<Vec<u8>> = OnceLock::new();
        MODEL.get_or_init(|| (0..MAX_SIZE).map(|i| i as u8).collect())
    }
    const MAX_SIZE: u64 = 10_000_000;

    fn spec_for(size: u64, bs: u64) -> impl Strategy<Value = RangeSpec> {
        // Offsets mostly near the object (so ranges hit it, its end and just past it), sometimes
        // anywhere in u64; short ranges so that single-block and block-boundary cases are common.
        let near = 0..=size.saturating_mul(2).saturating_add(2);
        let off = prop_oneof![4 => near.clone(), 1 => any::<u64>()];
        let boundary = (0..=size / bs + 1, -2i64..=2)
            .prop_map(move |(b, d)| (b * bs).saturating_add_signed(d));
        prop_oneof![
            (off.clone(), off.clone()).prop_map(|(a, b)| ft(a.min(b), a.max(b))),
            (near, 0..3 * bs).prop_map(|(a, n)| ft(a, a + n)),
            (boundary.clone(), boundary).prop_map(|(a, b)| ft(a.min(b), a.max(b))),
            off.clone().prop_map(from),
            off.prop_map(suffix),
        ]
    }

    fn case() -> impl Strategy<Value = (u64, u64, RangeSpec)> {
        (0..MAX_SIZE, 10u32..=22).prop_flat_map(|(size, log)| {
            let bs = 1u64 << log;
            (Just(size), Just(bs), spec_for(size, bs))
        })
    }

    fn header_of(spec: RangeSpec) -> String {
        match spec {
            RangeSpec::FromTo { first, last } => format!("bytes={first}-{last}"),
            RangeSpec::From { first } => format!("bytes={first}-"),
            RangeSpec::Suffix { len } => format!("bytes=-{len}"),
        }
    }

    /// An independent reading of the grammar `parse_range` documents, written with `str` helpers.
    fn model_parse(bytes: &[u8]) -> ParsedRange {
        fn num(s: &str) -> Option<u64> {
            let digits = !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
            digits.then(|| s.parse().ok()).flatten()
        }
        let spec = || {
            let text = std::str::from_utf8(bytes).ok()?.trim_matches([' ', '\t']);
            let (unit, set) = text.split_once('=')?;
            if !unit.eq_ignore_ascii_case("bytes") {
                return None;
            }
            match set.split_once('-')? {
                ("", "") => None,
                ("", n) => Some(suffix(num(n)?)),
                (a, "") => Some(from(num(a)?)),
                (a, b) => {
                    let (f, l) = (num(a)?, num(b)?);
                    (f <= l).then_some(ft(f, l))
                }
            }
        };
        spec().map_or(ParsedRange::PassThrough, ParsedRange::Single)
    }

    /// `parse_range` agrees with the model, and what it accepts reads back from canonical form.
    fn check_parse(bytes: &[u8]) -> Result<(), TestCaseError> {
        let got = parse_range(Some(bytes));
        prop_assert_eq!(
            got,
            model_parse(bytes),
            "{:?}",
            String::from_utf8_lossy(bytes)
        );
        if let ParsedRange::Single(spec) = got {
            prop_assert_eq!(parse_range(Some(header_of(spec).as_bytes())), got);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn blocks_reassemble_the_range((size, bs, spec) in case()) {
            let object = &model()[..size as usize];
            match resolve(Some(spec), size) {
                Resolved::Full => prop_assert!(false, "a range never resolves to Full"),
                Resolved::Unsatisfiable => {
                    // Model: no byte of the object is in the range.
                    let unsat = match spec {
                        RangeSpec::FromTo { first, .. } | RangeSpec::From { first } => first >= size,
                        RangeSpec::Suffix { len } => len == 0 || size == 0,
                    };
                    prop_assert!(unsat);
                }
                Resolved::Partial(r) => {
                    prop_assert!(r.first <= r.last && r.last < size);
                    let span = block_span(r, bs);
                    let mut got = Vec::with_capacity(r.len() as usize);
                    for i in span.indices() {
                        let b = block_bytes(i, bs, size);
                        let block = &object[b.first as usize..=b.last as usize];
                        got.extend_from_slice(&block[slice_in_block(r, i, bs)]);
                    }
                    prop_assert!(got == object[r.first as usize..=r.last as usize]);
                }
            }
        }

        #[test]
        fn block_bytes_partitions_the_object(size in 0..MAX_SIZE, log in 10u32..=22) {
            let bs = 1u64 << log;
            let mut next = 0;
            for i in 0..block_count(size, bs) {
                let b = block_bytes(i, bs, size);
                prop_assert_eq!(b.first, next);
                prop_assert!(b.len() == bs || (b.len() < bs && b.last == size - 1));
                prop_assert_eq!(block_span(b, bs), BlockSpan { first_block: i, last_block: i });
                next = b.last + 1;
            }
            prop_assert_eq!(next, size);
        }

        #[test]
        fn parse_round_trips((_, _, spec) in case()) {
            prop_assert_eq!(parse_range(Some(header_of(spec).as_bytes())), single(spec));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            check_parse(&bytes)?;
        }

        #[test]
        fn parse_near_misses(h in "[ \t]?(bytes|Bytes|BYTES|byte|items)?[ =]{0,2}[-0-9, x]{0,24}[ \t]?") {
            check_parse(h.as_bytes())?;
        }
    }
}
