//! What refreshed origin credentials cost: minting one OIDC token (RS256, 2048-bit key, the
//! work of one `credentials = "oidc"` refresh besides the STS round trip), and signing an
//! origin request with credentials read from a refreshed cell against fixed ones (the only
//! per-request change; a cache hit signs nothing).
//!
//! Run: `cargo bench -p rangecache-benches --bench credentials`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rangecache_dataplane::origin::sign_request;
use rangecache_dataplane::{CredentialCell, Credentials, OriginCredentials, TimedCredentials};

/// The control plane's key and minting code itself (the control crate is a binary).
#[path = "../../control/src/credentials/keys.rs"]
#[allow(dead_code)]
mod keys;

const KEY: &str = include_str!("../../control/src/credentials/testdata/two_keys.pem");

fn creds() -> Credentials {
    Credentials {
        access_key_id: "ASIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: Some("FwoGZXIvYXdzEBYaDH...session...token".into()),
    }
}

fn bench_mint(c: &mut Criterion) {
    let keys = keys::OidcKeys::parse_pem(KEY.as_bytes()).unwrap();
    let rng = ring::rand::SystemRandom::new();
    c.bench_function("oidc_mint_rs256_2048", |b| {
        b.iter(|| {
            let claims = keys::Claims {
                iss: "https://rangecache.example.com",
                sub: "rangecache:default",
                aud: "sts.amazonaws.com",
                iat: 1_900_000_000,
                exp: 1_900_000_300,
                jti: "0123456789abcdef0123456789abcdef",
            };
            black_box(keys.mint(black_box(&claims), &rng).unwrap())
        })
    });
}

fn bench_sign(c: &mut Criterion) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let fixed = OriginCredentials::Static(creds());
    let cell = Arc::new(CredentialCell::new());
    cell.store(TimedCredentials {
        credentials: creds(),
        expires: Some(now + Duration::from_secs(3600)),
    });
    let refreshed = OriginCredentials::Refreshed(cell);
    let base: Vec<(String, String)> = vec![
        ("host".into(), "s3.us-east-1.amazonaws.com".into()),
        ("range".into(), "bytes=4194304-5242879".into()),
    ];
    let url = "https://s3.us-east-1.amazonaws.com/analytics/year%3D2024/part-00017.parquet";
    let mut group = c.benchmark_group("sign_origin_request");
    for (name, source) in [("static", &fixed), ("refreshed_cell", &refreshed)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut headers = base.clone();
                black_box(source)
                    .with_current(now, |creds| {
                        sign_request("GET", url, &mut headers, false, creds, "us-east-1", now)
                    })
                    .unwrap()
                    .unwrap();
                black_box(headers)
            })
        });
    }
    group.bench_function("cell_load_only", |b| {
        b.iter(|| black_box(&refreshed).with_current(now, |c| c.access_key_id.len()))
    });
    group.finish();
}

criterion_group!(benches, bench_mint, bench_sign);
criterion_main!(benches);
