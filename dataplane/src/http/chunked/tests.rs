use bytes::BytesMut;
use proptest::prelude::*;

use super::super::chunk_size_line;
use super::*;

/// Everything a body decodes to, with data pieces joined.
#[derive(Debug, Default, PartialEq, Eq)]
struct Decoded {
    starts: Vec<(u64, Vec<u8>)>,
    data: Vec<u8>,
    trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Decodes all of `input` at once; returns what was decoded and the bytes left after `End`.
fn decode_all(input: &[u8]) -> Result<(Decoded, BytesMut), ParseError> {
    decode_with(input, &Limits::default())
}

fn decode_with(input: &[u8], limits: &Limits) -> Result<(Decoded, BytesMut), ParseError> {
    let mut decoder = ChunkedDecoder::new(limits);
    let mut buf = BytesMut::from(input);
    let mut out = Decoded::default();
    loop {
        match decoder.decode(&mut buf)? {
            Some(Chunk::Start { size, extension }) => out.starts.push((size, extension.to_vec())),
            Some(Chunk::Data(d)) => out.data.extend_from_slice(&d),
            Some(Chunk::End) => break,
            None => panic!("incomplete body: {:?}", String::from_utf8_lossy(&buf)),
        }
    }
    assert!(decoder.is_done());
    out.trailers = decoder
        .trailers()
        .iter()
        .map(|h| (h.name.to_vec(), h.value.to_vec()))
        .collect();
    Ok((out, buf))
}

fn err(input: &[u8]) -> ParseError {
    match decode_all(input) {
        Ok((out, _)) => panic!("expected an error, decoded {} data bytes", out.data.len()),
        Err(e) => e,
    }
}

/// Feeds `input` and returns the first error, or `None` if the decoder only asks for more.
fn partial_err(input: &[u8]) -> Option<ParseError> {
    let mut decoder = ChunkedDecoder::new(&Limits::default());
    let mut buf = BytesMut::from(input);
    loop {
        match decoder.decode(&mut buf) {
            Ok(Some(Chunk::End)) => panic!("unexpected end"),
            Ok(Some(_)) => {}
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

#[test]
fn plain_chunked_body() {
    let (out, rest) = decode_all(b"5\r\nhello\r\nC\r\n, rangecache\r\n0\r\n\r\nGET /").unwrap();
    assert_eq!(out.data, b"hello, rangecache");
    assert_eq!(out.starts, vec![(5, vec![]), (12, vec![]), (0, vec![])]);
    assert!(out.trailers.is_empty());
    assert_eq!(&rest[..], b"GET /");
}

#[test]
fn events_in_order_and_end_repeats() {
    let mut decoder = ChunkedDecoder::new(&Limits::default());
    let mut buf = BytesMut::from(&b"3\r\nab"[..]);
    let start = decoder.decode(&mut buf).unwrap();
    assert_eq!(
        start,
        Some(Chunk::Start {
            size: 3,
            extension: Bytes::new()
        })
    );
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(Chunk::Data(Bytes::from_static(b"ab")))
    );
    assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(b"c\r");
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(Chunk::Data(Bytes::from_static(b"c")))
    );
    assert_eq!(decoder.decode(&mut buf).unwrap(), None);
    buf.extend_from_slice(b"\n0\r\n\r\nnext");
    let last = decoder.decode(&mut buf).unwrap();
    assert_eq!(
        last,
        Some(Chunk::Start {
            size: 0,
            extension: Bytes::new()
        })
    );
    assert!(!decoder.is_done());
    assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Chunk::End));
    assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Chunk::End));
    assert!(decoder.is_done());
    assert_eq!(&buf[..], b"next");
}

#[test]
fn aws_chunked_signatures_and_trailers() {
    // The shape of AWS's STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER example.
    let sig1 = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
    let sig2 = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9";
    let body = format!(
        "10000;chunk-signature={sig1}\r\n{}\r\n0;chunk-signature={sig2}\r\n\
x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:63bddb248ad2590c92712055f51b8e78ab024eead08276b24f010b0efd74843f\r\n\r\n",
        "a".repeat(0x10000)
    );
    let (out, rest) = decode_all(body.as_bytes()).unwrap();
    assert!(rest.is_empty());
    assert_eq!(out.data.len(), 0x10000);
    assert_eq!(
        out.starts,
        vec![
            (0x10000, format!("chunk-signature={sig1}").into_bytes()),
            (0, format!("chunk-signature={sig2}").into_bytes()),
        ]
    );
    assert_eq!(
        out.trailers[0],
        (b"x-amz-checksum-crc32c".to_vec(), b"sOO8/Q==".to_vec())
    );
    assert_eq!(out.trailers[1].0, b"x-amz-trailer-signature");
    assert_eq!(out.trailers.len(), 2);
}

#[test]
fn extensions_and_trailers_as_rfc_9112_allows() {
    let body = b"5;a=1;b=\"x y\\\"z\";flag\r\nhello\r\n0 ; last = yes\r\nExpires:  never \r\n\r\n";
    let (out, _) = decode_all(body).unwrap();
    assert_eq!(out.starts[0], (5, b"a=1;b=\"x y\\\"z\";flag".to_vec()));
    assert_eq!(out.starts[1], (0, b" last = yes".to_vec()));
    assert_eq!(out.trailers, vec![(b"Expires".to_vec(), b"never".to_vec())]);
    let (empty_value, _) = decode_all(b"0\r\nX-Empty:\r\n\r\n").unwrap();
    assert_eq!(empty_value.trailers, vec![(b"X-Empty".to_vec(), vec![])]);
}

#[test]
fn sizes_are_strict_hex() {
    let (out, _) = decode_all(b"0005\r\nhello\r\n00\r\n\r\n").unwrap();
    assert_eq!(out.data, b"hello");
    for bad in [
        &b"+5\r\n"[..],
        b"-5\r\n",
        b" 5\r\n",
        b"\t5\r\n",
        b"g\r\n",
        b"\r\n",
        b"5 \r\n",
        b"5x\r\n",
    ] {
        assert_eq!(
            err(bad),
            ParseError::InvalidChunkSize,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    // "0x5" is the size 0 followed by garbage.
    assert_eq!(err(b"0x5\r\n"), ParseError::InvalidChunkSize);
}

#[test]
fn sizes_cannot_overflow() {
    let mut decoder = ChunkedDecoder::new(&Limits::default());
    let mut buf = BytesMut::from(&b"ffffffffffffffff\r\nab"[..]);
    let start = decoder.decode(&mut buf).unwrap();
    assert_eq!(
        start,
        Some(Chunk::Start {
            size: u64::MAX,
            extension: Bytes::new()
        })
    );
    assert_eq!(
        decoder.decode(&mut buf).unwrap(),
        Some(Chunk::Data(Bytes::from_static(b"ab")))
    );
    assert_eq!(err(b"10000000000000000\r\n"), ParseError::ChunkTooLarge);
    assert_eq!(err(b"00000000000000005\r\n"), ParseError::ChunkTooLarge);
}

#[test]
fn crlf_is_required() {
    assert_eq!(err(b"5\nhello\r\n0\r\n\r\n"), ParseError::BareLf);
    assert_eq!(err(b"5;a=1\nhello\r\n0\r\n\r\n"), ParseError::BareLf);
    assert_eq!(
        err(b"5\r\nhello\n0\r\n\r\n"),
        ParseError::InvalidChunkTerminator
    );
    assert_eq!(
        err(b"5\r\nhelloX\r\n0\r\n\r\n"),
        ParseError::InvalidChunkTerminator
    );
    assert_eq!(
        err(b"5\r\nhello\rX0\r\n\r\n"),
        ParseError::InvalidChunkTerminator
    );
    assert_eq!(err(b"5\r\nhello\r\n0\r\n\n"), ParseError::BareLf);
    assert_eq!(err(b"0\r\nX: y\n\r\n"), ParseError::BareLf);
    assert_eq!(
        partial_err(b"5\r\nhello\n"),
        Some(ParseError::InvalidChunkTerminator)
    );
}

#[test]
fn bad_extensions() {
    for bad in [
        &b"5;\r\n"[..],
        b"5;=x\r\n",
        b"5;a=\r\n",
        b"5;a b\r\n",
        b"5;a=\"open\r\n",
        b"5;a=x y\r\n",
        b"5;a;\r\n",
        b"5;a=1 \r\n",
        b"5;a=\"\x01\"\r\n",
    ] {
        assert_eq!(
            err(bad),
            ParseError::InvalidChunkExtension,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn size_lines_are_bounded() {
    let long = format!("5;x={}", "a".repeat(MAX_CHUNK_LINE_BYTES));
    assert_eq!(
        partial_err(long.as_bytes()),
        Some(ParseError::ChunkLineTooLong)
    );
    let just = format!(
        "5;x={}\r\nhello\r\n0\r\n\r\n",
        "a".repeat(MAX_CHUNK_LINE_BYTES - 6)
    );
    assert_eq!(decode_all(just.as_bytes()).unwrap().0.data, b"hello");
    let over = format!(
        "5;x={}\r\nhello\r\n0\r\n\r\n",
        "a".repeat(MAX_CHUNK_LINE_BYTES - 5)
    );
    assert_eq!(err(over.as_bytes()), ParseError::ChunkLineTooLong);
    // Garbage is rejected at its first byte, without waiting for a line.
    assert_eq!(partial_err(b"z"), Some(ParseError::InvalidChunkSize));
}

#[test]
fn trailers_are_bounded_and_strict() {
    let limits = Limits {
        max_head_bytes: 32,
        max_headers: 2,
        ..Limits::default()
    };
    let fits = b"0\r\nA: 1\r\nB: 1234567890123456789\r\n\r\n";
    assert_eq!(decode_with(fits, &limits).unwrap().0.trailers.len(), 2);
    let large = b"0\r\nA: 1\r\nB: 12345678901234567890\r\n\r\n";
    assert_eq!(
        decode_with(large, &limits).unwrap_err(),
        ParseError::TrailersTooLarge
    );
    let many = b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        decode_with(many, &limits).unwrap_err(),
        ParseError::TooManyHeaders
    );

    assert_eq!(err(b"0\r\nA: 1\r\n folded\r\n\r\n"), ParseError::ObsFold);
    assert_eq!(err(b"0\r\nA : 1\r\n\r\n"), ParseError::InvalidHeaderName);
    assert_eq!(err(b"0\r\n: 1\r\n\r\n"), ParseError::InvalidHeaderName);
    assert_eq!(err(b"0\r\nno-colon\r\n\r\n"), ParseError::InvalidHeaderName);
    assert_eq!(
        err(b"0\r\nA: 1\x00\r\n\r\n"),
        ParseError::InvalidHeaderValue
    );
    assert_eq!(err(b"0\r\nA: 1\r2\r\n\r\n"), ParseError::InvalidHeaderValue);
}

/// One chunk extension as a sender might write it (without the leading `;`).
fn extension() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "chunk-signature=[0-9a-f]{64}",
        "[a-z][a-z0-9-]{0,10}(=([A-Za-z0-9.]{1,12}|\"[a-z ]{0,8}\"))?(;[a-z]{1,4})?",
    ]
}

/// A trailer field: name, value (no surrounding whitespace), and whether to put a space
/// after the colon (aws-chunked does not).
fn trailer() -> impl Strategy<Value = (String, String, bool)> {
    (
        "[A-Za-z][A-Za-z0-9-]{0,15}",
        "([!-~]([ !-~]{0,18}[!-~])?)?",
        any::<bool>(),
    )
}

proptest! {
    #[test]
    fn random_bodies_round_trip(
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
        sizes in proptest::collection::vec(1usize..300, 1..16),
        extensions in proptest::collection::vec(extension(), 1..16),
        trailers in proptest::collection::vec(trailer(), 0..4),
        fragments in proptest::collection::vec(1usize..80, 1..16),
    ) {
        // Encode.
        let mut wire = Vec::new();
        let mut expected_starts = Vec::new();
        let mut offset = 0;
        let mut i = 0;
        loop {
            let size = if offset == payload.len() {
                0
            } else {
                sizes[i % sizes.len()].min(payload.len() - offset)
            };
            let ext = &extensions[i % extensions.len()];
            if ext.is_empty() {
                wire.extend_from_slice(&chunk_size_line(size));
            } else {
                wire.extend_from_slice(format!("{size:X};{ext}\r\n").as_bytes());
            }
            expected_starts.push((size as u64, ext.clone().into_bytes()));
            if size == 0 {
                break;
            }
            wire.extend_from_slice(&payload[offset..offset + size]);
            wire.extend_from_slice(b"\r\n");
            offset += size;
            i += 1;
        }
        for (name, value, space) in &trailers {
            let sep = if *space { ": " } else { ":" };
            wire.extend_from_slice(format!("{name}{sep}{value}\r\n").as_bytes());
        }
        wire.extend_from_slice(b"\r\nNEXT");

        // Decode, fed in fragments.
        let mut decoder = ChunkedDecoder::new(&Limits::default());
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let mut frag = 0;
        let mut starts = Vec::new();
        let mut data = Vec::new();
        let mut current: Option<(u64, u64)> = None; // (size, received)
        loop {
            match decoder.decode(&mut buf).unwrap() {
                None => {
                    prop_assert!(fed < wire.len(), "decoder wants bytes past the body");
                    let n = fragments[frag % fragments.len()].min(wire.len() - fed);
                    buf.extend_from_slice(&wire[fed..fed + n]);
                    fed += n;
                    frag += 1;
                }
                Some(Chunk::Start { size, extension }) => {
                    if let Some((size, received)) = current {
                        prop_assert_eq!(size, received);
                    }
                    current = Some((size, 0));
                    starts.push((size, extension.to_vec()));
                }
                Some(Chunk::Data(piece)) => {
                    prop_assert!(!piece.is_empty());
                    let (size, received) = current.as_mut().expect("data before start");
                    *received += piece.len() as u64;
                    prop_assert!(*received <= *size, "data past the chunk");
                    data.extend_from_slice(&piece);
                }
                Some(Chunk::End) => break,
            }
        }
        prop_assert_eq!(&data, &payload);
        prop_assert_eq!(&starts, &expected_starts);
        let got: Vec<(String, String)> = decoder
            .trailers()
            .iter()
            .map(|h| (h.name_str().to_owned(), h.value_str().unwrap().to_owned()))
            .collect();
        let want: Vec<(String, String)> =
            trailers.iter().map(|(n, v, _)| (n.clone(), v.clone())).collect();
        prop_assert_eq!(got, want);
        // End is final and consumes nothing more.
        buf.extend_from_slice(&wire[fed..]);
        prop_assert_eq!(decoder.decode(&mut buf).unwrap(), Some(Chunk::End));
        prop_assert_eq!(&buf[..], b"NEXT");
    }

    #[test]
    fn splitting_never_changes_the_outcome(
        input in proptest::collection::vec(
            prop_oneof![Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'5'), Just(b';'), Just(b'a'), Just(b':'), Just(b' ')],
            0..64,
        ),
        cut in any::<prop::sample::Index>(),
    ) {
        let whole = decode_events(&input, input.len());
        let split = decode_events(&input, cut.index(input.len() + 1).max(1));
        prop_assert_eq!(whole, split);
    }
}

/// Decodes `input` fed `step` bytes at a time; the joined events and the error, if any.
fn decode_events(input: &[u8], step: usize) -> (Decoded, bool, Option<ParseError>) {
    let mut decoder = ChunkedDecoder::new(&Limits::default());
    let mut buf = BytesMut::new();
    let mut out = Decoded::default();
    let mut fed = 0;
    loop {
        match decoder.decode(&mut buf) {
            Ok(None) if fed == input.len() => return (out, false, None),
            Ok(None) => {
                let n = step.min(input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
            Ok(Some(Chunk::Start { size, extension })) => {
                out.starts.push((size, extension.to_vec()))
            }
            Ok(Some(Chunk::Data(d))) => out.data.extend_from_slice(&d),
            Ok(Some(Chunk::End)) => return (out, true, None),
            Err(e) => return (out, false, Some(e)),
        }
    }
}
