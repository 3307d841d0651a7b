//! Fuzzes `parse_request` (and `parse_response` on the same bytes).
//!
//! Run: `cargo +nightly fuzz run request_head` from the repository root.
//!
//! Beyond "never panics", it checks that feeding the bytes in small pieces finds exactly the
//! heads that feeding them at once finds, and fails if and only if that fails: a parser whose
//! answer depends on how reads were split is a request-smuggling bug.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rangecache_dataplane::http::{parse_request, parse_response, Limits, RequestHead};

/// Small enough that the fuzzer reaches every limit.
const LIMITS: Limits = Limits {
    max_head_bytes: 2048,
    max_headers: 12,
    max_uri_bytes: 256,
};

/// Feeds `data` `step` bytes at a time, parsing every pipelined head; stops at the first error.
fn parse_all(data: &[u8], step: usize) -> (Vec<RequestHead>, bool) {
    let mut buf = BytesMut::new();
    let mut heads = Vec::new();
    let mut fed = 0;
    loop {
        match parse_request(&mut buf, &LIMITS) {
            Ok(Some(head)) => {
                check_invariants(&head);
                heads.push(head);
            }
            Ok(None) if fed == data.len() => return (heads, false),
            Ok(None) => {
                let n = step.min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            Err(e) => {
                assert!(matches!(e.status(), 400 | 414 | 431 | 501));
                return (heads, true);
            }
        }
    }
}

fn check_invariants(head: &RequestHead) {
    assert!(head.head_len() <= LIMITS.max_head_bytes);
    assert!(head.headers().len() <= LIMITS.max_headers);
    assert!(head.target().len() <= LIMITS.max_uri_bytes);
    assert!(head.path().starts_with('/') || head.path() == "*");
    assert!(head.as_bytes().ends_with(b"\r\n\r\n"));
    assert!(!head.method().is_empty());
    assert!(head.version_minor() <= 1);
    if head.version_minor() == 1 {
        assert!(head.host().is_some());
    }
    let _ = (
        head.query(),
        head.framing(),
        head.keep_alive(),
        head.expects_continue(),
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(first % 17) + 1;
    let whole = parse_all(rest, rest.len().max(1));
    let pieces = parse_all(rest, step);
    assert_eq!(whole, pieces);

    let mut buf = BytesMut::from(rest);
    if let Ok(Some(head)) = parse_response(&mut buf, &LIMITS, first & 1 == 1) {
        assert!((100..=999).contains(&head.status()));
        assert!(head.head_len() <= LIMITS.max_head_bytes);
        let _ = (head.reason(), head.framing(), head.keep_alive());
    }
});
