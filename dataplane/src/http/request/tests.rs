use bytes::BytesMut;

use super::*;

const BOTO3_GET: &[u8] = b"GET /analytics/data/part-00000.parquet?versionId=3HL4kqtJ HTTP/1.1\r\n\
Host: rangecache.local:8080\r\n\
Accept-Encoding: identity\r\n\
User-Agent: Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#6.8.0 md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.36\r\n\
Range: bytes=4-1048579\r\n\
X-Amz-Date: 20241123T020600Z\r\n\
X-Amz-Content-SHA256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n\
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20241123/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024\r\n\
amz-sdk-invocation-id: 6f1a4bd4-2c3e-4c6b-9d0a-5e0f1b2c3d4e\r\n\
amz-sdk-request: attempt=1\r\n\
\r\n";

fn parse(input: &[u8]) -> Result<Option<RequestHead>, ParseError> {
    parse_request(&mut BytesMut::from(input), &Limits::default())
}

fn ok(input: &[u8]) -> RequestHead {
    parse(input).expect("parse error").expect("incomplete head")
}

fn err(input: &[u8]) -> ParseError {
    parse(input).expect_err("expected a parse error")
}

fn with_headers(headers: &str) -> Vec<u8> {
    format!("PUT /b/k HTTP/1.1\r\nHost: h\r\n{headers}\r\n").into_bytes()
}

#[test]
fn boto3_signed_range_get() {
    let mut buf = BytesMut::from(BOTO3_GET);
    let head = parse_request(&mut buf, &Limits::default())
        .unwrap()
        .unwrap();
    assert!(buf.is_empty());
    assert_eq!(head.method(), "GET");
    assert_eq!(
        head.target(),
        "/analytics/data/part-00000.parquet?versionId=3HL4kqtJ"
    );
    assert_eq!(head.path(), "/analytics/data/part-00000.parquet");
    assert_eq!(head.query(), "versionId=3HL4kqtJ");
    assert_eq!(head.target_authority(), None);
    assert_eq!(head.host(), Some("rangecache.local:8080"));
    assert_eq!(head.version_minor(), 1);
    assert_eq!(head.headers().len(), 9);
    assert_eq!(head.header("range"), Some(&b"bytes=4-1048579"[..]));
    assert_eq!(
        head.header_str("x-amz-content-sha256"),
        Some("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert!(head
        .header_str("authorization")
        .unwrap()
        .ends_with("6f1024"));
    assert_eq!(head.framing(), BodyFraming::None);
    assert!(head.keep_alive());
    assert!(!head.expects_continue());
    assert_eq!(head.head_len(), BOTO3_GET.len());
}

#[test]
fn headers_are_slices_of_the_frozen_head() {
    let head = ok(BOTO3_GET);
    let range = head.as_bytes().as_ptr_range();
    for h in head.headers() {
        assert!(range.contains(&h.name.as_ptr()));
        assert!(range.contains(&h.value.as_ptr()));
    }
}

#[test]
fn pipelined_requests_and_bodies_stay_in_the_buffer() {
    let mut buf = BytesMut::from(
        &b"PUT /b/k HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
GET /b/k2?x=1 HTTP/1.1\r\nHost: h\r\n\r\nGET /b/k3 HTTP/1.1\r\nHost: h\r\n\r\nGET /partial"[..],
    );
    let limits = Limits::default();
    let put = parse_request(&mut buf, &limits).unwrap().unwrap();
    assert_eq!(put.framing(), BodyFraming::Length(5));
    assert!(buf.starts_with(b"hello"));
    let _ = buf.split_to(5);
    let second = parse_request(&mut buf, &limits).unwrap().unwrap();
    assert_eq!((second.path(), second.query()), ("/b/k2", "x=1"));
    let third = parse_request(&mut buf, &limits).unwrap().unwrap();
    assert_eq!(third.path(), "/b/k3");
    assert!(parse_request(&mut buf, &limits).unwrap().is_none());
    assert_eq!(&buf[..], b"GET /partial");
}

#[test]
fn byte_by_byte_feeding_gives_the_same_head() {
    let whole = ok(BOTO3_GET);
    let limits = Limits::default();
    let mut buf = BytesMut::new();
    let mut parsed = None;
    for (i, &b) in BOTO3_GET.iter().enumerate() {
        buf.extend_from_slice(&[b]);
        match parse_request(&mut buf, &limits).unwrap() {
            Some(head) => {
                assert_eq!(i, BOTO3_GET.len() - 1, "complete before the last byte");
                parsed = Some(head);
            }
            None => assert!(i < BOTO3_GET.len() - 1),
        }
    }
    let parsed = parsed.unwrap();
    assert_eq!(parsed.as_bytes(), whole.as_bytes());
    assert_eq!(parsed.headers(), whole.headers());
    assert_eq!(parsed.target(), whole.target());
}

#[test]
fn leading_empty_lines_are_skipped() {
    let head = ok(b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(head.path(), "/");
    assert_eq!(head.head_len(), 27);
}

#[test]
fn expect_100_continue() {
    let head = ok(&with_headers(
        "Content-Length: 3\r\nExpect: 100-Continue\r\n",
    ));
    assert!(head.expects_continue());
    assert_eq!(head.framing(), BodyFraming::Length(3));
    let http10 = ok(b"PUT /b/k HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    assert!(!http10.expects_continue());
}

#[test]
fn keep_alive_rules() {
    assert!(ok(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").keep_alive());
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive());
    assert!(!ok(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, Close\r\n\r\n").keep_alive());
    assert!(!ok(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
    assert!(ok(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    assert!(
        !ok(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n").keep_alive()
    );
    let http10 = ok(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!((http10.version_minor(), http10.host()), (0, None));
}

#[test]
fn chunked_requests() {
    assert_eq!(
        ok(&with_headers("Transfer-Encoding: chunked\r\n")).framing(),
        BodyFraming::Chunked
    );
    assert_eq!(
        ok(&with_headers("transfer-encoding:  Chunked \r\n")).framing(),
        BodyFraming::Chunked
    );
}

#[test]
fn absolute_form_targets() {
    let head =
        ok(b"GET http://bucket.s3.local:8080/key/a?list-type=2 HTTP/1.1\r\nHost: other\r\n\r\n");
    assert_eq!(head.path(), "/key/a");
    assert_eq!(head.query(), "list-type=2");
    assert_eq!(head.target_authority(), Some("bucket.s3.local:8080"));
    assert_eq!(head.host(), Some("bucket.s3.local:8080"));
    assert_eq!(head.header_str("host"), Some("other"));

    let bare = ok(b"GET HTTPS://h HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((bare.path(), bare.query()), ("/", ""));
    let query_only = ok(b"GET http://h?uploads HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((query_only.path(), query_only.query()), ("/", "uploads"));

    assert_eq!(
        err(b"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidHost
    );
    assert_eq!(
        err(b"GET http:/// HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidHost
    );
    assert_eq!(
        err(b"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidTarget
    );
    assert_eq!(
        err(b"CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidTarget
    );
}

#[test]
fn asterisk_only_for_options() {
    let head = ok(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((head.path(), head.query()), ("*", ""));
    assert_eq!(
        err(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidTarget
    );
}

#[test]
fn odd_targets_are_rejected() {
    assert_eq!(
        err(b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidTarget
    );
    assert_eq!(
        err(b"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidTarget
    );
    assert_eq!(
        err(b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidTarget
    );
    assert_eq!(
        err(b"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidTarget
    );
}

#[test]
fn rejects_duplicate_content_length_even_equal() {
    let e = err(&with_headers("Content-Length: 5\r\nContent-Length: 5\r\n"));
    assert_eq!(e, ParseError::DuplicateContentLength);
    assert_eq!(e.status(), 400);
}

#[test]
fn rejects_content_length_list() {
    let e = err(&with_headers("Content-Length: 5, 5\r\n"));
    assert_eq!(e, ParseError::DuplicateContentLength);
}

#[test]
fn rejects_bad_content_length_values() {
    for v in [
        "abc",
        "+5",
        "-5",
        "0x5",
        "5 5",
        "99999999999999999999",
        "1e3",
        "",
    ] {
        let e = err(&with_headers(&format!("Content-Length: {v}\r\n")));
        assert_eq!(e, ParseError::InvalidContentLength, "value {v:?}");
    }
}

#[test]
fn rejects_transfer_encoding_other_than_final_chunked() {
    let cases = [
        (
            "Transfer-Encoding: gzip, chunked\r\n",
            ParseError::UnsupportedTransferEncoding,
        ),
        (
            "Transfer-Encoding: chunked, gzip\r\n",
            ParseError::InvalidTransferEncoding,
        ),
        (
            "Transfer-Encoding: gzip\r\n",
            ParseError::InvalidTransferEncoding,
        ),
        (
            "Transfer-Encoding: xchunked\r\n",
            ParseError::InvalidTransferEncoding,
        ),
        (
            "Transfer-Encoding: chunked, chunked\r\n",
            ParseError::InvalidTransferEncoding,
        ),
        (
            "Transfer-Encoding: chunked,\r\n",
            ParseError::InvalidTransferEncoding,
        ),
        (
            "Transfer-Encoding: \"chunked\"\r\n",
            ParseError::InvalidTransferEncoding,
        ),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            ParseError::InvalidTransferEncoding,
        ),
        (
            "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
            ParseError::InvalidTransferEncoding,
        ),
    ];
    for (headers, want) in cases {
        assert_eq!(err(&with_headers(headers)), want, "{headers:?}");
    }
    assert_eq!(ParseError::UnsupportedTransferEncoding.status(), 501);
    assert_eq!(ParseError::InvalidTransferEncoding.status(), 400);
}

#[test]
fn rejects_content_length_with_transfer_encoding() {
    for headers in [
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    ] {
        assert_eq!(
            err(&with_headers(headers)),
            ParseError::ContentLengthWithTransferEncoding
        );
    }
}

#[test]
fn rejects_transfer_encoding_in_http10() {
    let e = err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(e, ParseError::TransferEncodingInHttp10);
}

#[test]
fn rejects_bare_lf_anywhere() {
    for input in [
        &b"GET / HTTP/1.1\nHost: h\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: h\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\n",
        b"GET / HTTP/1.1\r\nHost: h\r\nX: a\nb\r\n\r\n",
        b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        assert_eq!(
            err(input),
            ParseError::BareLf,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    // Found before the head is complete.
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: h\nX"), ParseError::BareLf);
}

#[test]
fn rejects_bare_cr() {
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n"),
        ParseError::InvalidHeaderValue
    );
}

#[test]
fn rejects_obs_fold() {
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n"),
        ParseError::ObsFold
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n"),
        ParseError::ObsFold
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\n Host: h\r\n\r\n"),
        ParseError::ObsFold
    );
    // Found before the head is complete.
    assert_eq!(err(b"GET / HTTP/1.1\r\nHost: h\r\n "), ParseError::ObsFold);
}

#[test]
fn rejects_whitespace_before_colon() {
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n"),
        ParseError::InvalidHeaderName
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n"),
        ParseError::InvalidHeaderName
    );
    assert_eq!(
        err(&with_headers("Content-Length : 5\r\n")),
        ParseError::InvalidHeaderName
    );
}

#[test]
fn rejects_bad_header_bytes() {
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\nX\x01: a\r\n\r\n"),
        ParseError::InvalidHeaderName
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\n: a\r\n\r\n"),
        ParseError::InvalidHeaderName
    );
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n"),
        ParseError::InvalidHeaderValue
    );
    // obs-text is allowed in values but is not UTF-8 text.
    let head = ok(b"GET / HTTP/1.1\r\nHost: h\r\nX: \xff\r\n\r\n");
    assert_eq!(head.header("x"), Some(&b"\xff"[..]));
    assert_eq!(head.header_str("x"), None);
}

#[test]
fn host_rules() {
    assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), ParseError::MissingHost);
    assert_eq!(
        err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
        ParseError::DuplicateHost
    );
    assert_eq!(
        err(b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
        ParseError::DuplicateHost
    );
    for bad in ["a,b", "a b", "u@h", "h/x", "h%41"] {
        let input = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
        assert_eq!(err(input.as_bytes()), ParseError::InvalidHost, "{bad:?}");
    }
    assert_eq!(
        ok(b"GET / HTTP/1.1\r\nHost: [::1]:9000\r\n\r\n").host(),
        Some("[::1]:9000")
    );
}

#[test]
fn rejects_long_targets_even_before_the_head_is_complete() {
    let limits = Limits {
        max_uri_bytes: 32,
        ..Limits::default()
    };
    let long = format!("/{}", "a".repeat(32));
    let fits = format!("/{}", "a".repeat(31));
    let complete = format!("GET {long} HTTP/1.1\r\nHost: h\r\n\r\n");
    let parse = |s: &str| parse_request(&mut BytesMut::from(s.as_bytes()), &limits);
    assert_eq!(parse(&complete).unwrap_err(), ParseError::UriTooLong);
    assert_eq!(ParseError::UriTooLong.status(), 414);
    assert_eq!(
        parse(&format!("GET {long}")).unwrap_err(),
        ParseError::UriTooLong
    );
    assert_eq!(
        parse(&format!("GET {long} HTTP/1.1\r\n")).unwrap_err(),
        ParseError::UriTooLong
    );
    assert!(parse(&format!("GET {fits} HTTP/1.1\r\nHost: h\r\n\r\n"))
        .unwrap()
        .is_some());
    assert!(parse(&format!("GET {fits}")).unwrap().is_none());
    // A partial line ending in CR measures the target as the complete line will (fuzz find).
    assert!(parse(&format!("GET {fits}\r")).unwrap().is_none());
}

#[test]
fn too_many_headers() {
    let limits = Limits {
        max_headers: 4,
        ..Limits::default()
    };
    let four = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    assert_eq!(
        parse_request(&mut BytesMut::from(&four[..]), &limits)
            .unwrap()
            .unwrap()
            .headers()
            .len(),
        4
    );
    let five = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    let e = parse_request(&mut BytesMut::from(&five[..]), &limits).unwrap_err();
    assert_eq!((e, e.status()), (ParseError::TooManyHeaders, 431));
}

#[test]
fn many_headers_beyond_the_stack_slots() {
    let limits = Limits {
        max_headers: 300,
        ..Limits::default()
    };
    let mut input = String::from("GET / HTTP/1.1\r\nHost: h\r\n");
    for i in 0..250 {
        input.push_str(&format!("X-{i}: {i}\r\n"));
    }
    input.push_str("\r\n");
    let head = parse_request(&mut BytesMut::from(input.as_bytes()), &limits)
        .unwrap()
        .unwrap();
    assert_eq!(head.headers().len(), 251);
    assert_eq!(head.header_str("x-249"), Some("249"));
    assert_eq!(err(input.as_bytes()), ParseError::TooManyHeaders);
}

#[test]
fn head_too_large() {
    let limits = Limits {
        max_head_bytes: 64,
        ..Limits::default()
    };
    let parse = |s: &[u8]| parse_request(&mut BytesMut::from(s), &limits);
    let exact = b"GET / HTTP/1.1\r\nHost: h\r\nX: 01234567890123456789012345678901\r\n\r\n";
    assert_eq!(exact.len(), 64);
    assert!(parse(exact).unwrap().is_some());
    let over = b"GET / HTTP/1.1\r\nHost: h\r\nX: 012345678901234567890123456789012\r\n\r\n";
    assert_eq!(parse(over).unwrap_err(), ParseError::HeadTooLarge);
    // Incomplete, but already at the limit without the end of the head.
    assert_eq!(parse(&over[..64]).unwrap_err(), ParseError::HeadTooLarge);
    assert!(parse(&over[..63]).unwrap().is_none());
    assert_eq!(ParseError::HeadTooLarge.status(), 431);
}

#[test]
fn rejects_invalid_methods() {
    assert_eq!(
        err(b"G(T / HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidMethod
    );
    assert_eq!(
        err(b" / HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidMethod
    );
    assert_eq!(
        err(b"GE\x01T / HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidMethod
    );
    // Methods are case-sensitive tokens; an unusual one is the router's business.
    assert_eq!(ok(b"get / HTTP/1.1\r\nHost: h\r\n\r\n").method(), "get");
}

#[test]
fn rejects_other_versions() {
    for v in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "http/1.1", "HTTP/1.10"] {
        let input = format!("GET / {v}\r\nHost: h\r\n\r\n");
        assert_eq!(err(input.as_bytes()), ParseError::InvalidVersion, "{v}");
    }
    assert_eq!(err(b"GET /\r\n\r\n"), ParseError::InvalidVersion);
}

#[test]
fn incomplete_heads_wait() {
    for input in [
        &b""[..],
        b"\r",
        b"GET",
        b"GET / HTTP/1.1\r\nHost: h\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r",
    ] {
        assert_eq!(
            parse(input),
            Ok(None),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}
