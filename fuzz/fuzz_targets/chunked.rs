//! Fuzzes `ChunkedDecoder` (HTTP chunked and aws-chunked framing).
//!
//! Run: `cargo +nightly fuzz run chunked` from the repository root.
//!
//! Beyond "never panics", it checks that the decoded body (chunk starts, joined data,
//! trailers, end or error) is the same however the input is split into reads, and that data
//! never runs past the size its chunk announced.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rangecache_dataplane::http::{Chunk, ChunkedDecoder, Limits, ParseError};

const LIMITS: Limits = Limits {
    max_head_bytes: 512,
    max_headers: 8,
    max_uri_bytes: 256,
};

#[derive(Debug, Default, PartialEq, Eq)]
struct Outcome {
    starts: Vec<(u64, Vec<u8>)>,
    data: Vec<u8>,
    trailers: Vec<(Vec<u8>, Vec<u8>)>,
    end: bool,
    error: Option<ParseError>,
    left: Vec<u8>,
}

fn decode(data: &[u8], step: usize) -> Outcome {
    let mut decoder = ChunkedDecoder::new(&LIMITS);
    let mut buf = BytesMut::new();
    let mut out = Outcome::default();
    let mut fed = 0;
    let mut remaining = 0u64;
    loop {
        match decoder.decode(&mut buf) {
            Ok(None) if fed == data.len() => break,
            Ok(None) => {
                let n = step.min(data.len() - fed);
                buf.extend_from_slice(&data[fed..fed + n]);
                fed += n;
            }
            Ok(Some(Chunk::Start { size, extension })) => {
                assert_eq!(remaining, 0, "a chunk started before the last one ended");
                remaining = size;
                out.starts.push((size, extension.to_vec()));
            }
            Ok(Some(Chunk::Data(piece))) => {
                assert!(!piece.is_empty());
                remaining = remaining
                    .checked_sub(piece.len() as u64)
                    .expect("data past the chunk size");
                out.data.extend_from_slice(&piece);
            }
            Ok(Some(Chunk::End)) => {
                assert!(decoder.is_done());
                assert_eq!(decoder.decode(&mut buf), Ok(Some(Chunk::End)));
                out.end = true;
                break;
            }
            Err(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    out.trailers = decoder
        .trailers()
        .iter()
        .map(|h| (h.name.to_vec(), h.value.to_vec()))
        .collect();
    if out.end {
        // What follows the body is untouched, however it arrived.
        buf.extend_from_slice(&data[fed..]);
        out.left = buf.to_vec();
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let step = usize::from(first % 13) + 1;
    let whole = decode(rest, rest.len().max(1));
    let pieces = decode(rest, step);
    assert_eq!(whole, pieces);
});
