//! The S3 pass-through: route a request, re-sign it for its origin, stream the request body up
//! and the response body down. Nothing is ever held whole.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};

use super::admission;
use super::cached::{self, CachedRequest, Served};
use super::cors;
use super::headers::{forward_request_header, forward_response_header, strip_aws_chunked};
use super::outcome::{Outcome, RequestMetrics};
use super::{respond, WorkerCtx};
use crate::auth::{BodyCheck, PRESIGN_PARAMS, SIGV2_PRESIGN_PARAMS};
use crate::edge::cors::is_cors_header;
use crate::edge::CorsHeaders;
use crate::error::Error;
use crate::fleet::Invalidation;
use crate::http::{
    encode_response_head, BodyFraming, Limits, Method, RequestHead, ResponseFraming, ResponseHead,
};
use crate::net::{AwsChunkedBody, BodyError, BodyReader, ClientConn};
use crate::origin::{OriginExchange, OriginRequest, RequestBody};
use crate::s3::{route, uri, Operation, S3Error};
use crate::{Backend, Origin, ServerSettings, Snapshot, WorkerMetrics};

/// The client's request body, decoded down to the S3 payload and checked against what its
/// signature promised.
pub(super) enum ClientBody {
    Plain(BodyReader, BodyCheck),
    AwsChunked(AwsChunkedBody),
}

impl ClientBody {
    /// The next payload piece; at the end, every pending check has passed
    /// ([`BodyError::Rejected`] otherwise).
    pub(super) async fn next(
        &mut self,
        conn: &mut ClientConn,
        settings: &ServerSettings,
    ) -> Result<Option<Bytes>, BodyError> {
        match self {
            ClientBody::Plain(b, check) => {
                let piece = b.next(conn, settings.body_timeout).await?;
                match &piece {
                    Some(p) => check.data(p),
                    None => check.end(&[]).map_err(BodyError::Rejected)?,
                }
                Ok(piece)
            }
            ClientBody::AwsChunked(b) => b.next(conn, settings.body_timeout).await,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        match self {
            ClientBody::Plain(b, _) => b.is_done(),
            ClientBody::AwsChunked(b) => b.is_done(),
        }
    }
}

/// What one request needs besides the connection.
pub(super) struct Exchange<'a> {
    pub(super) ctx: &'a WorkerCtx,
    pub(super) settings: &'a ServerSettings,
    pub(super) outcome: &'a Outcome,
    pub(super) request_id: &'a str,
    resource: String,
    pub(super) is_head: bool,
    pub(super) op: Operation,
    client_minor: u8,
    pub(super) client_keep_alive: bool,
    /// For writes: the object whose cached metadata a 2xx answer invalidates.
    pub(super) writes: Option<Written>,
    /// The `[[cors]]` rule's headers for this request, when one matches its `Origin`.
    cors: Option<CorsHeaders<'a>>,
}

/// What a write through the proxy may have changed.
pub(super) struct Written {
    origin: Arc<Origin>,
    origin_bucket: String,
    op: Operation,
    key: Option<String>,
}

/// Handle one request whose head has been read, from `client` (the effective client address,
/// see `edge::ProxyTrust`), reporting what became of it to `outcome`. Returns whether the
/// connection may carry another request.
pub(crate) async fn handle(
    conn: &mut ClientConn,
    head: RequestHead,
    ctx: &Rc<WorkerCtx>,
    snapshot: &Snapshot,
    limits: &Limits,
    outcome: &Outcome,
    client: SocketAddr,
) -> bool {
    let settings = &snapshot.server;
    if head.verb() == Method::Options {
        let keep_alive = head.keep_alive() && !ctx.draining();
        // Boxed: the preflight's state stays out of this future, which every request moves.
        return Box::pin(cors::preflight(
            conn, &head, ctx, snapshot, outcome, keep_alive,
        ))
        .await;
    }
    let mut ex = Exchange {
        ctx,
        settings,
        outcome,
        request_id: outcome.request_id(),
        resource: head.path().to_owned(),
        is_head: head.verb() == Method::Head,
        op: Operation::OtherObject,
        client_minor: head.version_minor(),
        client_keep_alive: head.keep_alive() && !ctx.draining(),
        writes: None,
        cors: None,
    };
    let has_body = !matches!(head.framing(), BodyFraming::None | BodyFraming::Length(0));
    let copy_source = head.header("x-amz-copy-source").is_some();
    let routed = route(
        head.verb(),
        head.path(),
        head.query(),
        head.host(),
        snapshot.server.domain.as_deref(),
        copy_source,
    );
    let r = match routed {
        Ok(r) => r,
        Err(err) => return ex.fail(conn, &err, !has_body).await,
    };
    ex.op = r.op;
    ex.cors = cors::actual(snapshot, &head, r.bucket.as_deref().unwrap_or(""));
    outcome.target(
        r.op,
        r.bucket.as_deref(),
        r.key.as_deref(),
        head.header_str("range"),
    );
    // Authorization comes before the cache: no byte, cached or not, without it.
    let admitted = admission::admit(
        &head,
        &r,
        &snapshot.auth,
        &ctx.keys,
        SystemTime::now(),
        outcome,
        client.ip(),
    )
    .and_then(|mut check| {
        if !has_body {
            check.end(&[])?;
        }
        Ok(check)
    });
    let check = match admitted {
        Ok(check) => check,
        Err(e) => {
            WorkerMetrics::add(&ctx.metrics().auth_rejected, 1);
            tracing::debug!(
                code = e.code(),
                message = e.message(),
                "request not admitted"
            );
            return ex.fail(conn, &S3Error::from(e), !has_body).await;
        }
    };
    let bucket = r.bucket.as_deref().unwrap_or("");
    let (origin, origin_bucket) = snapshot.route_bucket(bucket);
    let origin = origin.clone();
    if r.op.writes_object() && ctx.cache.enabled() {
        ex.writes = Some(Written {
            origin: origin.clone(),
            origin_bucket: origin_bucket.to_owned(),
            op: r.op,
            key: r.key.clone(),
        });
    }
    if let (Some(key), true) = (
        r.key.as_deref(),
        ctx.cache.enabled() && !has_body && cached::eligible(&head, r.op),
    ) {
        // A hit builds no origin request: the pipeline makes one only for what it lacks.
        let cached = CachedRequest {
            ctx,
            head: &head,
            origin: &origin,
            origin_bucket,
            key,
            request_id: ex.request_id,
            keep_alive: ex.client_keep_alive,
            send_timeout: settings.send_timeout,
            outcome,
            cors: ex.cors.as_ref(),
        };
        if let Served::Done(keep) = cached.serve(conn).await {
            outcome.served_from_cache();
            return keep;
        }
    }
    let aws_chunked = is_aws_chunked(&head);
    let req = match build_origin_request(
        &head,
        aws_chunked,
        snapshot,
        &origin,
        origin_bucket,
        r.bucket.is_some(),
        r.key.as_deref(),
    ) {
        Ok(req) => req,
        Err(err) => return ex.fail(conn, &err, !has_body).await,
    };
    let body = client_body(&head, aws_chunked, limits, check);
    if let Backend::Azure(_) = &origin.backend {
        let bucket = super::azure::Bucket {
            client: bucket,
            container: origin_bucket,
        };
        let call = super::azure::Call {
            head: &head,
            route: &r,
            origin: &origin,
            has_body,
        };
        return ex.azure(conn, call, bucket, req, body).await;
    }
    let keep = if matches!(req.body, RequestBody::None) {
        // A declared-empty body (`Content-Length: 0`) has nothing to drain.
        match ctx.origin.send_bodyless(&origin, &req, ex.is_head).await {
            Ok((up, resp)) => {
                outcome.origin_first_byte();
                ex.relay_response(conn, up, resp, true).await
            }
            Err(e) => ex.fail(conn, &origin_error(&e), true).await,
        }
    } else {
        ex.forward_with_body(conn, &head, &origin, &req, body).await
    };
    keep
}

/// Forget what this node and its fleet peers know of an object a write through the proxy may
/// have changed, so the writer reads its own write through any node. Peers are waited for at
/// most the bound their hook names; one that does not answer keeps the old metadata until its
/// `cache.metadata_ttl` (the hook logs and counts it).
pub(super) async fn invalidate_after_write(ctx: &WorkerCtx, w: &Written) {
    let (origin, origin_bucket) = (&w.origin, w.origin_bucket.as_str());
    let what = match (w.op, w.key.as_deref()) {
        // The keys are in the request body, which is streamed, not parsed: drop the bucket.
        (Operation::DeleteObjects, _) => Invalidation::Bucket {
            origin: origin.name.clone(),
            bucket: origin_bucket.to_owned(),
        },
        (_, Some(key)) => Invalidation::Object(crate::cache::ObjectId::new(
            &origin.name,
            origin_bucket,
            key,
        )),
        (_, None) => return,
    };
    what.apply(&ctx.cache.meta);
    let fleet = ctx.snapshot.load().fleet.clone();
    if let Some(pending) = fleet.and_then(|f| f.invalidate(what)) {
        if !crate::fleet::wait(pending).await {
            tracing::debug!("fleet invalidation not confirmed in time");
        }
    }
}

/// How the client's body is framed and encoded.
fn client_body(
    head: &RequestHead,
    aws_chunked: bool,
    limits: &Limits,
    check: BodyCheck,
) -> ClientBody {
    let transfer = match head.framing() {
        BodyFraming::None => BodyReader::empty(),
        BodyFraming::Length(n) => BodyReader::length(n),
        BodyFraming::Chunked => BodyReader::chunked(limits),
    };
    if aws_chunked {
        ClientBody::AwsChunked(AwsChunkedBody::new(transfer, limits, check))
    } else {
        ClientBody::Plain(transfer, check)
    }
}

/// True when the body uses S3's aws-chunked content coding (signed or unsigned streaming).
fn is_aws_chunked(head: &RequestHead) -> bool {
    let streaming = head
        .header_str("x-amz-content-sha256")
        .is_some_and(|v| v.starts_with("STREAMING-"));
    let coded = head.header_str("content-encoding").is_some_and(|v| {
        v.split(',')
            .any(|c| c.trim().eq_ignore_ascii_case("aws-chunked"))
    });
    streaming || coded
}

/// Build the upstream request: origin path and query, forwarded end-to-end headers, body framing.
fn build_origin_request(
    head: &RequestHead,
    aws_chunked: bool,
    snapshot: &Snapshot,
    origin: &Arc<Origin>,
    origin_bucket: &str,
    has_bucket: bool,
    key: Option<&str>,
) -> Result<OriginRequest, S3Error> {
    let mut headers = Vec::with_capacity(head.headers().len());
    for h in head.headers() {
        let name = h.name_str();
        if !forward_request_header(name, aws_chunked) {
            continue;
        }
        let value = h.value_str().ok_or_else(|| {
            S3Error::invalid_argument(format!("header {name} is not valid UTF-8"))
        })?;
        let name = name.to_ascii_lowercase();
        if aws_chunked && name == "content-encoding" {
            if let Some(rest) = strip_aws_chunked(value) {
                headers.push((name, rest));
            }
            continue;
        }
        if name == "x-amz-copy-source" {
            headers.push((name, rewrite_copy_source(value, snapshot, origin)?));
            continue;
        }
        headers.push((name, value.to_owned()));
    }
    let body = if aws_chunked {
        match head.header_str("x-amz-decoded-content-length") {
            Some(v) => RequestBody::Length(v.trim().parse().map_err(|_| {
                S3Error::invalid_argument("x-amz-decoded-content-length is not a number")
            })?),
            None => RequestBody::Chunked,
        }
    } else {
        match head.framing() {
            BodyFraming::None => RequestBody::None,
            BodyFraming::Length(0) if !matches!(head.verb(), Method::Put | Method::Post) => {
                RequestBody::None
            }
            BodyFraming::Length(n) => RequestBody::Length(n),
            BodyFraming::Chunked => RequestBody::Chunked,
        }
    };
    let mut path = if has_bucket {
        uri::origin_path(origin_bucket, key)
    } else {
        "/".to_owned()
    };
    append_origin_query(&mut path, head.query());
    Ok(OriginRequest {
        method: head.method().to_owned(),
        path_and_query: path,
        headers,
        body,
    })
}

/// Appends `?query` to an origin path, without the client's presign parameters (SigV4's and
/// SigV2's).
fn append_origin_query(path: &mut String, raw_query: &str) {
    let mut first = true;
    for segment in raw_query.split('&').filter(|s| !s.is_empty()) {
        let name = segment.split_once('=').map_or(segment, |(n, _)| n);
        let presign = PRESIGN_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(name))
            || SIGV2_PRESIGN_PARAMS.contains(&name);
        if presign {
            continue;
        }
        path.push(if first { '?' } else { '&' });
        path.push_str(segment);
        first = false;
    }
}

/// Map the source bucket of `x-amz-copy-source` (`[/]bucket/key[?versionId=..]`) to its
/// origin-side name; copies between buckets on different origins cannot be done by S3.
fn rewrite_copy_source(
    value: &str,
    snapshot: &Snapshot,
    origin: &Arc<Origin>,
) -> Result<String, S3Error> {
    let trimmed = value.strip_prefix('/').unwrap_or(value);
    let (bucket_raw, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let bucket = uri::decode_path(bucket_raw)
        .map_err(|_| S3Error::invalid_argument("invalid x-amz-copy-source"))?;
    let (src_origin, src_bucket) = snapshot.route_bucket(&bucket);
    if !Arc::ptr_eq(src_origin, origin) && src_origin.name != origin.name {
        return Err(S3Error::new(
            "NotImplemented",
            501,
            "copying between buckets served by different origins is not supported",
        ));
    }
    let mut out = String::with_capacity(value.len() + 8);
    out.push('/');
    uri::aws_uri_encode(src_bucket, false, &mut out);
    out.push('/');
    out.push_str(rest);
    Ok(out)
}

/// The S3 error a client sees when the origin could not be used.
pub(super) fn origin_error(e: &Error) -> S3Error {
    tracing::debug!(error = %e, "origin request failed");
    S3Error::from_error(e)
}

impl Exchange<'_> {
    fn metrics(&self) -> RequestMetrics<'_> {
        RequestMetrics::new(self.ctx.metrics(), self.outcome)
    }

    /// Answer with an S3 error. `body_consumed` tells whether the connection is still in sync
    /// (no unread request body); if not, it is closed.
    pub(super) async fn fail(
        &self,
        conn: &mut ClientConn,
        err: &S3Error,
        body_consumed: bool,
    ) -> bool {
        let keep = self.client_keep_alive && body_consumed;
        let reply = respond::ErrorReply {
            resource: &self.resource,
            request_id: self.request_id,
            head_only: self.is_head,
            close: !keep,
        };
        let extra = self.cors.map(|c| c.to_vec()).unwrap_or_default();
        let n = respond::write_error(conn, err, &reply, &extra).await;
        WorkerMetrics::add(&self.metrics().bytes_out, n);
        self.metrics().record_request(self.op, err.status());
        keep && n > 0
    }

    /// The client's body could not be read: answer with the matching error and close.
    pub(super) async fn body_failed(&self, conn: &mut ClientConn, e: BodyError) -> bool {
        tracing::debug!(error = %e, "client request body failed");
        let err = match e {
            BodyError::Protocol(_) => S3Error::bad_request("malformed request body framing"),
            BodyError::Timeout => S3Error::request_timeout(),
            BodyError::Rejected(e) => {
                WorkerMetrics::add(&self.metrics().auth_rejected, 1);
                S3Error::from(e)
            }
            _ => S3Error::incomplete_body(),
        };
        self.fail(conn, &err, false).await
    }

    /// Stream the client's body to the origin, then relay the response.
    async fn forward_with_body(
        &self,
        conn: &mut ClientConn,
        head: &RequestHead,
        origin: &Origin,
        req: &OriginRequest,
        body: ClientBody,
    ) -> bool {
        match self.upload(conn, head, origin, req, body).await {
            Ok((up, resp, consumed)) => self.relay_response(conn, up, resp, consumed).await,
            Err(keep) => keep,
        }
    }

    /// Stream the client's body to the origin and read the response head: the exchange, its
    /// head and whether the client's body was read to its end; or, when the client was
    /// already answered (an error), whether its connection may be kept.
    pub(super) async fn upload(
        &self,
        conn: &mut ClientConn,
        head: &RequestHead,
        origin: &Origin,
        req: &OriginRequest,
        mut body: ClientBody,
    ) -> Result<(OriginExchange, ResponseHead, bool), bool> {
        let client = &self.ctx.origin;
        if head.expects_continue()
            && conn
                .write_all(Bytes::from_static(respond::CONTINUE))
                .await
                .is_err()
        {
            return Err(false);
        }
        // One piece is always held back until the next one (or the body's end, every check
        // passed) is here: a body that fails its checks never reaches the origin whole, so the
        // origin discards the incomplete upload. And the upstream request starts only once two
        // pieces (or one and the verified end) are here: a body that fails before that never
        // reaches the origin at all, where some stores would record an empty object for a
        // request cut before its first byte.
        let mut piece = match body.next(conn, self.settings).await {
            Ok(piece) => piece,
            Err(e) => return Err(self.body_failed(conn, e).await),
        };
        let mut ahead = match piece {
            Some(_) => match body.next(conn, self.settings).await {
                Ok(next) => next,
                Err(e) => return Err(self.body_failed(conn, e).await),
            },
            None => None,
        };
        let mut up = match client.start(origin, req, false).await {
            Ok(up) => up,
            Err(e) => return Err(self.fail(conn, &origin_error(&e), false).await),
        };
        let mut origin_write_failed = false;
        while let Some(p) = piece {
            WorkerMetrics::add(&self.metrics().bytes_in, p.len() as u64);
            if up.write_body(p).await.is_err() {
                // The origin may have answered early (an error) and closed: relay that.
                origin_write_failed = true;
                break;
            }
            piece = ahead;
            ahead = match piece {
                Some(_) => match body.next(conn, self.settings).await {
                    Ok(next) => next,
                    Err(e) => return Err(self.body_failed(conn, e).await),
                },
                None => None,
            };
        }
        if !origin_write_failed && up.finish_body().await.is_err() {
            origin_write_failed = true;
        }
        match up.read_response_head(client.limits(), self.is_head).await {
            Ok(resp) => {
                self.outcome.origin_first_byte();
                Ok((up, resp, body.is_done()))
            }
            Err(e) => {
                client.count_error();
                tracing::debug!(error = %e, origin_write_failed, "origin failed during upload");
                Err(self.fail(conn, &origin_error(&e), body.is_done()).await)
            }
        }
    }

    /// Write the origin's response head and stream its body to the client.
    pub(super) async fn relay_response(
        &self,
        conn: &mut ClientConn,
        mut up: OriginExchange,
        resp: ResponseHead,
        request_consumed: bool,
    ) -> bool {
        let status = resp.status();
        if let (Some(w), 200..=299) = (&self.writes, status) {
            // Before the client hears of the write: its next read, on any worker, must see it.
            invalidate_after_write(self.ctx, w).await;
        }
        let chunk_to_client = matches!(
            resp.framing(),
            ResponseFraming::Chunked | ResponseFraming::UntilClose
        );
        let mut keep = self.client_keep_alive && request_consumed;
        if chunk_to_client && self.client_minor == 0 {
            // An HTTP/1.0 client cannot take chunked: the end of the body is the connection's end.
            keep = false;
        }
        let mut headers: Vec<(&[u8], &[u8])> = Vec::with_capacity(resp.headers().len() + 3);
        let mut has_request_id = false;
        for h in resp.headers() {
            let name = h.name_str();
            if name.eq_ignore_ascii_case("content-length") {
                if matches!(
                    resp.framing(),
                    ResponseFraming::Length(_) | ResponseFraming::None
                ) {
                    headers.push((&h.name, &h.value));
                }
                continue;
            }
            if !forward_response_header(name) || is_cors_header(&h.name) {
                continue;
            }
            has_request_id |= name.eq_ignore_ascii_case("x-amz-request-id");
            headers.push((&h.name, &h.value));
        }
        if !has_request_id {
            headers.push((b"x-amz-request-id", self.request_id.as_bytes()));
        }
        if let Some(cors) = &self.cors {
            cors.push_into(&mut headers);
        }
        let chunked = chunk_to_client && self.client_minor >= 1;
        if chunked {
            headers.push((b"transfer-encoding", b"chunked"));
        }
        if !keep {
            headers.push((b"connection", b"close"));
        } else if self.client_minor == 0 {
            headers.push((b"connection", b"keep-alive"));
        }
        let mut out = BytesMut::with_capacity(512);
        encode_response_head(&mut out, status, headers);
        self.metrics().record_request(self.op, status);
        let mut pending = vec![out.freeze()];
        let timeout = self.settings.send_timeout;
        loop {
            // The head goes out with the first body piece in one vectored write.
            match up.next_body().await {
                Ok(Some(piece)) => {
                    if chunked {
                        pending.push(crate::http::chunk_size_line(piece.len()));
                        pending.push(piece);
                        pending.push(Bytes::from_static(crate::http::CRLF));
                    } else {
                        pending.push(piece);
                    }
                }
                Ok(None) => {
                    if chunked {
                        pending.push(Bytes::from_static(crate::http::LAST_CHUNK));
                    }
                    if !respond::send(conn, pending, timeout, self.ctx.metrics()).await {
                        return false;
                    }
                    break;
                }
                Err(e) => {
                    // Headers (maybe part of the body) are out: the only honest signal left
                    // is to cut the connection, so the client sees a short response.
                    tracing::debug!(error = %e, "origin response body failed");
                    self.ctx.origin.count_error();
                    respond::send(conn, pending, timeout, self.ctx.metrics()).await;
                    return false;
                }
            }
            // A client that takes nothing for `send_timeout` is cut; while it is slow, the
            // origin connection waits under flow control: one piece is held at a time.
            if !respond::send(
                conn,
                std::mem::take(&mut pending),
                timeout,
                self.ctx.metrics(),
            )
            .await
            {
                return false;
            }
        }
        up.finish(&self.ctx.origin);
        keep
    }
}
