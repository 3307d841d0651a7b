//! CORS at the HTTP level: answering preflights (`OPTIONS`) without auth and without the
//! origin, as S3 does, and finding the headers an actual response carries. The rules
//! themselves are `edge::cors`.

use bytes::BytesMut;

use super::outcome::{Outcome, RequestMetrics};
use super::{respond, WorkerCtx};
use crate::edge::CorsHeaders;
use crate::http::{encode_response_head, http_date, Method, RequestHead};
use crate::net::ClientConn;
use crate::s3::{route, Operation};
use crate::{Snapshot, WorkerMetrics};

/// The CORS headers of an actual request on `bucket`: `None` (and nothing looked at or
/// allocated) when no `[[cors]]` rule is configured or the request has no `Origin`.
pub(crate) fn actual<'a>(
    snapshot: &'a Snapshot,
    head: &'a RequestHead,
    bucket: &str,
) -> Option<CorsHeaders<'a>> {
    if snapshot.cors.is_empty() {
        return None;
    }
    let origin = head.header("origin")?;
    snapshot.cors.actual(bucket, origin, head.verb())
}

/// Answer the preflight `head` (an `OPTIONS` request): 200 with the matching rule's
/// `Access-Control-*` headers, or S3's 400/403 error. Returns whether the connection may be
/// reused. A preflight carries no credentials, so none are asked for; it never reaches the
/// origin.
pub(crate) async fn preflight(
    conn: &mut ClientConn,
    head: &RequestHead,
    ctx: &WorkerCtx,
    snapshot: &Snapshot,
    outcome: &Outcome,
    keep_alive: bool,
) -> bool {
    let settings = &snapshot.server;
    // Where the preflight points, routed as the GET it asks about would be.
    let routed = route(
        Method::Get,
        head.path(),
        head.query(),
        head.host(),
        settings.domain.as_deref(),
        false,
    );
    let (bucket, op) = match &routed {
        Ok(r) => (
            r.bucket.as_deref().unwrap_or(""),
            if r.key.is_some() {
                Operation::OtherObject
            } else {
                Operation::OtherBucket
            },
        ),
        Err(_) => ("", Operation::OtherBucket),
    };
    if let Ok(r) = &routed {
        outcome.target(op, r.bucket.as_deref(), r.key.as_deref(), None);
    }
    let metrics = RequestMetrics::new(ctx.metrics(), outcome);
    let answer = snapshot.cors.preflight(
        bucket,
        head.header("origin"),
        head.header("access-control-request-method"),
        head.header("access-control-request-headers").unwrap_or(b""),
    );
    // Nothing follows an OPTIONS head but a body S3 would not read either.
    let keep_alive = keep_alive
        && matches!(
            head.framing(),
            crate::http::BodyFraming::None | crate::http::BodyFraming::Length(0)
        );
    match answer {
        Ok(cors) => {
            WorkerMetrics::add(&metrics.edge.preflight_allowed, 1);
            let date = http_date();
            let mut headers: Vec<(&[u8], &[u8])> = Vec::with_capacity(12);
            headers.push((b"x-amz-request-id", outcome.request_id().as_bytes()));
            headers.push((b"date", &date));
            headers.push((b"server", b"rangecache"));
            headers.push((b"content-length", b"0"));
            cors.push_into(&mut headers);
            if !keep_alive {
                headers.push((b"connection", b"close"));
            }
            let mut out = BytesMut::with_capacity(512);
            encode_response_head(&mut out, 200, headers);
            metrics.record_request(op, 200);
            let sent = respond::send(
                conn,
                vec![out.freeze()],
                settings.send_timeout,
                ctx.metrics(),
            )
            .await;
            sent && keep_alive
        }
        Err(refusal) => {
            WorkerMetrics::add(&metrics.edge.preflight_refused, 1);
            let err = refusal.to_s3();
            let reply = respond::ErrorReply {
                resource: head.path(),
                request_id: outcome.request_id(),
                head_only: false,
                close: !keep_alive,
            };
            let n = respond::write_error(conn, &err, &reply, &[]).await;
            WorkerMetrics::add(&metrics.bytes_out, n);
            metrics.record_request(op, err.status());
            n > 0 && keep_alive
        }
    }
}
