//! Fuzzes the PROXY protocol parsers (versions 1 and 2), the untrusted-peer detector and the
//! forwarded-header trust walk (`X-Forwarded-For`, RFC 7239 `Forwarded`).
//!
//! Run: `cargo +nightly fuzz run proxy_header` from the repository root.
//!
//! Beyond "never panics": a complete header is no longer than the bytes given nor than its
//! version's bound; a partial parse never asks a reader to take bytes past the bound; every
//! prefix of a complete header is partial (a reader that gets it in pieces agrees); and the
//! trust walk returns the peer or one of the hops it was given.

#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use rangecache_dataplane::edge::forwarded::{forwarded_for, walk, x_forwarded_for};
use rangecache_dataplane::edge::proxy_protocol::{
    looks_like_proxy, parse, Progress, ProxyVersion, V1_MAX, V2_MAX,
};
use rangecache_dataplane::edge::Cidr;

fuzz_target!(|data: &[u8]| {
    for (version, bound) in [(ProxyVersion::V1, V1_MAX), (ProxyVersion::V2, V2_MAX)] {
        match parse(version, data) {
            Ok(Progress::Complete(h)) => {
                assert!(h.len <= data.len() && h.len <= bound);
                for cut in 0..h.len {
                    assert!(
                        matches!(parse(version, &data[..cut]), Ok(Progress::Partial { .. })),
                        "prefix {cut} of a {}-byte header",
                        h.len
                    );
                }
            }
            Ok(Progress::Partial { at_least }) => {
                assert!(at_least >= 1 && data.len() + at_least <= bound);
            }
            Err(_) => {}
        }
    }
    let _ = looks_like_proxy(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let peer: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let lines: Vec<&str> = text.split('\n').collect();
        for hops in [
            x_forwarded_for(lines.iter().copied()).collect::<Vec<_>>(),
            forwarded_for(lines.iter().copied()).collect::<Vec<_>>(),
        ] {
            let client = walk(peer, hops.iter().copied(), &trusted);
            assert!(client == peer || hops.contains(&Some(client)));
        }
    }
});
