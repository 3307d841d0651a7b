//! Fuzzes `auth::parse_presigned` (the `X-Amz-*` parameters of a presigned URL) and the
//! credential detection over a query.
//!
//! Run: `cargo +nightly fuzz run presign_query` from the repository root.
//!
//! Beyond "never panics": a parsed URL's expiry is within S3's week and its date round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rangecache_dataplane::auth::{parse_presigned, AmzDate, MAX_PRESIGN_EXPIRES};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    match parse_presigned(query) {
        Ok(Some(p)) => {
            assert!((1..=MAX_PRESIGN_EXPIRES).contains(&p.expires));
            assert_eq!(AmzDate::parse(p.date.as_str()), Some(p.date));
            assert!(p.credential().scope.ends_with("/aws4_request"));
            assert!(!p.signed_headers().is_empty());
        }
        Ok(None) => {}
        Err(e) => assert!((400..500).contains(&e.status())),
    }
});
