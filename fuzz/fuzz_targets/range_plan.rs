//! Fuzzes the `Range` header and the plan the read pipeline makes of it: `parse_range`, then
//! `resolve` against an object size, the block span, each block's slice, and the origin range
//! of a cold first fetch.
//!
//! Run: `cargo +nightly fuzz run range_plan` from the repository root.
//!
//! Input: 8 bytes of object size, 1 byte picking the block size (64 KiB .. 64 MiB), then the
//! header value. Beyond "never panics": a resolved range lies inside the object, the blocks'
//! slices add up to exactly its bytes, and a first fetch starts at the client's first byte and
//! ends on a block boundary.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rangecache_dataplane::cache::range::{
    block_span, parse_range, resolve, slice_in_block, ParsedRange, RangeSpec, Resolved,
};
use rangecache_dataplane::cache::read::first_fetch_range;

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let size = u64::from_le_bytes(data[..8].try_into().unwrap()) % (1 << 50);
    let bs = 1u64 << (16 + data[8] % 11);
    let header = &data[9..];
    let spec = match parse_range(Some(header)) {
        ParsedRange::None => unreachable!("a header was given"),
        ParsedRange::PassThrough => return,
        ParsedRange::Single(spec) => spec,
    };
    match first_fetch_range(spec, bs) {
        RangeSpec::FromTo { first, last } => {
            let wanted_first = match spec {
                RangeSpec::FromTo { first, .. } | RangeSpec::From { first } => first,
                RangeSpec::Suffix { .. } => unreachable!("a suffix is fetched as a suffix"),
            };
            assert_eq!(first, wanted_first, "a first fetch starts at the client's first byte");
            assert!(last >= first && (last + 1) % bs == 0, "ends on a block boundary");
            assert!(last / bs - first / bs < 16, "at most 16 blocks");
        }
        RangeSpec::Suffix { .. } => assert!(matches!(spec, RangeSpec::Suffix { .. })),
        RangeSpec::From { .. } => panic!("a first fetch is bounded"),
    }
    let range = match resolve(Some(spec), size) {
        Resolved::Unsatisfiable => return,
        Resolved::Full => return,
        Resolved::Partial(r) => r,
    };
    assert!(range.first <= range.last && range.last < size);
    let span = block_span(range, bs);
    if span.len() > 4096 {
        return; // large spans: the arithmetic is the same, the loop only slower
    }
    let total: u64 = span
        .indices()
        .map(|i| {
            let s = slice_in_block(range, i, bs);
            assert!(s.start < s.end && s.end as u64 <= bs);
            (s.end - s.start) as u64
        })
        .sum();
    assert_eq!(total, range.len());
});
