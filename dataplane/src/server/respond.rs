//! Writing responses the proxy makes itself (S3 errors, interim 100 Continue).

use std::time::SystemTime;

use bytes::{Bytes, BytesMut};

use crate::http::encode_response_head;
use crate::net::ClientConn;
use crate::s3::S3Error;

/// The interim response sent before reading a body the client holds back for it.
pub(crate) const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// An S3 error response: XML body (`Code`, `Message`, `Resource`, `RequestId`), S3's status,
/// `x-amz-request-id`. HEAD responses carry the headers only, as S3 sends them.
pub(crate) fn error_response(
    err: &S3Error,
    resource: &str,
    request_id: &str,
    is_head: bool,
    close: bool,
    extra: &[(&[u8], &[u8])],
) -> Vec<Bytes> {
    let body = err.to_xml(resource, request_id);
    let date = httpdate::fmt_http_date(SystemTime::now());
    let len = body.len().to_string();
    let mut headers: Vec<(&[u8], &[u8])> = vec![
        (b"x-amz-request-id", request_id.as_bytes()),
        (b"date", date.as_bytes()),
        (b"server", b"rangecache"),
        (b"content-type", b"application/xml"),
        (b"content-length", len.as_bytes()),
    ];
    headers.extend_from_slice(extra);
    if close {
        headers.push((b"connection", b"close"));
    }
    let mut head = BytesMut::with_capacity(256);
    encode_response_head(&mut head, err.status(), headers);
    if is_head {
        vec![head.freeze()]
    } else {
        vec![head.freeze(), body]
    }
}

/// Write an S3 error; returns the bytes written (0 if the client is gone).
pub(crate) async fn write_error(
    conn: &mut ClientConn,
    err: &S3Error,
    resource: &str,
    request_id: &str,
    is_head: bool,
    close: bool,
    extra: &[(&[u8], &[u8])],
) -> u64 {
    let parts = error_response(err, resource, request_id, is_head, close, extra);
    conn.write_vectored(parts)
        .await
        .map(|n| n as u64)
        .unwrap_or(0)
}
