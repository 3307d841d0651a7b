//! Fuzzes `auth::parse_authorization` (the SigV4 `Authorization` header).
//!
//! Run: `cargo +nightly fuzz run auth_header` from the repository root.
//!
//! Beyond "never panics": whatever parses has a credential scope that is a suffix of the
//! input, and an error always carries a 4xx S3 status.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rangecache_dataplane::auth::parse_authorization;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    match parse_authorization(value) {
        Ok(parsed) => {
            let scope = parsed.credential();
            assert!(value.contains(scope.scope));
            assert!(scope.scope.ends_with("/aws4_request"));
            assert!(!parsed.signed_headers.is_empty());
        }
        Err(e) => assert!((400..500).contains(&e.status())),
    }
});
