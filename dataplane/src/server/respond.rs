//! Writing responses: S3 errors the proxy makes itself, the interim 100 Continue, and every
//! write to a client under `server.send_timeout`.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::http::{encode_response_head, http_date};
use crate::net::ClientConn;
use crate::s3::S3Error;
use crate::WorkerMetrics;

/// The interim response sent before reading a body the client holds back for it.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How an S3 error answers one request.
pub(crate) struct ErrorReply<'a> {
    /// The request path, echoed as `Resource`.
    pub resource: &'a str,
    /// The request's id (`RequestId` and `x-amz-request-id`).
    pub request_id: &'a str,
    /// A HEAD request: headers only, as S3 sends them.
    pub head_only: bool,
    /// Close the connection after this answer (`Connection: close`).
    pub close: bool,
}

/// An S3 error response: XML body (`Code`, `Message`, `Resource`, `RequestId`), S3's status,
/// `x-amz-request-id`, and the `extra` headers.
pub(crate) fn error_response(
    err: &S3Error,
    reply: &ErrorReply<'_>,
    extra: &[(&[u8], &[u8])],
) -> Vec<Bytes> {
    let body = err.to_xml(reply.resource, reply.request_id);
    let date = http_date();
    let len = body.len().to_string();
    let mut headers: Vec<(&[u8], &[u8])> = vec![
        (b"x-amz-request-id", reply.request_id.as_bytes()),
        (b"date", &date),
        (b"server", b"rangecache"),
        (b"content-type", b"application/xml"),
        (b"content-length", len.as_bytes()),
    ];
    headers.extend_from_slice(extra);
    if reply.close {
        headers.push((b"connection", b"close"));
    }
    let mut head = BytesMut::with_capacity(256);
    encode_response_head(&mut head, err.status(), headers);
    if reply.head_only {
        vec![head.freeze()]
    } else {
        vec![head.freeze(), body]
    }
}

/// Write an S3 error; returns the bytes written (0 if the client is gone).
pub(crate) async fn write_error(
    conn: &mut ClientConn,
    err: &S3Error,
    reply: &ErrorReply<'_>,
    extra: &[(&[u8], &[u8])],
) -> u64 {
    let parts = error_response(err, reply, extra);
    conn.write_vectored(parts)
        .await
        .map(|n| n as u64)
        .unwrap_or(0)
}

/// Write `parts` with one vectored write that must finish within `timeout` (the client must
/// take the bytes); counts what was written, and a time-out, in `metrics`. False when the
/// client is gone or too slow: the caller closes the connection.
pub(crate) async fn send(
    conn: &mut ClientConn,
    parts: Vec<Bytes>,
    timeout: Duration,
    metrics: &WorkerMetrics,
) -> bool {
    match monoio::time::timeout(timeout, conn.write_vectored(parts)).await {
        Ok(Ok(n)) => {
            WorkerMetrics::add(&metrics.bytes_out, n as u64);
            true
        }
        Ok(Err(_)) => false,
        Err(_) => {
            WorkerMetrics::add(&metrics.send_timeouts, 1);
            false
        }
    }
}
