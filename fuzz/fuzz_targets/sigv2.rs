//! Fuzzes the Signature Version 2 parsers (`parse_v2_header`, `parse_v2_presigned`) and its
//! verification (`verify_v2`: string-to-sign over arbitrary headers, path and query).
//!
//! Run: `cargo +nightly fuzz run sigv2` from the repository root.
//!
//! The input is split at the first two newlines into an `Authorization` value, a raw query and
//! a path. Beyond "never panics": a parsed claim has a non-empty key id, a parsed presigned URL
//! an expiry, an error always carries a 4xx S3 status, and a random signature never verifies.

#![no_main]

use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rangecache_dataplane::auth::{
    credential, parse_v2_header, parse_v2_presigned, verify_v2, AuthError, Credential,
    RequestParts,
};
use rangecache_dataplane::http::Header;
use rangecache_dataplane::s3::route;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut fields = text.splitn(3, '\n');
    let (auth, query, path) = (
        fields.next().unwrap_or(""),
        fields.next().unwrap_or(""),
        fields.next().unwrap_or("/"),
    );
    match parse_v2_header(auth) {
        Ok(p) => assert!(!p.access_key_id.is_empty() && p.expires.is_none()),
        Err(e) => assert!((400..500).contains(&e.status())),
    }
    match parse_v2_presigned(query) {
        Ok(p) => assert!(!p.access_key_id.is_empty() && p.expires.is_some()),
        Err(e) => assert!((400..500).contains(&e.status())),
    }
    let headers = [
        header("authorization", auth),
        header("date", "Tue, 27 Mar 2007 19:36:42 GMT"),
        header("x-amz-meta-a", query),
    ];
    let parts = RequestParts {
        method: "GET",
        raw_path: path,
        raw_query: query,
        headers: if auth.is_empty() { &headers[1..] } else { &headers },
    };
    let Ok(Credential::SigV2(claim)) = credential(&parts) else {
        return;
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_175_024_202);
    let lookup = |_: &str, _: Option<&str>| Ok::<_, AuthError>((b"secret".as_slice(), ()));
    let Ok(route) = route("GET", path, query, Some("bucket.s3.local"), Some("s3.local"), false) else {
        return;
    };
    match verify_v2(&parts, claim, &route, lookup, now) {
        // A signature from the fuzzer matching HMAC-SHA1 under "secret" would be a forgery.
        Ok(_) => panic!("a fuzzed SigV2 signature verified"),
        Err(e) => assert!((400..500).contains(&e.status())),
    }
});

fn header(name: &str, value: &str) -> Header {
    Header {
        name: Bytes::copy_from_slice(name.as_bytes()),
        value: Bytes::copy_from_slice(value.trim().as_bytes()),
    }
}
