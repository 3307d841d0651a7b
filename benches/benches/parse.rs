//! Request-head parsing: rangecache's strict `parse_request` next to bare `httparse`.
//!
//! Run: `cargo bench -p rangecache-benches --bench parse`
//!
//! Both sides copy the request into a fresh `BytesMut` each iteration, as a server does when
//! bytes arrive, so the difference is what the strict checks, the freeze and the `Bytes` slices
//! cost on top of httparse.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput};
use rangecache_dataplane::http::{parse_request, Limits};

/// A boto3 `get_object(Range=...)` as it reaches a path-style endpoint: 9 headers, 786 bytes.
const SIGNED_GET: &[u8] = b"GET /analytics/warehouse/events/part-00042-5f1c.snappy.parquet HTTP/1.1\r\n\
Host: rangecache.internal:8080\r\n\
Accept-Encoding: identity\r\n\
User-Agent: Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#6.8.0-45-generic md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.36\r\n\
Range: bytes=104857600-105906175\r\n\
X-Amz-Date: 20241123T020600Z\r\n\
X-Amz-Content-SHA256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n\
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20241123/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024\r\n\
amz-sdk-invocation-id: 6f1a4bd4-2c3e-4c6b-9d0a-5e0f1b2c3d4e\r\n\
amz-sdk-request: attempt=1; max=5\r\n\
\r\n";

fn request_head(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("request_head");
    group.throughput(Throughput::Bytes(SIGNED_GET.len() as u64));

    group.bench_function("rangecache_parse_request", |b| {
        b.iter(|| {
            let mut buf = BytesMut::from(black_box(SIGNED_GET));
            let head = parse_request(&mut buf, &limits)
                .expect("valid request")
                .expect("complete head");
            black_box(head)
        })
    });

    group.bench_function("httparse_64_headers", |b| {
        b.iter(|| {
            let buf = BytesMut::from(black_box(SIGNED_GET));
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            let len = req.parse(&buf).expect("valid request").unwrap();
            black_box((len, req.method, req.path, req.headers.len()));
        })
    });

    group.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, minus the undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    request_head(&mut c);
    c.final_summary();
}
