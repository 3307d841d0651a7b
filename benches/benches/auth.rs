//! SigV4 verification of client requests: what rangecache pays per request to check a signature.
//!
//! Run: `cargo bench -p rangecache-benches --bench auth`
//!
//! Each iteration finds the credential in the request (`auth::credential`) and verifies it
//! (`auth::verify`): timestamp and scope checks, key lookup, canonical request, SHA-256, HMAC,
//! constant-time compare. "warm" reuses one `KeyCache` (the steady state: one derivation per
//! key and day); "cold" hands every iteration an empty cache, so it includes deriving the
//! signing key (four more HMACs). "session" signs with STS temporary credentials: the lookup
//! opens the AES-256-GCM session token as the data plane does. "authorize" is the grant check
//! that follows verification.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BatchSize, Criterion};
use rangecache_dataplane::auth::{
    authorize, credential, verify, Access, AuthError, Grant, KeyCache, Need, RequestParts,
    SessionClaims, SessionKey, SessionKeys,
};
use rangecache_dataplane::http::Header;
use rangecache_dataplane::origin::sign_request;
use rangecache_dataplane::s3::Operation;
use rangecache_dataplane::Credentials;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const PATH: &str = "/analytics/warehouse/events/part-00042-5f1c.snappy.parquet";

fn header(name: &str, value: &str) -> Header {
    Header {
        name: Bytes::copy_from_slice(name.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
    }
}

fn lookup(akid: &str, _token: Option<&str>) -> Result<(&'static str, ()), AuthError> {
    if akid == AKID {
        Ok((SECRET, ()))
    } else {
        Err(AuthError::invalid_access_key_id())
    }
}

/// A boto3 `get_object(Range=...)` as it reaches a path-style endpoint: host, range,
/// x-amz-content-sha256 and x-amz-date signed; user-agent and the SDK's bookkeeping not.
fn boto3_get(now: SystemTime, creds: &Credentials) -> Vec<Header> {
    let mut signed = vec![
        ("host".to_owned(), "rangecache.internal:8080".to_owned()),
        ("range".to_owned(), "bytes=104857600-105906175".to_owned()),
    ];
    sign_request(
        "GET",
        &format!("http://rangecache.internal:8080{PATH}"),
        &mut signed,
        false,
        creds,
        "us-east-1",
        now,
    )
    .expect("signs");
    let mut headers = vec![
        header("Accept-Encoding", "identity"),
        header(
            "User-Agent",
            "Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#6.8.0-45-generic md/arch#x86_64 \
             lang/python#3.12.3 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.36",
        ),
    ];
    headers.extend(signed.iter().map(|(n, v)| header(n, v)));
    headers.push(header(
        "amz-sdk-invocation-id",
        "6f1a4bd4-2c3e-4c6b-9d0a-5e0f1b2c3d4e",
    ));
    headers.push(header("amz-sdk-request", "attempt=1; max=5"));
    headers
}

/// AWS's documented presigned URL (GET test.txt, valid one day), fetched by curl.
const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

fn verify_once(parts: &RequestParts<'_>, keys: &KeyCache, now: SystemTime) {
    let cred = credential(parts).expect("parses");
    let ok = verify(parts, &cred, lookup, keys, now).expect("verifies");
    black_box(ok.signature);
}

fn auth(c: &mut Criterion) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_732_327_560);
    let creds = Credentials {
        access_key_id: AKID.into(),
        secret_access_key: SECRET.into(),
        session_token: None,
    };
    let headers = boto3_get(now, &creds);
    let get = RequestParts {
        method: "GET",
        raw_path: PATH,
        raw_query: "",
        headers: &headers,
    };
    let presigned_headers = vec![
        header("Host", "examplebucket.s3.amazonaws.com"),
        header("User-Agent", "curl/8.5.0"),
        header("Accept", "*/*"),
    ];
    let presigned = RequestParts {
        method: "GET",
        raw_path: "/test.txt",
        raw_query: PRESIGNED_QUERY,
        headers: &presigned_headers,
    };
    // An hour after the presigned URL was made.
    let presigned_now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600 + 3_600);

    let mut group = c.benchmark_group("sigv4_verify");
    let keys = KeyCache::default();
    group.bench_function("boto3_get_range_warm_key", |b| {
        b.iter(|| verify_once(black_box(&get), &keys, now))
    });
    group.bench_function("boto3_get_range_cold_key", |b| {
        b.iter_batched(
            || KeyCache::new(16),
            |keys| {
                verify_once(black_box(&get), &keys, now);
                keys
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("presigned_get_warm_key", |b| {
        b.iter(|| verify_once(black_box(&presigned), &keys, presigned_now))
    });
    group.bench_function("credential_parse_only", |b| {
        b.iter(|| black_box(credential(black_box(&get)).expect("parses")))
    });

    // STS credentials: the token is opened (AES-256-GCM) on every request.
    let sessions = SessionKeys::new(vec![SessionKey::from_bytes(&[9u8; 32]).expect("32 bytes")]);
    let grants = vec![Grant {
        bucket: "analytics".into(),
        prefix: "warehouse/".into(),
        access: Access::READ.union(Access::LIST),
    }];
    let token = sessions
        .seal(&SessionClaims {
            access_key_id: "ASIAEXAMPLE0000000001".into(),
            secret_access_key: SECRET.into(),
            expires_at: 1_732_327_560 + 3_600,
            role: "analytics".into(),
            subject: "user-1".into(),
            grants: grants.clone(),
        })
        .expect("a key is configured");
    let session_creds = Credentials {
        access_key_id: "ASIAEXAMPLE0000000001".into(),
        secret_access_key: SECRET.into(),
        session_token: Some(token),
    };
    let session_headers = boto3_get(now, &session_creds);
    let session_get = RequestParts {
        method: "GET",
        raw_path: PATH,
        raw_query: "",
        headers: &session_headers,
    };
    group.bench_function("session_token_get_warm_key", |b| {
        b.iter(|| {
            let parts = black_box(&session_get);
            let cred = credential(parts).expect("parses");
            let lookup = |akid: &str, token: Option<&str>| {
                let claims = sessions
                    .open(token.expect("token sent"), now)
                    .expect("opens");
                assert_eq!(claims.access_key_id, akid);
                Ok::<_, AuthError>((claims.secret_access_key, claims.grants))
            };
            let ok = verify(parts, &cred, lookup, &keys, now).expect("verifies");
            black_box(ok.principal);
        })
    });
    let need = Need::of(
        Operation::GetObject,
        "GET",
        Some("analytics"),
        Some("warehouse/events/part-00042-5f1c.snappy.parquet"),
        "",
    );
    group.bench_function("authorize_prefix_grant", |b| {
        b.iter(|| authorize(black_box(&grants), black_box(&[need])).expect("granted"))
    });
    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, minus the undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    auth(&mut c);
    c.final_summary();
}
