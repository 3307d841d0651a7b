//! Fuzzes the Azure Blob XML readers: a List Blobs answer (from the origin) and a
//! CompleteMultipartUpload body (from a client).
//!
//! Run: `cargo +nightly fuzz run azure_xml` from the repository root.
//!
//! Beyond "never panics": a list that translates is well-formed XML again (it parses to its
//! end), and a part list that parses is strictly ascending within 1..=10000.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rangecache_dataplane::origin::azure::{blocks, list};

fuzz_target!(|data: &[u8]| {
    let q = list::ListQuery::parse("list-type=2&encoding-type=url&start-after=m", "b", true)
        .expect("a fixed valid query");
    if let Ok(xml) = list::translate(&q, data) {
        let mut reader = quick_xml::Reader::from_str(&xml);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(e) => panic!("translated list does not parse: {e}: {xml}"),
            }
        }
    }
    if let Ok(parts) = blocks::completed_parts(data) {
        assert!(!parts.is_empty());
        assert!(parts.windows(2).all(|w| w[0] < w[1]));
        assert!(parts.iter().all(|p| (1..=10_000).contains(p)));
    }
});
