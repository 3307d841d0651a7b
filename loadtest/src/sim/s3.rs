//! The S3 subset the simulator answers: GetObject (with Range and If-Match /
//! If-None-Match), HeadObject, PutObject, DeleteObject, ListObjectsV2, HeadBucket; plus
//! `GET /__stats` (its counters as JSON). Errors are S3's XML documents.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::auth::{sha256_hex, Auth, SignedParts};
use super::store::Stored;
use super::wire::{query_param, send_error, xml_escape, Head, Request};
use super::State;
use crate::content;
use crate::http1::BufConn;
use crate::object::synthetic_size;
use crate::pace::Pacer;
use crate::parquet_file::ParquetObject;
use crate::range::ByteRange;
use crate::rng::Rng;
use crate::units::iso8601;

/// Largest request body accepted (PutObject keeps it in memory).
const MAX_BODY: u64 = 1 << 30;

/// Per-connection scratch: the content buffer and the random stream.
pub(crate) struct ConnScratch {
    pub(crate) buf: Vec<u8>,
    pub(crate) rng: Rng,
}

/// What a GET or HEAD serves: synthetic content or uploaded bytes.
enum Source {
    Synthetic {
        seed: u64,
        parquet: Option<Arc<ParquetObject>>,
    },
    Stored(Stored),
}

/// Handle one request; returns whether the connection stays open.
pub(crate) async fn handle(
    state: &State,
    conn: &mut BufConn,
    req: Request,
    scratch: &mut ConnScratch,
) -> io::Result<bool> {
    let stats = &state.stats;
    stats.requests.fetch_add(1, Relaxed);
    let close = req
        .header("connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    let head_only = req.method == "HEAD";

    // The body, read in full before answering so framing stays right (PUT keeps it).
    let mut body = Vec::new();
    if req
        .header("expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        conn.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        conn.read_chunked(|d| body.extend_from_slice(d)).await?;
    } else if let Some(len) = req.header("content-length") {
        let len: u64 = len
            .trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "content-length"))?;
        if len > MAX_BODY {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
        }
        conn.read_body(len, |d| body.extend_from_slice(d)).await?;
    }
    stats.bytes_received.fetch_add(body.len() as u64, Relaxed);

    if req.path == "/__stats" {
        let json = serde_json::to_vec(&stats.snapshot()).unwrap_or_default();
        let mut h = Head::new(state, 200);
        h.line("Content-Type: application/json");
        let mut out = h.finish(json.len() as u64);
        out.extend_from_slice(&json);
        conn.write_all(&out).await?;
        return Ok(!close);
    }

    let decoded = percent_encoding::percent_decode_str(&req.path).decode_utf8_lossy();
    let trimmed = decoded.trim_start_matches('/');
    let (bucket, key) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let (bucket, key) = (bucket.to_owned(), key.to_owned());
    let resource = format!("/{bucket}/{key}");

    match state.verifier.check(&SignedParts {
        method: &req.method,
        path: &req.path,
        query: &req.query,
        headers: &req.headers,
    }) {
        Ok(Auth::Signed { payload_hash }) => {
            stats.signed.fetch_add(1, Relaxed);
            let is_hash =
                payload_hash.len() == 64 && payload_hash.bytes().all(|b| b.is_ascii_hexdigit());
            if is_hash && sha256_hex(&body) != payload_hash.to_ascii_lowercase() {
                send_error(
                    conn,
                    state,
                    (
                        400,
                        "XAmzContentSHA256Mismatch",
                        "body does not match x-amz-content-sha256",
                    ),
                    &resource,
                    &[],
                    head_only,
                )
                .await?;
                return Ok(!close);
            }
        }
        Ok(Auth::Anonymous) if state.config.allow_anonymous => {
            stats.anonymous.fetch_add(1, Relaxed);
        }
        Ok(Auth::Anonymous) => {
            stats.anonymous.fetch_add(1, Relaxed);
            stats.auth_failures.fetch_add(1, Relaxed);
            send_error(
                conn,
                state,
                (403, "AccessDenied", "anonymous access is not allowed"),
                &resource,
                &[],
                head_only,
            )
            .await?;
            return Ok(!close);
        }
        Err(e) => {
            stats.auth_failures.fetch_add(1, Relaxed);
            send_error(
                conn,
                state,
                (403, e.code, &e.message),
                &resource,
                &[],
                head_only,
            )
            .await?;
            return Ok(!close);
        }
    }

    // S3's first-byte latency applies to every object operation.
    let delay = state.config.model.first_byte_delay(&mut scratch.rng);
    crate::trace::line(|| {
        let range = req
            .header("range")
            .map_or("-", |r| r.trim_start_matches("bytes="));
        let (now, delay) = (crate::trace::now_us(), delay.as_micros());
        format!("A {} {range} {now} {delay}", req.path)
    });
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if state.config.model.error_rate > 0.0 && scratch.rng.f64() < state.config.model.error_rate {
        stats.injected_errors.fetch_add(1, Relaxed);
        send_error(
            conn,
            state,
            (503, "SlowDown", "Please reduce your request rate."),
            &resource,
            &[],
            head_only,
        )
        .await?;
        return Ok(!close);
    }

    let method = req.method.as_str();
    match (method, key.is_empty()) {
        ("GET" | "HEAD", false) => {
            if head_only {
                stats.head.fetch_add(1, Relaxed);
            } else {
                stats.get.fetch_add(1, Relaxed);
            }
            get_object(state, conn, &req, &bucket, &key, &resource, scratch)
                .await
                .map(|k| k && !close)
        }
        ("PUT", false) => {
            stats.put.fetch_add(1, Relaxed);
            if req.query.contains("uploadId") || req.header("x-amz-copy-source").is_some() {
                send_error(
                    conn,
                    state,
                    (
                        501,
                        "NotImplemented",
                        "multipart and copy are not simulated",
                    ),
                    &resource,
                    &[],
                    false,
                )
                .await?;
                return Ok(!close);
            }
            let etag = format!("\"{}\"", &sha256_hex(&body)[..32]);
            let mut h = Head::new(state, 200);
            h.line(&format!("ETag: {etag}"));
            state.store.put(
                &bucket,
                &key,
                Stored {
                    data: std::sync::Arc::new(body),
                    etag,
                    last_modified: SystemTime::now(),
                },
            );
            conn.write_all(&h.finish(0)).await?;
            Ok(!close)
        }
        ("DELETE", false) => {
            stats.other.fetch_add(1, Relaxed);
            state.store.delete(&bucket, &key);
            conn.write_all(&Head::new(state, 204).finish(0)).await?;
            Ok(!close)
        }
        ("GET", true) if !bucket.is_empty() => {
            stats.list.fetch_add(1, Relaxed);
            list_objects(state, conn, &req, &bucket).await?;
            Ok(!close)
        }
        ("HEAD", true) if !bucket.is_empty() => {
            stats.head.fetch_add(1, Relaxed);
            conn.write_all(&Head::new(state, 200).finish(0)).await?;
            Ok(!close)
        }
        _ => {
            stats.other.fetch_add(1, Relaxed);
            send_error(
                conn,
                state,
                (501, "NotImplemented", "operation not simulated"),
                &resource,
                &[],
                head_only,
            )
            .await?;
            Ok(!close)
        }
    }
}

fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').any(|t| {
        let t = t.trim();
        t == "*" || t == etag || t.trim_start_matches("W/") == etag
    })
}

async fn get_object(
    state: &State,
    conn: &mut BufConn,
    req: &Request,
    bucket: &str,
    key: &str,
    resource: &str,
    scratch: &mut ConnScratch,
) -> io::Result<bool> {
    let head_only = req.method == "HEAD";
    let (source, size, etag, modified) = if let Some(o) = state.store.get(bucket, key) {
        let (size, etag, t) = (o.data.len() as u64, o.etag.clone(), o.last_modified);
        (Source::Stored(o), size, etag, t)
    } else if let Some(size) = synthetic_size(key) {
        let seed = content::object_seed(bucket, key, 0);
        (
            Source::Synthetic {
                seed,
                parquet: ParquetObject::of_key(key),
            },
            size,
            content::etag(seed, size),
            state.started,
        )
    } else {
        send_error(
            conn,
            state,
            (404, "NoSuchKey", "The specified key does not exist."),
            resource,
            &[],
            head_only,
        )
        .await?;
        return Ok(true);
    };

    if let Some(m) = req.header("if-match") {
        if !etag_matches(m, &etag) {
            send_error(
                conn,
                state,
                (
                    412,
                    "PreconditionFailed",
                    "At least one of the pre-conditions you specified did not hold",
                ),
                resource,
                &[],
                head_only,
            )
            .await?;
            return Ok(true);
        }
    }
    if let Some(m) = req.header("if-none-match") {
        if etag_matches(m, &etag) {
            let mut h = Head::new(state, 304);
            h.line(&format!("ETag: {etag}"));
            conn.write_all(&h.finish(0)).await?;
            return Ok(true);
        }
    }

    let range = req.header("range").and_then(ByteRange::parse);
    let (status, start, end) = match range {
        None => (200, 0, size),
        Some(r) => match r.resolve(size) {
            Some((s, e)) => (206, s, e),
            None => {
                let extra = [format!("Content-Range: bytes */{size}")];
                send_error(
                    conn,
                    state,
                    (
                        416,
                        "InvalidRange",
                        "The requested range is not satisfiable",
                    ),
                    resource,
                    &extra,
                    head_only,
                )
                .await?;
                return Ok(true);
            }
        },
    };

    let mut h = Head::new(state, status);
    h.line("Accept-Ranges: bytes");
    h.line("Content-Type: application/octet-stream");
    h.line(&format!("ETag: {etag}"));
    h.line(&format!(
        "Last-Modified: {}",
        httpdate::fmt_http_date(modified)
    ));
    if status == 206 {
        h.line(&format!("Content-Range: bytes {start}-{}/{size}", end - 1));
    }
    conn.write_all(&h.finish(end - start)).await?;
    if head_only || start == end {
        return Ok(true);
    }

    let model = &state.config.model;
    let cut = (model.reset_rate > 0.0 && scratch.rng.f64() < model.reset_rate)
        .then(|| start + scratch.rng.below(end - start));
    let mut pacer = Pacer::new(model.stream_bandwidth);
    let body_start_us = crate::trace::now_us();
    let mut pos = start;
    while pos < end {
        let mut n = (end - pos).min(scratch.buf.len() as u64);
        if let Some(c) = cut {
            n = n.min(c - pos);
            if n == 0 {
                state.stats.injected_resets.fetch_add(1, Relaxed);
                socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO))?;
                return Ok(false);
            }
        }
        let n = n as usize;
        pacer.pace(n).await;
        match &source {
            Source::Synthetic { seed, parquet } => {
                match parquet {
                    Some(p) => p.fill(*seed, pos, &mut scratch.buf[..n]),
                    None => content::fill(*seed, pos, &mut scratch.buf[..n]),
                }
                conn.write_all(&scratch.buf[..n]).await?;
            }
            Source::Stored(o) => {
                conn.write_all(&o.data[pos as usize..pos as usize + n])
                    .await?
            }
        }
        state.stats.body_bytes.fetch_add(n as u64, Relaxed);
        pos += n as u64;
    }
    crate::trace::line(|| {
        let now = crate::trace::now_us();
        format!("S {key} {start} {end} {body_start_us} {now}")
    });
    Ok(true)
}

async fn list_objects(
    state: &State,
    conn: &mut BufConn,
    req: &Request,
    bucket: &str,
) -> io::Result<()> {
    let prefix = query_param(&req.query, "prefix").unwrap_or_default();
    let max = query_param(&req.query, "max-keys")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1000)
        .min(1000);
    let after = query_param(&req.query, "continuation-token")
        .or_else(|| query_param(&req.query, "start-after"))
        .unwrap_or_default();
    let (items, more) = state.store.list(bucket, &prefix, &after, max);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    x.push_str(&format!(
        "<Name>{}</Name><Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max}</MaxKeys><IsTruncated>{more}</IsTruncated>",
        xml_escape(bucket),
        xml_escape(&prefix),
        items.len()
    ));
    if more {
        if let Some((k, ..)) = items.last() {
            x.push_str(&format!(
                "<NextContinuationToken>{}</NextContinuationToken>",
                xml_escape(k)
            ));
        }
    }
    for (k, size, etag, t) in &items {
        x.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            xml_escape(k),
            iso8601(*t),
            xml_escape(etag)
        ));
    }
    x.push_str("</ListBucketResult>");
    let mut h = Head::new(state, 200);
    h.line("Content-Type: application/xml");
    let mut out = h.finish(x.len() as u64);
    out.extend_from_slice(x.as_bytes());
    state.stats.body_bytes.fetch_add(x.len() as u64, Relaxed);
    conn.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etag_lists() {
        assert!(etag_matches("\"a\", \"b\"", "\"b\""));
        assert!(etag_matches("*", "\"x\""));
        assert!(!etag_matches("\"a\"", "\"b\""));
    }
}
