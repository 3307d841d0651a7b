//! The origin simulator end to end on loopback: signed ranged GET, HEAD, 416, suffix and
//! open-ended ranges, If-Match, anonymous and wrong-secret refusals, PUT + LIST, verified by
//! the load generator's own client.

use std::rc::Rc;
use std::time::Duration;

use rangecache_loadtest::client::{encode_path, Client, Endpoint, Expect, Signer};
use rangecache_loadtest::content::{etag, object_seed};
use rangecache_loadtest::range::ByteRange;
use rangecache_loadtest::sim::{Model, SimConfig, Simulator};

fn fast_sim() -> Simulator {
    let config = SimConfig {
        model: Model {
            ttfb: Duration::from_millis(1),
            ttfb_jitter: Duration::ZERO,
            stream_bandwidth: 0,
            ..Model::default()
        },
        ..SimConfig::default()
    };
    Simulator::start(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn endpoint(sim: &Simulator, secret: Option<&str>) -> Rc<Endpoint> {
    Rc::new(Endpoint {
        addr: sim.addr(),
        host: sim.addr().to_string(),
        signer: secret.map(|s| Signer::new("test", s, "us-east-1")),
    })
}

#[tokio::test(flavor = "current_thread")]
async fn signed_reads_are_served_and_verified() {
    let sim = fast_sim();
    let mut c = Client::new(endpoint(&sim, Some("test")));
    let (bucket, key, size) = ("bench", "obj-000001-size-3000000", 3_000_000u64);
    let path = encode_path(bucket, key);
    let expect = Expect {
        size,
        seed: Some(object_seed(bucket, key, 0)),
        parquet: None,
    };

    // HEAD: size and the synthetic ETag.
    let (status, len, tag) = c.head(&path).await.unwrap();
    assert_eq!((status, len), (200, Some(size)));
    assert_eq!(tag.unwrap(), etag(object_seed(bucket, key, 0), size));

    // Bounded, suffix, open-ended, clamped and whole reads: every byte checked.
    for range in [
        Some(ByteRange::span(12_345, 1 << 20)),
        Some(ByteRange::Suffix(65_536)),
        Some(ByteRange::From(size - 10)),
        Some(ByteRange::span(size - 5, 100)),
        None,
    ] {
        let o = c.get(&path, range, expect.clone()).await.unwrap();
        assert_eq!(o.mismatch, None, "{range:?}: {o:?}");
        assert_eq!(o.bad_bytes, 0);
    }

    // Past the end: 416, which the client expects for an unsatisfiable range.
    let o = c
        .get(&path, Some(ByteRange::From(size)), expect.clone())
        .await
        .unwrap();
    assert_eq!((o.status, o.mismatch), (416, None));
    let (status, body) = c.get_raw(&path, Some(ByteRange::From(size))).await.unwrap();
    assert_eq!(status, 416);
    assert!(String::from_utf8_lossy(&body).contains("<Code>InvalidRange</Code>"));

    // A different object's content is caught.
    let wrong = Expect {
        seed: Some(object_seed(bucket, "obj-000002-size-3000000", 0)),
        ..expect.clone()
    };
    let o = c
        .get(&path, Some(ByteRange::span(0, 4096)), wrong)
        .await
        .unwrap();
    assert!(o.bad_bytes > 4000, "{o:?}");

    // Unknown keys are 404.
    let (status, _) = c
        .get_raw(&encode_path(bucket, "plain.txt"), None)
        .await
        .unwrap();
    assert_eq!(status, 404);

    let stats = sim.stats();
    assert!(stats.signed >= 9, "{stats:?}");
    assert_eq!(stats.auth_failures, 0);
    sim.stop();
}

#[tokio::test(flavor = "current_thread")]
async fn bad_signatures_and_anonymous_reads_are_refused() {
    let sim = fast_sim();
    let path = encode_path("bench", "o-size-100");
    let (status, body) = Client::new(endpoint(&sim, Some("wrong")))
        .get_raw(&path, None)
        .await
        .unwrap();
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("SignatureDoesNotMatch"));
    let (status, body) = Client::new(endpoint(&sim, None))
        .get_raw(&path, None)
        .await
        .unwrap();
    assert_eq!(status, 403);
    assert!(String::from_utf8_lossy(&body).contains("AccessDenied"));
    assert_eq!(sim.stats().auth_failures, 2);
    sim.stop();
}

#[tokio::test(flavor = "current_thread")]
async fn put_then_get_and_list() {
    let sim = fast_sim();
    let mut c = Client::new(endpoint(&sim, Some("test")));
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.put("/up/dir/a.bin", &body).await.unwrap(), 200);
    let (status, got) = c
        .get_raw("/up/dir/a.bin", Some(ByteRange::span(100, 50)))
        .await
        .unwrap();
    assert_eq!((status, &got[..]), (206, &body[100..150]));
    let (status, listing) = c
        .get_raw("/up?list-type=2&prefix=dir%2F", None)
        .await
        .unwrap();
    let listing = String::from_utf8(listing).unwrap();
    assert_eq!(status, 200);
    assert!(
        listing.contains("<Key>dir/a.bin</Key><LastModified>"),
        "{listing}"
    );
    assert!(listing.contains("<Size>10000</Size>"), "{listing}");
    sim.stop();
}

/// One raw request over a fresh connection; returns the response head.
fn raw(addr: std::net::SocketAddr, req: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn conditional_reads_and_anonymous_mode() {
    let config = SimConfig {
        model: Model {
            ttfb: Duration::ZERO,
            ttfb_jitter: Duration::ZERO,
            ..Model::default()
        },
        allow_anonymous: true,
        ..SimConfig::default()
    };
    let sim = Simulator::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let tag = etag(object_seed("b", "k-size-10", 0), 10);
    let get = |extra: &str| {
        raw(
            sim.addr(),
            &format!("GET /b/k-size-10 HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n{extra}Connection: close\r\n\r\n"),
        )
    };
    assert!(get("").starts_with("HTTP/1.1 206"));
    assert!(get(&format!("If-Match: {tag}\r\n")).starts_with("HTTP/1.1 206"));
    assert!(get("If-Match: \"other\"\r\n").starts_with("HTTP/1.1 412"));
    assert!(get(&format!("If-None-Match: {tag}\r\n")).starts_with("HTTP/1.1 304"));
    let s = sim.stats();
    assert_eq!(
        (s.anonymous, s.auth_failures, s.status_3xx, s.status_4xx),
        (4, 0, 1, 1)
    );
    sim.stop();
}

#[tokio::test(flavor = "current_thread")]
async fn injected_failures() {
    let start = |error_rate, reset_rate| {
        let config = SimConfig {
            model: Model {
                ttfb: Duration::ZERO,
                ttfb_jitter: Duration::ZERO,
                stream_bandwidth: 0,
                error_rate,
                reset_rate,
            },
            ..SimConfig::default()
        };
        Simulator::start(config, "127.0.0.1:0".parse().unwrap()).unwrap()
    };
    let path = encode_path("b", "o-size-1000000");
    let expect = Expect {
        size: 1_000_000,
        seed: Some(object_seed("b", "o-size-1000000", 0)),
        parquet: None,
    };

    let sim = start(1.0, 0.0);
    let (status, body) = Client::new(endpoint(&sim, Some("test")))
        .get_raw(&path, None)
        .await
        .unwrap();
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("<Code>SlowDown</Code>"));
    assert_eq!(sim.stats().injected_errors, 1);
    sim.stop();

    let sim = start(0.0, 1.0);
    let r = Client::new(endpoint(&sim, Some("test")))
        .get(&path, None, expect)
        .await;
    assert!(r.is_err(), "a reset mid-body is a transport error: {r:?}");
    assert_eq!(sim.stats().injected_resets, 1);
    sim.stop();
}
