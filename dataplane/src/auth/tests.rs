//! Verification against AWS's published S3 SigV4 examples (written out below as fixtures),
//! against aws-sigv4 signing random requests, and the failure cases with their S3 codes.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
    SignatureLocation, SigningSettings, UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use proptest::prelude::*;
use ring::hmac;

use super::canonical::{
    canonical_request, hex32, normalized_path, sha256, unhex32, write_string_to_sign,
};
use super::*;
use crate::http::Header;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn hdr(name: &str, value: &str) -> Header {
    Header {
        name: Bytes::copy_from_slice(name.as_bytes()),
        value: Bytes::copy_from_slice(value.trim_matches([' ', '\t']).as_bytes()),
    }
}

fn at(timestamp: &str) -> SystemTime {
    AmzDate::parse(timestamp).unwrap().time()
}

/// The key lookup of the tests: one key, AWS's example one; the principal is the key id.
fn lookup(akid: &str, _token: Option<&str>) -> Result<(&'static str, String), AuthError> {
    if akid == AKID {
        Ok((SECRET, akid.to_owned()))
    } else {
        Err(AuthError::invalid_access_key_id())
    }
}

/// An owned request to build [`RequestParts`] from.
#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    query: String,
    headers: Vec<Header>,
}

impl Req {
    fn new(method: &str, target: &str, headers: &[(&str, &str)]) -> Self {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Self {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: headers.iter().map(|(n, v)| hdr(n, v)).collect(),
        }
    }

    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            raw_path: &self.path,
            raw_query: &self.query,
            headers: &self.headers,
        }
    }

    fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|h| !h.is(name));
        self.headers.push(hdr(name, value));
    }

    fn verify_at(&self, now: SystemTime) -> Result<String, AuthError> {
        self.verify_with(now, &KeyCache::default())
    }

    fn verify_with(&self, now: SystemTime, keys: &KeyCache) -> Result<String, AuthError> {
        let parts = self.parts();
        let cred = credential(&parts)?;
        verify(&parts, &cred, lookup, keys, now).map(|v| v.principal)
    }
}

/// The canonical request this module builds for `req` (raw path), as text.
fn canonical_text(req: &Req, uri: &[u8], presigned: bool, signed: &str, payload: &str) -> String {
    let parts = req.parts();
    String::from_utf8(canonical_request(&parts, uri, presigned, signed, payload).unwrap()).unwrap()
}

/// The hex signature of a canonical request, signed with the example secret.
fn signature_of(canonical: &str, timestamp: &str, region: &str) -> String {
    let key = derive_signing_key(SECRET.as_bytes(), &timestamp[..8], region, "s3");
    let scope = format!("{}/{region}/s3/aws4_request", &timestamp[..8]);
    let mut sts = Vec::new();
    write_string_to_sign(&mut sts, timestamp, &scope, &sha256(canonical.as_bytes()));
    let tag = hmac::sign(&key, &sts);
    String::from_utf8(hex32(tag.as_ref().try_into().unwrap()).to_vec()).unwrap()
}

fn auth_header(signed: &str, signature: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/s3/aws4_request,\
         SignedHeaders={signed},Signature={signature}"
    )
}

// ---------------------------------------------------------------------------------------
// AWS's published examples ("Signature Calculations for the Authorization Header", "Query
// String Authentication", "Signature Calculation: Transfer Payload in Multiple Chunks").
// ---------------------------------------------------------------------------------------

/// S3 example "GET Object": the first 10 bytes of test.txt.
const GET_OBJECT_CANONICAL: &str = "GET\n/test.txt\n\n\
host:examplebucket.s3.amazonaws.com\n\
range:bytes=0-9\n\
x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
x-amz-date:20130524T000000Z\n\n\
host;range;x-amz-content-sha256;x-amz-date\n\
e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const GET_OBJECT_STS_HASH: &str =
    "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972";
const GET_OBJECT_SIGNATURE: &str =
    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

fn get_object() -> Req {
    Req::new(
        "GET",
        "/test.txt",
        &[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY),
            ("x-amz-date", "20130524T000000Z"),
            (
                "Authorization",
                &auth_header(
                    "host;range;x-amz-content-sha256;x-amz-date",
                    GET_OBJECT_SIGNATURE,
                ),
            ),
        ],
    )
}

#[test]
fn aws_example_get_object() {
    let req = get_object();
    let signed = "host;range;x-amz-content-sha256;x-amz-date";
    let canonical = canonical_text(&req, b"/test.txt", false, signed, EMPTY);
    assert_eq!(canonical, GET_OBJECT_CANONICAL);
    let hex = |d: [u8; 32]| String::from_utf8(hex32(&d).to_vec()).unwrap();
    assert_eq!(hex(sha256(canonical.as_bytes())), GET_OBJECT_STS_HASH);
    assert_eq!(
        signature_of(&canonical, "20130524T000000Z", "us-east-1"),
        GET_OBJECT_SIGNATURE
    );

    let parts = req.parts();
    let cred = credential(&parts).unwrap();
    let keys = KeyCache::default();
    let now = at("20130524T000500Z");
    let ok = verify(&parts, &cred, lookup, &keys, now).unwrap();
    assert_eq!(ok.access_key_id, AKID);
    assert_eq!(ok.principal, AKID);
    assert_eq!(ok.scope.region, "us-east-1");
    assert_eq!(
        ok.payload,
        PayloadHash::Signed(unhex32(EMPTY.as_bytes()).unwrap())
    );
    assert_eq!(ok.expires_at, None);
    assert_eq!(ok.session_token, None);
    assert!(ChunkVerifier::new(&ok).is_none());
}

/// S3 example "PUT Object": `$` sent unencoded in the path, dated with `Date` too.
const PUT_OBJECT_CANONICAL: &str = "PUT\n/test%24file.text\n\n\
date:Fri, 24 May 2013 00:00:00 GMT\n\
host:examplebucket.s3.amazonaws.com\n\
x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n\
x-amz-date:20130524T000000Z\n\
x-amz-storage-class:REDUCED_REDUNDANCY\n\n\
date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n\
44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
const PUT_OBJECT_SIGNATURE: &str =
    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
const PUT_OBJECT_SHA256: &str = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";

#[test]
fn aws_example_put_object() {
    let signed = "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class";
    let req = Req::new(
        "PUT",
        "/test$file.text",
        &[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("Authorization", &auth_header(signed, PUT_OBJECT_SIGNATURE)),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", PUT_OBJECT_SHA256),
        ],
    );
    let uri = normalized_path(&req.path).unwrap();
    let canonical = canonical_text(&req, &uri, false, signed, PUT_OBJECT_SHA256);
    assert_eq!(canonical, PUT_OBJECT_CANONICAL);
    assert_eq!(
        signature_of(&canonical, "20130524T000000Z", "us-east-1"),
        PUT_OBJECT_SIGNATURE
    );
    let body = b"Welcome to Amazon S3.";
    assert_eq!(
        hex32(&sha256(body)).as_slice(),
        PUT_OBJECT_SHA256.as_bytes()
    );

    // Verified through the normalized-path retry, the body checked against its hash.
    let parts = req.parts();
    let cred = credential(&parts).unwrap();
    let ok = verify(
        &parts,
        &cred,
        lookup,
        &KeyCache::default(),
        at("20130524T000000Z"),
    )
    .unwrap();
    let PayloadHash::Signed(expected) = ok.payload else {
        panic!("{:?}", ok.payload)
    };
    let mut body_check = PayloadVerifier::new(expected);
    body_check.update(&body[..7]);
    body_check.update(&body[7..]);
    assert_eq!(body_check.verify(), Ok(()));
    let mut tampered = PayloadVerifier::new(expected);
    tampered.update(b"Welcome to Amazon S4.");
    assert_eq!(
        tampered.verify().unwrap_err().kind(),
        AuthErrorKind::XAmzContentSHA256Mismatch
    );

    // The same request sent with the path encoded verifies on the first try.
    let mut encoded = req.clone();
    encoded.path = "/test%24file.text".into();
    assert!(encoded.verify_at(at("20130524T000000Z")).is_ok());
    // The PUT with only `Date` (no x-amz-date) dates itself from `Date`.
    let signed = "date;host;x-amz-content-sha256;x-amz-storage-class";
    let mut dated = encoded.clone();
    dated.headers.retain(|h| !h.is("x-amz-date"));
    let canonical = canonical_text(
        &dated,
        b"/test%24file.text",
        false,
        signed,
        PUT_OBJECT_SHA256,
    );
    let signature = signature_of(&canonical, "20130524T000000Z", "us-east-1");
    dated.set_header("Authorization", &auth_header(signed, &signature));
    assert!(dated.verify_at(at("20130524T001000Z")).is_ok());
}

/// S3 examples "GET Bucket Lifecycle" and "Get Bucket (List Objects)".
#[test]
fn aws_example_bucket_requests() {
    let signed = "host;x-amz-content-sha256;x-amz-date";
    for (target, canonical_query, expected) in [
        (
            "/?lifecycle",
            "lifecycle=",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ),
        (
            "/?max-keys=2&prefix=J",
            "max-keys=2&prefix=J",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ] {
        let mut req = Req::new(
            "GET",
            target,
            &[
                ("Host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-content-sha256", EMPTY),
            ],
        );
        let canonical = canonical_text(&req, b"/", false, signed, EMPTY);
        assert_eq!(
            canonical,
            format!(
                "GET\n/\n{canonical_query}\nhost:examplebucket.s3.amazonaws.com\n\
                 x-amz-content-sha256:{EMPTY}\nx-amz-date:20130524T000000Z\n\n{signed}\n{EMPTY}"
            )
        );
        assert_eq!(
            signature_of(&canonical, "20130524T000000Z", "us-east-1"),
            expected
        );
        req.set_header("Authorization", &auth_header(signed, expected));
        assert!(req.verify_at(at("20130524T000000Z")).is_ok(), "{target}");
    }
}

/// S3 example of a presigned URL: GET test.txt, valid 86400 s.
const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
const PRESIGNED_CANONICAL: &str = "GET\n/test.txt\n\
X-Amz-Algorithm=AWS4-HMAC-SHA256\
&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n\
host:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD";

fn presigned_example() -> Req {
    Req::new(
        "GET",
        &format!("/test.txt?{PRESIGNED_QUERY}"),
        &[("Host", "examplebucket.s3.amazonaws.com")],
    )
}

#[test]
fn aws_example_presigned_url() {
    let req = presigned_example();
    let canonical = canonical_text(&req, b"/test.txt", true, "host", "UNSIGNED-PAYLOAD");
    assert_eq!(canonical, PRESIGNED_CANONICAL);
    let hex = String::from_utf8(hex32(&sha256(canonical.as_bytes())).to_vec()).unwrap();
    assert_eq!(
        hex,
        "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04"
    );

    let parts = req.parts();
    let cred = credential(&parts).unwrap();
    assert!(matches!(cred, Credential::Presigned(_)));
    let keys = KeyCache::default();
    let ok = verify(&parts, &cred, lookup, &keys, at("20130524T120000Z")).unwrap();
    assert_eq!(ok.payload, PayloadHash::Unsigned);
    assert_eq!(ok.expires_at, Some(at("20130525T000000Z")));
    // Valid to the last second, expired after it; not valid long before it was made.
    assert!(req.verify_at(at("20130525T000000Z")).is_ok());
    let expired = req.verify_at(at("20130525T000001Z")).unwrap_err();
    assert_eq!(
        (expired.code(), expired.message()),
        ("AccessDenied", "Request has expired")
    );
    assert!(req.verify_at(at("20130523T234600Z")).is_ok());
    let early = req.verify_at(at("20130523T234400Z")).unwrap_err();
    assert_eq!(early.message(), "Request is not valid yet");
    // Extra query parameters and headers the URL did not sign.
    let mut extra = req.clone();
    extra.query.push_str("&response-content-type=text%2Fplain");
    assert_eq!(
        extra.verify_at(at("20130524T120000Z")).unwrap_err().kind(),
        AuthErrorKind::SignatureDoesNotMatch
    );
    let mut extra = req.clone();
    extra.set_header("User-Agent", "curl/8.0");
    extra.set_header("x-amz-user-agent", "sdk");
    assert!(extra.verify_at(at("20130524T120000Z")).is_ok());
    extra.set_header("x-amz-acl", "public-read");
    assert_eq!(
        extra.verify_at(at("20130524T120000Z")).unwrap_err().kind(),
        AuthErrorKind::AccessDenied
    );
}

/// S3 example of a chunked upload: 66560 bytes of 'a' in a 65536-byte chunk, a 1024-byte chunk
/// and the empty last chunk, each signed in a chain from the request's seed signature.
const STREAMING_SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const STREAMING_CHUNKS: [(usize, &str); 3] = [
    (
        65_536,
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
    ),
    (
        1_024,
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
    ),
    (
        0,
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ),
];

fn streaming_example() -> Req {
    let signed = "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
                  x-amz-decoded-content-length;x-amz-storage-class";
    Req::new(
        "PUT",
        "/examplebucket/chunkObject.txt",
        &[
            ("Host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("Authorization", &auth_header(signed, STREAMING_SEED)),
            ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            ("Content-Encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("Content-Length", "66824"),
        ],
    )
}

#[test]
fn aws_example_streaming_upload() {
    let req = streaming_example();
    let parts = req.parts();
    let cred = credential(&parts).unwrap();
    let ok = verify(
        &parts,
        &cred,
        lookup,
        &KeyCache::default(),
        at("20130524T000000Z"),
    )
    .unwrap();
    assert_eq!(ok.payload, PayloadHash::Streaming(StreamingKind::Signed));
    assert!(TrailerChecksum::from_request(&parts).unwrap().is_none());

    // Chunk data fed in pieces, as a decoder hands it out.
    let mut chain = ChunkVerifier::new(&ok).unwrap();
    for (size, signature) in STREAMING_CHUNKS {
        for piece in vec![b'a'; size].chunks(4000) {
            chain.update(piece);
        }
        assert!(!chain.is_complete());
        chain
            .finish_chunk(format!("chunk-signature={signature}").as_bytes())
            .unwrap();
    }
    assert!(chain.is_complete());
    // Nothing may follow the last chunk.
    assert!(chain.finish_chunk(b"chunk-signature=00").is_err());

    // The same chain with precomputed hashes; a reordered or altered chunk breaks it.
    let mut chain = ChunkVerifier::new(&ok).unwrap();
    let (size, sig) = STREAMING_CHUNKS[0];
    let ext = format!("chunk-signature={sig}");
    assert!(chain
        .verify_chunk(ext.as_bytes(), &sha256(&vec![b'a'; size]))
        .is_ok());
    let (_, sig) = STREAMING_CHUNKS[1];
    let ext = format!("chunk-signature={sig}");
    let err = chain
        .verify_chunk(ext.as_bytes(), &sha256(&[b'b'; 1024]))
        .unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::SignatureDoesNotMatch);
    assert!(chain
        .verify_chunk(ext.as_bytes(), &sha256(&[b'a'; 1024]))
        .is_err());
    assert!(!chain.is_complete());

    let mut chain = ChunkVerifier::new(&ok).unwrap();
    let (_, sig) = STREAMING_CHUNKS[1];
    let ext = format!("chunk-signature={sig}");
    assert!(chain
        .verify_chunk(ext.as_bytes(), &sha256(&[b'a'; 1024]))
        .is_err());
    let mut chain = ChunkVerifier::new(&ok).unwrap();
    assert!(chain.verify_chunk(b"", &sha256(&[])).is_err());
}

// ---------------------------------------------------------------------------------------
// Signing with aws-sigv4, the SDK signer, and verifying here.
// ---------------------------------------------------------------------------------------

/// How aws-sigv4 signs for S3 (the settings rangecache's origin signer uses).
fn settings(presign: Option<Duration>) -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    match presign {
        Some(expires) => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
        None => settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
    }
    settings
}

/// AWS's encoding: everything but unreserved (and `/` in paths) as `%XX`.
fn aws_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::new();
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request signed by aws-sigv4. `headers` exclude `host`; `path` and `query` are raw.
struct Signed {
    req: Req,
    signed_at: SystemTime,
}

#[allow(clippy::too_many_arguments)]
fn sign_with_sdk(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    region: &str,
    token: Option<&str>,
    signed_at: SystemTime,
    presign: Option<Duration>,
    body: SignableBody<'_>,
) -> Signed {
    let identity: Identity =
        AwsCredentials::new(AKID, SECRET, token.map(str::to_owned), None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(signed_at)
        .settings(settings(presign))
        .build()
        .unwrap()
        .into();
    let host = "bucket.rangecache.internal:8080";
    let url = if query.is_empty() {
        format!("http://{host}{path}")
    } else {
        format!("http://{host}{path}?{query}")
    };
    let mut all: Vec<(String, String)> = vec![("Host".into(), host.into())];
    all.extend(headers.iter().cloned());
    let signable = SignableRequest::new(
        method,
        &url,
        all.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        body,
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    for (name, value) in instructions.headers() {
        all.push((name.to_owned(), value.to_owned()));
    }
    let mut query = query.to_owned();
    for (name, value) in instructions.params() {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&format!("{name}={}", aws_encode(value, false)));
    }
    let pairs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut req = Req::new(method, path, &pairs);
    req.query = query;
    Signed { req, signed_at }
}

#[test]
fn sdk_signed_key_with_special_characters() {
    // A key with spaces, '+', '~', unicode and reserved characters, encoded as SDKs send it.
    let key = "dir one/a+b~c d/\u{20ac}uro \u{1F600}/x=y&z;(1)!*'@:$,.parquet";
    let path = format!("/bucket/{}", aws_encode(key, true));
    let t = at("20240601T120000Z");
    for presign in [None, Some(Duration::from_secs(3600))] {
        let body = if presign.is_some() {
            SignableBody::UnsignedPayload
        } else {
            SignableBody::Bytes(&[])
        };
        let s = sign_with_sdk("GET", &path, "", &[], "eu-west-3", None, t, presign, body);
        assert_eq!(s.req.verify_at(t), Ok(AKID.to_owned()), "{presign:?}");
    }
    // A client that signs the encoded path but sends reserved characters raw (as AWS's own
    // PUT example does with '$') still verifies: the path is normalized on a second try.
    let s = sign_with_sdk(
        "GET",
        &path,
        "",
        &[],
        "us-east-1",
        None,
        t,
        None,
        SignableBody::Bytes(&[]),
    );
    let mut raw = s.req.clone();
    raw.path = raw
        .path
        .replace("%3D", "=")
        .replace("%26", "&")
        .replace("%3B", ";")
        .replace("%28", "(")
        .replace("%29", ")")
        .replace("%21", "!")
        .replace("%2A", "*")
        .replace("%27", "'")
        .replace("%40", "@")
        .replace("%3A", ":")
        .replace("%24", "$")
        .replace("%2C", ",")
        .replace("%2B", "+");
    assert_ne!(raw.path, s.req.path);
    assert!(raw.verify_at(t).is_ok());
    // Lowercase escapes are the same bytes too.
    let mut lower = s.req.clone();
    lower.path = lower.path.replace("%E2%82%AC", "%e2%82%ac");
    assert!(lower.verify_at(t).is_ok());
    // A different key is not.
    let mut other = s.req.clone();
    other.path = other.path.replace("%2B", "%20");
    assert_eq!(
        other.verify_at(t).unwrap_err().kind(),
        AuthErrorKind::SignatureDoesNotMatch
    );
}

#[test]
fn sdk_signed_repeated_headers_and_session_token() {
    let t = at("20240601T120000Z");
    let headers = vec![
        ("X-Amz-Meta-Tag".to_owned(), "one".to_owned()),
        ("X-Amz-Meta-Tag".to_owned(), "two  three".to_owned()),
        ("Content-Type".to_owned(), "text/plain".to_owned()),
    ];
    let s = sign_with_sdk(
        "PUT",
        "/b/k",
        "",
        &headers,
        "us-east-1",
        Some("token/with+chars="),
        t,
        None,
        SignableBody::UnsignedPayload,
    );
    let parts = s.req.parts();
    let cred = credential(&parts).unwrap();
    let ok = verify(&parts, &cred, lookup, &KeyCache::default(), t).unwrap();
    assert_eq!(ok.session_token, Some("token/with+chars="));
    assert_eq!(ok.payload, PayloadHash::Unsigned);
    // The order of a repeated header's values is signed.
    let mut swapped = s.req.clone();
    let (a, b) = (
        swapped
            .headers
            .iter()
            .position(|h| h.is("x-amz-meta-tag"))
            .unwrap(),
        swapped
            .headers
            .iter()
            .rposition(|h| h.is("x-amz-meta-tag"))
            .unwrap(),
    );
    swapped.headers.swap(a, b);
    assert!(swapped.verify_at(t).is_err());

    let p = sign_with_sdk(
        "GET",
        "/b/k",
        "versionId=3",
        &[],
        "us-east-1",
        Some("token/with+chars="),
        t,
        Some(Duration::from_secs(60)),
        SignableBody::UnsignedPayload,
    );
    let parts = p.req.parts();
    let cred = credential(&parts).unwrap();
    let ok = verify(&parts, &cred, lookup, &KeyCache::default(), t).unwrap();
    assert_eq!(ok.session_token, Some("token/with+chars="));
}

/// A signed aws-chunked body with a trailing checksum, signed chunk by chunk with aws-sigv4.
#[test]
fn sdk_signed_streaming_with_trailer() {
    let t = at("20240601T120000Z");
    let headers = vec![
        ("Content-Encoding".to_owned(), "aws-chunked".to_owned()),
        (
            "x-amz-decoded-content-length".to_owned(),
            "70000".to_owned(),
        ),
        (
            "x-amz-trailer".to_owned(),
            "x-amz-checksum-crc32c".to_owned(),
        ),
    ];
    let s = sign_with_sdk(
        "PUT",
        "/b/upload.bin",
        "",
        &headers,
        "us-west-2",
        None,
        t,
        None,
        SignableBody::StreamingSignedPayloadTrailer,
    );
    let parts = s.req.parts();
    let cred = credential(&parts).unwrap();
    let ok = verify(&parts, &cred, lookup, &KeyCache::default(), t).unwrap();
    assert_eq!(
        ok.payload,
        PayloadHash::Streaming(StreamingKind::SignedWithTrailer)
    );
    let mut checksum = TrailerChecksum::from_request(&parts).unwrap().unwrap();
    assert_eq!(checksum.algorithm(), ChecksumAlgorithm::Crc32c);

    let identity: Identity = AwsCredentials::new(AKID, SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-west-2")
        .name("s3")
        .time(t)
        .settings(())
        .build()
        .unwrap();
    let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let mut previous = String::from_utf8(hex32(&ok.signature).to_vec()).unwrap();
    let mut chain = ChunkVerifier::new(&ok).unwrap();
    for chunk in data.chunks(65_536).chain(std::iter::once(&[][..])) {
        let out = v4::sign_chunk(&Bytes::copy_from_slice(chunk), &previous, &params).unwrap();
        previous = out.signature().to_owned();
        chain.update(chunk);
        checksum.update(chunk);
        chain
            .finish_chunk(format!("chunk-signature={previous}").as_bytes())
            .unwrap();
    }
    assert!(!chain.is_complete());
    let value = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(checksum.clone().finish())
    };
    let mut trailer_headers = aws_smithy_runtime_api::http::Headers::new();
    trailer_headers.insert("x-amz-checksum-crc32c", value.clone());
    let out = v4::sign_trailer(&trailer_headers, &previous, &params).unwrap();
    let trailers = vec![
        hdr("x-amz-checksum-crc32c", &value),
        hdr("x-amz-trailer-signature", out.signature()),
    ];
    // Out of turn: a fresh chain has seen no chunks yet.
    assert_eq!(
        ChunkVerifier::new(&ok)
            .unwrap()
            .verify_trailer(&trailers)
            .unwrap_err()
            .kind(),
        AuthErrorKind::MalformedTrailerError
    );
    chain.verify_trailer(&trailers).unwrap();
    assert!(chain.is_complete());
    checksum.clone().verify_trailers(&trailers).unwrap();
    let mut forged = trailers.clone();
    forged[0] = hdr("x-amz-checksum-crc32c", "AAAAAA==");
    assert_eq!(
        checksum.verify_trailers(&forged).unwrap_err().kind(),
        AuthErrorKind::BadDigest
    );
}

/// Replays the chunk chain up to the trailer and checks a forged trailer fails.
#[test]
fn forged_trailer_signature_fails() {
    let t = at("20240601T120000Z");
    let headers = vec![(
        "x-amz-trailer".to_owned(),
        "x-amz-checksum-crc32".to_owned(),
    )];
    let s = sign_with_sdk(
        "PUT",
        "/b/k",
        "",
        &headers,
        "us-east-1",
        None,
        t,
        None,
        SignableBody::StreamingSignedPayloadTrailer,
    );
    let parts = s.req.parts();
    let cred = credential(&parts).unwrap();
    let ok = verify(&parts, &cred, lookup, &KeyCache::default(), t).unwrap();
    let identity: Identity = AwsCredentials::new(AKID, SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(t)
        .settings(())
        .build()
        .unwrap();
    let seed = String::from_utf8(hex32(&ok.signature).to_vec()).unwrap();
    let last = v4::sign_chunk(&Bytes::new(), &seed, &params).unwrap();
    let mut trailer_headers = aws_smithy_runtime_api::http::Headers::new();
    trailer_headers.insert("x-amz-checksum-crc32", "AAAAAA==");
    let trailer_sig = v4::sign_trailer(&trailer_headers, last.signature(), &params).unwrap();
    let run = |checksum: &str, signature: &str| {
        let mut chain = ChunkVerifier::new(&ok).unwrap();
        chain
            .finish_chunk(format!("chunk-signature={}", last.signature()).as_bytes())
            .unwrap();
        chain.verify_trailer(&[
            hdr("x-amz-checksum-crc32", checksum),
            hdr("x-amz-trailer-signature", signature),
        ])
    };
    assert_eq!(run("AAAAAA==", trailer_sig.signature()), Ok(()));
    assert_eq!(
        run("AAAAAB==", trailer_sig.signature()).unwrap_err().kind(),
        AuthErrorKind::SignatureDoesNotMatch
    );
    assert_eq!(
        run("AAAAAA==", &"0".repeat(64)).unwrap_err().kind(),
        AuthErrorKind::SignatureDoesNotMatch
    );
}

#[test]
fn unsigned_streaming_trailer() {
    let t = at("20240601T120000Z");
    let headers = vec![
        ("Content-Encoding".to_owned(), "aws-chunked".to_owned()),
        (
            "x-amz-trailer".to_owned(),
            "x-amz-checksum-sha256".to_owned(),
        ),
    ];
    let s = sign_with_sdk(
        "PUT",
        "/b/k",
        "",
        &headers,
        "us-east-1",
        None,
        t,
        None,
        SignableBody::StreamingUnsignedPayloadTrailer,
    );
    let parts = s.req.parts();
    let cred = credential(&parts).unwrap();
    let ok = verify(&parts, &cred, lookup, &KeyCache::default(), t).unwrap();
    assert_eq!(
        ok.payload,
        PayloadHash::Streaming(StreamingKind::UnsignedWithTrailer)
    );
    assert!(ChunkVerifier::new(&ok).is_none());
    let mut checksum = TrailerChecksum::from_request(&parts).unwrap().unwrap();
    checksum.update(b"hello");
    let value = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(sha256(b"hello"))
    };
    assert_eq!(
        checksum.verify_trailers(&[hdr("x-amz-checksum-sha256", &value)]),
        Ok(())
    );
}

// ---------------------------------------------------------------------------------------
// Random requests.
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    key: String,
    params: Vec<(String, String, u8)>,
    headers: Vec<(String, String)>,
    region: &'static str,
    token: Option<String>,
    unsigned_payload: bool,
    skew_secs: i64,
    presign_secs: Option<u32>,
}

/// A query component in one of the ways clients write them: AWS's strict encoding, lowercase
/// escapes, `+` for spaces, or reserved characters left raw.
fn client_encode(text: &str, style: u8) -> String {
    let strict = aws_encode(text, false);
    match style % 4 {
        0 => strict,
        1 => {
            let mut out = String::new();
            let mut chars = strict.chars();
            while let Some(c) = chars.next() {
                if c == '%' {
                    out.push('%');
                    out.extend(chars.next().map(|c| c.to_ascii_lowercase()));
                    out.extend(chars.next().map(|c| c.to_ascii_lowercase()));
                } else {
                    out.push(c);
                }
            }
            out
        }
        2 => strict.replace("%20", "+"),
        _ => strict
            .replace("%2F", "/")
            .replace("%3A", ":")
            .replace("%40", "@")
            .replace("%21", "!")
            .replace("%2C", ",")
            .replace("%24", "$"),
    }
}

fn case() -> impl Strategy<Value = Case> {
    let text = "[a-zA-Z0-9 +~!$'()*,;=:@&/_.\\-\u{e9}\u{20ac}\u{1F600}]{0,10}";
    (
        prop::sample::select(vec!["GET", "PUT", "HEAD", "DELETE", "POST"]),
        prop::collection::vec(text, 1..4),
        prop::collection::vec(("[a-zA-Z][a-zA-Z0-9\\-_.]{0,8}", text, any::<u8>()), 0..4),
        prop::collection::vec(("[a-z]{1,8}", "[!-~]([ -~]{0,16}[!-~])?"), 0..4),
        prop::sample::select(vec!["us-east-1", "eu-central-1", "auto", "garage"]),
        prop::option::of("[A-Za-z0-9+/=]{8,40}"),
        any::<bool>(),
        -14 * 60..=14 * 60i64,
        prop::option::of(1..=MAX_PRESIGN_EXPIRES),
    )
        .prop_map(
            |(method, segments, params, headers, region, token, unsigned, skew, presign)| Case {
                method,
                key: segments.join("/"),
                params,
                headers: headers
                    .into_iter()
                    .enumerate()
                    .map(|(i, (n, v))| (format!("X-Amz-Meta-{n}{i}"), v))
                    .collect(),
                region,
                token,
                unsigned_payload: unsigned,
                skew_secs: skew,
                presign_secs: presign,
            },
        )
}

fn sign_case(c: &Case) -> (Signed, SystemTime) {
    let signed_at = at("20240601T120000Z") + Duration::from_secs(u64::from(c.key.len() as u32));
    let path = format!("/bucket/{}", aws_encode(&c.key, true));
    let query = c
        .params
        .iter()
        .map(|(n, v, style)| format!("{}={}", client_encode(n, *style), client_encode(v, *style)))
        .collect::<Vec<_>>()
        .join("&");
    let presign = c.presign_secs.map(|s| Duration::from_secs(u64::from(s)));
    let body = if c.unsigned_payload || presign.is_some() {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(b"")
    };
    let s = sign_with_sdk(
        c.method,
        &path,
        &query,
        &c.headers,
        c.region,
        c.token.as_deref(),
        signed_at,
        presign,
        body,
    );
    let now = match c.presign_secs {
        // Anywhere in the URL's validity.
        Some(secs) => {
            signed_at
                + Duration::from_secs(u64::from(secs) * c.skew_secs.unsigned_abs() / (14 * 60))
        }
        None if c.skew_secs >= 0 => signed_at + Duration::from_secs(c.skew_secs as u64),
        None => signed_at - Duration::from_secs(c.skew_secs.unsigned_abs()),
    };
    (s, now)
}

fn flip_hex_digit(text: &str, at: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).unwrap()
}

fn mismatch(req: &Req, now: SystemTime) -> bool {
    matches!(
        req.verify_at(now),
        Err(e) if e.kind() == AuthErrorKind::SignatureDoesNotMatch
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn sdk_signed_requests_verify_and_tampering_fails(c in case(), pick in any::<usize>()) {
        let (signed, now) = sign_case(&c);
        let req = &signed.req;
        let keys = KeyCache::default();
        prop_assert_eq!(req.verify_with(now, &keys), Ok(AKID.to_owned()));
        prop_assert_eq!(req.verify_with(now, &keys), Ok(AKID.to_owned()));
        prop_assert_eq!(keys.derivations(), 1);
        prop_assert!(signed.signed_at <= now || c.presign_secs.is_none());

        // A signed header's value changed.
        if !c.headers.is_empty() {
            let name = &c.headers[pick % c.headers.len()].0;
            let mut t = req.clone();
            let old = t.headers.iter().find(|h| h.is(name)).unwrap().value_str().unwrap().to_owned();
            t.set_header(name, &format!("{old}x"));
            prop_assert!(mismatch(&t, now));
        }
        // The path changed.
        let mut t = req.clone();
        t.path.push('x');
        prop_assert!(mismatch(&t, now));
        // A query value changed.
        if !c.params.is_empty() {
            let mut t = req.clone();
            let (first, rest) = t.query.split_once('&').unwrap_or((&t.query, ""));
            let first = if first.contains('=') { format!("{first}x") } else { format!("{first}=x") };
            t.query = if rest.is_empty() { first } else { format!("{first}&{rest}") };
            prop_assert!(mismatch(&t, now));
        }
        // The method changed.
        let mut t = req.clone();
        t.method = if c.method == "GET" { "HEAD".into() } else { "GET".into() };
        prop_assert!(mismatch(&t, now));
        // One hex digit of the signature changed.
        let mut t = req.clone();
        let digit = pick % 64;
        if c.presign_secs.is_some() {
            let at = t.query.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
            t.query = flip_hex_digit(&t.query, at + digit);
        } else {
            let value = t.headers.iter().find(|h| h.is("authorization")).unwrap().value_str().unwrap().to_owned();
            let at = value.find("Signature=").unwrap() + "Signature=".len();
            t.set_header("authorization", &flip_hex_digit(&value, at + digit));
        }
        prop_assert!(mismatch(&t, now));
    }
}

// ---------------------------------------------------------------------------------------
// Failures and their S3 codes.
// ---------------------------------------------------------------------------------------

fn kind_of(req: &Req, now: SystemTime) -> AuthErrorKind {
    req.verify_at(now).unwrap_err().kind()
}

#[test]
fn unknown_key_and_wrong_secret() {
    let t = at("20130524T000000Z");
    let mut req = get_object();
    let auth = auth_header(
        "host;range;x-amz-content-sha256;x-amz-date",
        GET_OBJECT_SIGNATURE,
    )
    .replace(AKID, "AKIDUNKNOWN");
    req.set_header("Authorization", &auth);
    assert_eq!(kind_of(&req, t), AuthErrorKind::InvalidAccessKeyId);

    let req = get_object();
    let parts = req.parts();
    let cred = credential(&parts).unwrap();
    let wrong = |_: &str, _: Option<&str>| Ok::<_, AuthError>(("not-the-secret", ()));
    let err = verify(&parts, &cred, wrong, &KeyCache::default(), t).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::SignatureDoesNotMatch);
    assert_eq!(err.status(), 403);
}

#[test]
fn clock_skew() {
    let req = get_object();
    assert!(req.verify_at(at("20130524T001500Z")).is_ok());
    assert!(req.verify_at(at("20130523T234500Z")).is_ok());
    assert_eq!(
        kind_of(&req, at("20130524T001501Z")),
        AuthErrorKind::RequestTimeTooSkewed
    );
    assert_eq!(
        kind_of(&req, at("20130523T234459Z")),
        AuthErrorKind::RequestTimeTooSkewed
    );
    // A presigned URL is not bound by the skew, only by its expiry.
    assert!(presigned_example()
        .verify_at(at("20130524T230000Z"))
        .is_ok());
}

#[test]
fn presign_limits() {
    let t = at("20130524T000000Z");
    let mut req = presigned_example();
    req.query = req
        .query
        .replace("X-Amz-Expires=86400", "X-Amz-Expires=604801");
    let err = credential(&req.parts()).unwrap_err();
    assert_eq!(
        (err.code(), err.status()),
        ("AuthorizationQueryParametersError", 400)
    );
    // Within the limit but not what was signed.
    req.query = req
        .query
        .replace("X-Amz-Expires=604801", "X-Amz-Expires=604800");
    assert_eq!(kind_of(&req, t), AuthErrorKind::SignatureDoesNotMatch);
    // Both auth mechanisms at once.
    let mut both = presigned_example();
    both.set_header("Authorization", &auth_header("host", GET_OBJECT_SIGNATURE));
    assert_eq!(kind_of(&both, t), AuthErrorKind::InvalidArgument);
}

#[test]
fn scope_checks() {
    let t = at("20130524T000000Z");
    // Credential date other than x-amz-date's.
    let mut req = get_object();
    let auth = auth_header(
        "host;range;x-amz-content-sha256;x-amz-date",
        GET_OBJECT_SIGNATURE,
    )
    .replace("/20130524/", "/20130525/");
    req.set_header("Authorization", &auth);
    assert_eq!(
        kind_of(&req, t),
        AuthErrorKind::AuthorizationHeaderMalformed
    );
    let mut req = presigned_example();
    req.query = req.query.replace("%2F20130524%2F", "%2F20130523%2F");
    assert_eq!(
        kind_of(&req, t),
        AuthErrorKind::AuthorizationQueryParametersError
    );
    // Another service.
    let mut req = get_object();
    let auth = auth_header(
        "host;range;x-amz-content-sha256;x-amz-date",
        GET_OBJECT_SIGNATURE,
    )
    .replace("/s3/", "/iam/");
    req.set_header("Authorization", &auth);
    assert_eq!(
        kind_of(&req, t),
        AuthErrorKind::AuthorizationHeaderMalformed
    );
    // Another region: accepted as scope, but the signature was made for us-east-1.
    let mut req = get_object();
    let auth = auth_header(
        "host;range;x-amz-content-sha256;x-amz-date",
        GET_OBJECT_SIGNATURE,
    )
    .replace("/us-east-1/", "/eu-west-1/");
    req.set_header("Authorization", &auth);
    assert_eq!(kind_of(&req, t), AuthErrorKind::SignatureDoesNotMatch);
}

#[test]
fn header_checks() {
    let t = at("20130524T000000Z");
    let signed = "host;range;x-amz-content-sha256;x-amz-date";
    // A signed header missing from the request.
    let mut req = get_object();
    req.headers.retain(|h| !h.is("range"));
    assert_eq!(kind_of(&req, t), AuthErrorKind::SignatureDoesNotMatch);
    // `host` not signed.
    let mut req = get_object();
    req.set_header(
        "Authorization",
        &auth_header(
            "range;x-amz-content-sha256;x-amz-date",
            GET_OBJECT_SIGNATURE,
        ),
    );
    assert_eq!(kind_of(&req, t), AuthErrorKind::AccessDenied);
    // An x-amz-* header sent but not signed.
    let mut req = get_object();
    req.set_header("x-amz-copy-source", "/other/key");
    assert_eq!(kind_of(&req, t), AuthErrorKind::AccessDenied);
    // Headers that are not x-amz-* need not be signed.
    let mut req = get_object();
    req.set_header("User-Agent", "Boto3/1.35");
    req.set_header("amz-sdk-invocation-id", "1");
    assert!(req.verify_at(t).is_ok());
    // x-amz-content-sha256 missing, malformed, or repeated.
    let mut req = get_object();
    req.headers.retain(|h| !h.is("x-amz-content-sha256"));
    req.set_header(
        "Authorization",
        &auth_header("host;range;x-amz-date", GET_OBJECT_SIGNATURE),
    );
    let err = req.verify_at(t).unwrap_err();
    assert_eq!((err.code(), err.status()), ("InvalidRequest", 400));
    let mut req = get_object();
    req.set_header(
        "x-amz-content-sha256",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
    );
    assert_eq!(kind_of(&req, t), AuthErrorKind::InvalidArgument);
    // No usable date.
    let mut req = get_object();
    req.set_header("x-amz-date", "2013-05-24T00:00:00Z");
    assert_eq!(kind_of(&req, t), AuthErrorKind::AccessDenied);
    let mut req = get_object();
    req.headers.retain(|h| !h.is("x-amz-date"));
    assert_eq!(kind_of(&req, t), AuthErrorKind::AccessDenied);
    // Malformed Authorization headers.
    let mut req = get_object();
    req.set_header(
        "Authorization",
        &auth_header(signed, GET_OBJECT_SIGNATURE).replace(",Signature", ",Sig"),
    );
    assert_eq!(
        kind_of(&req, t),
        AuthErrorKind::AuthorizationHeaderMalformed
    );
    let mut req = get_object();
    req.headers.push(hdr(
        "Authorization",
        &auth_header(signed, GET_OBJECT_SIGNATURE),
    ));
    assert_eq!(
        kind_of(&req, t),
        AuthErrorKind::AuthorizationHeaderMalformed
    );
    let mut req = get_object();
    req.set_header(
        "Authorization",
        "AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
    );
    assert_eq!(kind_of(&req, t), AuthErrorKind::InvalidArgument);
}

#[test]
fn anonymous_and_sigv2_queries() {
    let req = Req::new("GET", "/b/k?versionId=1", &[("Host", "h")]);
    assert_eq!(credential(&req.parts()), Ok(Credential::Anonymous));
    let keys = KeyCache::default();
    let err = verify(
        &req.parts(),
        &Credential::Anonymous,
        lookup,
        &keys,
        SystemTime::now(),
    );
    assert_eq!(err.unwrap_err().kind(), AuthErrorKind::AccessDenied);
    let v2 = Req::new(
        "GET",
        "/b/k?AWSAccessKeyId=AK&Expires=1&Signature=x",
        &[("Host", "h")],
    );
    // Found as SigV2, left to the caller (auth.sigv2); SigV4 verification refuses it.
    let cred = credential(&v2.parts()).unwrap();
    assert_eq!(cred, Credential::SigV2(crate::auth::V2Claim::Presigned));
    let err = verify(&v2.parts(), &cred, lookup, &keys, SystemTime::now()).unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::InvalidArgument);
    assert!(err.message().contains("auth.sigv2"), "{}", err.message());
}

#[test]
fn key_cache_is_shared_across_requests() {
    let keys = KeyCache::default();
    let t = at("20130524T000000Z");
    for _ in 0..10 {
        get_object().verify_with(t, &keys).unwrap();
        presigned_example().verify_with(t, &keys).unwrap();
        streaming_example().verify_with(t, &keys).unwrap();
    }
    // One secret, one date, one region, one service: derived once.
    assert_eq!(keys.derivations(), 1);
}
