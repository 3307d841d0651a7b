//! SigV4 signing of an origin request, as the proxy does for every upstream request.
//!
//! Run: `cargo bench -p rangecache-benches --bench sign`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::time::{Duration, SystemTime};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rangecache_dataplane::origin::sign_request;
use rangecache_dataplane::Credentials;

fn bench_sign(c: &mut Criterion) {
    let creds = Credentials {
        access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        session_token: None,
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let base: Vec<(String, String)> = vec![
        ("host".into(), "s3.us-east-1.amazonaws.com".into()),
        ("range".into(), "bytes=4194304-5242879".into()),
        ("accept-encoding".into(), "identity".into()),
    ];
    c.bench_function("sigv4_sign_get_with_range", |b| {
        b.iter(|| {
            let mut headers = base.clone();
            sign_request(
                "GET",
                "https://s3.us-east-1.amazonaws.com/analytics/year%3D2024/part-00017.parquet",
                &mut headers,
                false,
                black_box(&creds),
                "us-east-1",
                now,
            )
            .unwrap();
            black_box(headers)
        })
    });
}

criterion_group!(benches, bench_sign);
criterion_main!(benches);
