//! GetObject and HeadObject answered through the read pipeline (`cache::read`): this file
//! only speaks HTTP around it — which requests qualify, the status line and headers, 304, 412
//! and 416 answers, S3 errors, and the body written in vectored batches.

use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::outcome::{Outcome, RequestMetrics};
use super::{respond, WorkerCtx};
use crate::cache::conditional::Preconditions;
use crate::cache::range::{content_range, parse_range, unsatisfied_range, ByteRange, ParsedRange};
use crate::cache::read::{self, Answer, BodyStream, ReadRequest};
use crate::cache::{ObjectId, ObjectMeta};
use crate::edge::cors::is_cors_header;
use crate::edge::CorsHeaders;
use crate::http::{encode_response_head, http_date, Method, RequestHead};
use crate::net::ClientConn;
use crate::origin::ObjectFetch;
use crate::s3::{uri, Operation, S3Error};
use crate::{Origin, WorkerMetrics};

/// Headers whose presence means the cache cannot answer exactly as S3 would.
const UNCACHEABLE_HEADERS: &[&str] = &[
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-server-side-encryption-customer-key",
    "x-amz-request-payer",
    "x-amz-expected-bucket-owner",
];

/// A body is written once this much is pending, or this many slices.
const FLUSH_BYTES: usize = 256 * 1024;
const FLUSH_SLICES: usize = 64;

/// True when the request can be answered from the cache: a plain GET or HEAD of an object,
/// with no query parameter that changes the answer (`versionId`, `partNumber`,
/// `response-*`, ...) and no header the cache cannot honour (SSE-C, requester pays, ...).
pub(crate) fn eligible(head: &RequestHead, op: Operation) -> bool {
    if !matches!(op, Operation::GetObject | Operation::HeadObject) {
        return false;
    }
    let query_ok = uri::query_pairs(head.query())
        .all(|(k, _)| k == "x-id" || k.len() > 6 && k[..6].eq_ignore_ascii_case("x-amz-"));
    query_ok && !UNCACHEABLE_HEADERS.iter().any(|h| head.header(h).is_some())
}

/// Everything a cached answer needs about the request.
pub(crate) struct CachedRequest<'a> {
    pub ctx: &'a Rc<WorkerCtx>,
    pub head: &'a RequestHead,
    pub origin: &'a Arc<Origin>,
    pub origin_bucket: &'a str,
    pub key: &'a str,
    pub request_id: &'a str,
    pub keep_alive: bool,
    /// How long the client may take no bytes before it is cut (`server.send_timeout`).
    pub send_timeout: std::time::Duration,
    /// Told how the cache answered and when origin bytes arrived.
    pub outcome: &'a Outcome,
    /// CORS headers every answer carries (a matching `[[cors]]` rule), if any.
    pub cors: Option<&'a CorsHeaders<'a>>,
}

/// What serving from the cache came to.
pub(crate) enum Served {
    /// Answered; the connection may be reused when `true`.
    Done(bool),
    /// The cache cannot answer this one (the origin's metadata answer was not a plain 200, an
    /// unusual Range header): pass it through. Nothing was written.
    PassThrough,
}

impl CachedRequest<'_> {
    fn metrics(&self) -> RequestMetrics<'_> {
        RequestMetrics::new(self.ctx.metrics(), self.outcome)
    }

    fn is_head(&self) -> bool {
        self.head.verb() == Method::Head
    }

    fn op(&self) -> Operation {
        if self.is_head() {
            Operation::HeadObject
        } else {
            Operation::GetObject
        }
    }

    /// Serve the request through the read pipeline.
    pub(crate) async fn serve(&self, conn: &mut ClientConn) -> Served {
        let range = match parse_range(self.head.header("range")) {
            ParsedRange::None => None,
            ParsedRange::Single(spec) => Some(spec),
            ParsedRange::PassThrough => return Served::PassThrough,
        };
        let object = ObjectId::new(&self.origin.name, self.origin_bucket, self.key);
        let req = ReadRequest {
            object: object.clone(),
            range,
            preconditions: Preconditions {
                if_match: self.head.header_str("if-match"),
                if_none_match: self.head.header_str("if-none-match"),
                if_modified_since: self.head.header_str("if-modified-since"),
                if_unmodified_since: self.head.header_str("if-unmodified-since"),
            },
            head_only: self.is_head(),
            wants_checksums: self.wants_checksums(),
            budget_wait: self.send_timeout,
        };
        let fetch = Rc::new(ObjectFetch::new(
            self.ctx.origin.clone(),
            self.origin.clone(),
            object,
        ));
        let answer = match read::open(&self.ctx.read, fetch, &req).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(error = %e, "cached read failed before its first byte");
                return Served::Done(self.error(conn, &S3Error::from_error(&e), &[]).await);
            }
        };
        let keep = match answer {
            Answer::PassThrough => return Served::PassThrough,
            Answer::NotModified(meta) => self.not_modified(conn, &meta).await,
            Answer::PreconditionFailed => {
                let err = S3Error::new(
                    "PreconditionFailed",
                    412,
                    "At least one of the pre-conditions you specified did not hold",
                );
                self.error(conn, &err, &[]).await
            }
            Answer::Unsatisfiable(meta) => {
                let cr = unsatisfied_range(meta.size);
                let extra: [(&[u8], &[u8]); 1] = [(b"content-range", cr.as_bytes())];
                self.error(conn, &S3Error::invalid_range(), &extra).await
            }
            Answer::Object {
                meta,
                range,
                partial,
                body,
            } => {
                let head = self.response_head(&meta, partial, range);
                match body {
                    None => self.send(conn, vec![head]).await && self.keep_alive,
                    Some(body) => {
                        if body.first_from_origin() {
                            self.outcome.origin_first_byte();
                        }
                        self.stream(conn, head, body).await && self.keep_alive
                    }
                }
            }
        };
        Served::Done(keep)
    }

    /// Write `head` and the body in batches. Pending slices are flushed before the stream has
    /// to wait for an origin, so a client never waits on bytes rangecache already holds. A
    /// failure after the head is out can only cut the connection: the client sees a short
    /// body, never bytes of another version.
    async fn stream(
        &self,
        conn: &mut ClientConn,
        head: Bytes,
        mut body: BodyStream<ObjectFetch>,
    ) -> bool {
        let ok = self.stream_body(conn, head, &mut body).await;
        let (held, claimed) = body.blocks();
        self.outcome.blocks(held, claimed);
        ok
    }

    async fn stream_body(
        &self,
        conn: &mut ClientConn,
        head: Bytes,
        body: &mut BodyStream<ObjectFetch>,
    ) -> bool {
        let mut pending = vec![head];
        let mut pending_len = 0;
        loop {
            if !pending.is_empty()
                && (pending_len >= FLUSH_BYTES || pending.len() >= FLUSH_SLICES || !body.is_ready())
            {
                pending_len = 0;
                if !self.send(conn, std::mem::take(&mut pending)).await {
                    return false;
                }
            }
            match body.next().await {
                Ok(Some(piece)) => {
                    pending_len += piece.len();
                    pending.push(piece);
                }
                Ok(None) => return self.send(conn, pending).await,
                Err(e) => {
                    tracing::debug!(error = %e, "cached body cut");
                    let _ = self.send(conn, pending).await;
                    return false;
                }
            }
        }
    }

    /// The 200/206 (or HEAD) response head built from metadata.
    fn response_head(&self, meta: &ObjectMeta, partial: bool, range: Option<ByteRange>) -> Bytes {
        let len = Decimal::new(range.map_or(0, |r| r.len()));
        let cr = range
            .filter(|_| partial)
            .map(|r| content_range(r, meta.size));
        let date = http_date();
        let mut headers: Vec<(&[u8], &[u8])> = Vec::with_capacity(meta.headers.len() + 6);
        // S3 sends an object's checksum only to clients that ask, and only for the whole object.
        // CORS headers are `[[cors]]`'s alone, never an origin's.
        let checksums = !partial && self.wants_checksums();
        headers.extend(
            meta.headers
                .iter()
                .filter(|(k, _)| (checksums || !is_checksum_header(k)) && !is_cors_header(k))
                .map(|(k, v)| (&k[..], &v[..])),
        );
        headers.push((b"content-length", len.as_bytes()));
        if let Some(cr) = &cr {
            headers.push((b"content-range", cr.as_bytes()));
        }
        headers.push((b"x-amz-request-id", self.request_id.as_bytes()));
        headers.push((b"date", &date));
        if let Some(cors) = self.cors {
            cors.push_into(&mut headers);
        }
        if !self.keep_alive {
            headers.push((b"connection", b"close"));
        }
        let mut out = BytesMut::with_capacity(512);
        encode_response_head(&mut out, if partial { 206 } else { 200 }, headers);
        self.metrics()
            .record_request(self.op(), if partial { 206 } else { 200 });
        out.freeze()
    }

    /// True when the client asked for the object's checksum (`x-amz-checksum-mode: ENABLED`).
    fn wants_checksums(&self) -> bool {
        self.head
            .header_str("x-amz-checksum-mode")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("enabled"))
    }

    async fn not_modified(&self, conn: &mut ClientConn, meta: &ObjectMeta) -> bool {
        const KEPT: [&[u8]; 5] = [
            b"etag",
            b"last-modified",
            b"server",
            b"cache-control",
            b"expires",
        ];
        let date = http_date();
        let mut headers: Vec<(&[u8], &[u8])> = meta
            .headers
            .iter()
            .filter(|(k, _)| KEPT.iter().any(|h| k.eq_ignore_ascii_case(h)))
            .map(|(k, v)| (&k[..], &v[..]))
            .collect();
        headers.push((b"x-amz-request-id", self.request_id.as_bytes()));
        headers.push((b"date", &date));
        if let Some(cors) = self.cors {
            cors.push_into(&mut headers);
        }
        if !self.keep_alive {
            headers.push((b"connection", b"close"));
        }
        let mut out = BytesMut::with_capacity(256);
        encode_response_head(&mut out, 304, headers);
        self.metrics().record_request(self.op(), 304);
        self.send(conn, vec![out.freeze()]).await && self.keep_alive
    }

    async fn error(&self, conn: &mut ClientConn, err: &S3Error, extra: &[(&[u8], &[u8])]) -> bool {
        let reply = respond::ErrorReply {
            resource: self.head.path(),
            request_id: self.request_id,
            head_only: self.is_head(),
            close: !self.keep_alive,
        };
        let n = match self.cors {
            None => respond::write_error(conn, err, &reply, extra).await,
            Some(cors) => {
                let mut all = extra.to_vec();
                cors.push_into(&mut all);
                respond::write_error(conn, err, &reply, &all).await
            }
        };
        WorkerMetrics::add(&self.metrics().bytes_out, n);
        self.metrics().record_request(self.op(), err.status());
        n > 0 && self.keep_alive
    }

    async fn send(&self, conn: &mut ClientConn, parts: Vec<Bytes>) -> bool {
        respond::send(conn, parts, self.send_timeout, self.ctx.metrics()).await
    }
}

/// The decimal digits of a `u64` on the stack: a content length per response without a
/// `String`.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    fn new(mut n: u64) -> Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Self { digits, start }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

/// True for `x-amz-checksum-*` response headers.
fn is_checksum_header(name: &[u8]) -> bool {
    name.len() > 15 && name[..15].eq_ignore_ascii_case(b"x-amz-checksum-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_lengths() {
        for n in [0u64, 7, 10, 65536, u64::MAX] {
            assert_eq!(Decimal::new(n).as_bytes(), n.to_string().as_bytes());
        }
    }
}
