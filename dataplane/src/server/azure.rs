//! The pass-through for buckets on an Azure Blob Storage origin: the S3 request becomes a
//! Blob request (`origin::azure::request`), the Blob answer becomes S3's. GetObject and
//! HeadObject go through the block cache first like any other origin's (the read pipeline's
//! `ObjectFetch` speaks Blob too); only what the cache passes on arrives here.

use bytes::{Bytes, BytesMut};

use super::proxy::{invalidate_after_write, origin_error, ClientBody, Exchange};
use super::respond;
use crate::cache::range::{parse_range, ParsedRange, RangeSpec};
use crate::http::{encode_response_head, http_date, RequestHead, ResponseHead};
use crate::net::ClientConn;
use crate::origin::azure::request::{self, Plan, Reply, S3Request};
use crate::origin::azure::{blocks, list, response};
use crate::origin::{OriginExchange, OriginRequest, RequestBody};
use crate::s3::{Route, S3Error};
use crate::Origin;

/// The bucket as the client and as the Blob service name it.
pub(super) struct Bucket<'a> {
    /// The client-side name (echoed in XML answers).
    pub client: &'a str,
    /// The container.
    pub container: &'a str,
}

/// The request being served.
pub(super) struct Call<'a> {
    pub head: &'a RequestHead,
    pub route: &'a Route,
    pub origin: &'a Origin,
    /// The client sent a body (not yet read).
    pub has_body: bool,
}

impl Exchange<'_> {
    /// Serve one request for a bucket on an Azure origin. `s3` is the request as an S3
    /// origin would get it (forwarded headers, decoded body framing).
    pub(super) async fn azure(
        &self,
        conn: &mut ClientConn,
        call: Call<'_>,
        bucket: Bucket<'_>,
        s3: OriginRequest,
        body: ClientBody,
    ) -> bool {
        // With no body to read, the connection stays in sync whatever is answered.
        let consumed = !call.has_body;
        let key = call.route.key.as_deref();
        let plan = request::plan(&S3Request {
            op: call.route.op,
            bucket: bucket.client,
            container: bucket.container,
            key,
            query: call.head.query(),
            s3: &s3,
        });
        let plan = match plan {
            Ok(plan) => plan,
            Err(e) => return self.fail(conn, &e, consumed).await,
        };
        let (req, reply) = match plan {
            Plan::Local(xml) => {
                return self
                    .answer(conn, 200, &[], Bytes::from(xml), consumed)
                    .await
            }
            Plan::NoContent => return self.answer(conn, 204, &[], Bytes::new(), consumed).await,
            Plan::Complete(upload) => {
                return self
                    .complete(conn, &call, &bucket, key.unwrap_or(""), &upload, body)
                    .await
            }
            Plan::Send { req, reply } => (req, reply),
        };
        let mut req = req;
        if req.method == "GET" && reply == Reply::Stream {
            if let Err(e) = self.resolve_suffix(call.origin, &mut req).await {
                return self.fail(conn, &e, consumed).await;
            }
        }
        let sent = if req.body == RequestBody::None {
            match self
                .ctx
                .origin
                .send_bodyless(call.origin, &req, self.is_head)
                .await
            {
                Ok((up, resp)) => {
                    self.outcome.origin_first_byte();
                    (up, resp, consumed)
                }
                Err(e) => return self.fail(conn, &origin_error(&e), consumed).await,
            }
        } else {
            match self.upload(conn, call.head, call.origin, &req, body).await {
                Ok(sent) => sent,
                Err(keep) => return keep,
            }
        };
        let (up, resp, consumed) = sent;
        self.azure_reply(conn, &bucket, key.unwrap_or(""), up, resp, reply, consumed)
            .await
    }

    /// A suffix range (`bytes=-N`), which the Blob service does not take, becomes the absolute
    /// range of the blob's last N bytes under `If-Match` of the ETag the HEAD saw.
    async fn resolve_suffix(
        &self,
        origin: &Origin,
        req: &mut OriginRequest,
    ) -> Result<(), S3Error> {
        let Some(pos) = req.headers.iter().position(|(k, _)| k == "range") else {
            return Ok(());
        };
        let ParsedRange::Single(RangeSpec::Suffix { len }) =
            parse_range(Some(req.headers[pos].1.as_bytes()))
        else {
            return Ok(());
        };
        let probe = OriginRequest {
            method: "HEAD".to_owned(),
            path_and_query: req.path_and_query.clone(),
            headers: Vec::new(),
            body: RequestBody::None,
        };
        let (mut up, resp) = self
            .ctx
            .origin
            .send_bodyless(origin, &probe, true)
            .await
            .map_err(|e| origin_error(&e))?;
        let _ = up.next_body().await;
        up.finish(&self.ctx.origin);
        if resp.status() != 200 {
            // The GET meets the same answer (missing blob, refused key) and relays it.
            return Ok(());
        }
        let size: u64 = resp
            .header_str("content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if size == 0 || len == 0 {
            return Err(S3Error::invalid_range());
        }
        req.headers[pos].1 = format!("bytes={}-", size.saturating_sub(len));
        if let (Some(etag), false) = (
            resp.header_str("etag"),
            req.headers.iter().any(|(k, _)| k == "if-match"),
        ) {
            req.headers.push(("if-match".to_owned(), etag.to_owned()));
        }
        Ok(())
    }

    /// CompleteMultipartUpload: read the client's part list (bounded), commit the blocks.
    async fn complete(
        &self,
        conn: &mut ClientConn,
        call: &Call<'_>,
        bucket: &Bucket<'_>,
        key: &str,
        upload: &blocks::UploadId,
        mut body: ClientBody,
    ) -> bool {
        if call.head.expects_continue()
            && conn
                .write_all(Bytes::from_static(respond::CONTINUE))
                .await
                .is_err()
        {
            return false;
        }
        let mut xml = BytesMut::new();
        loop {
            match body.next(conn, self.settings).await {
                Ok(Some(piece)) => {
                    if xml.len() + piece.len() > blocks::MAX_COMPLETE_BODY {
                        let e = S3Error::new(
                            "MaxMessageLengthExceeded",
                            400,
                            "Your request was too big.",
                        );
                        return self.fail(conn, &e, false).await;
                    }
                    xml.extend_from_slice(&piece);
                }
                Ok(None) => break,
                Err(e) => return self.body_failed(conn, e).await,
            }
        }
        let parts = match blocks::completed_parts(&xml) {
            Ok(parts) => parts,
            Err(e) => return self.fail(conn, &e, true).await,
        };
        let (req, list) = request::complete_request(bucket.container, key, upload, &parts);
        let client = &self.ctx.origin;
        let sent = async {
            let mut up = client.start(call.origin, &req, false).await?;
            up.write_body(Bytes::from(list)).await?;
            up.finish_body().await?;
            let resp = up.read_response_head(client.limits(), false).await;
            if resp.is_err() {
                client.count_error();
            }
            resp.map(|resp| (up, resp))
        }
        .await;
        match sent {
            Ok((up, resp)) => {
                self.outcome.origin_first_byte();
                self.azure_reply(conn, bucket, key, up, resp, Reply::Complete, true)
                    .await
            }
            Err(e) => self.fail(conn, &origin_error(&e), true).await,
        }
    }

    /// Turn the Blob answer into S3's.
    #[allow(clippy::too_many_arguments)] // One call site; each argument is a distinct part.
    async fn azure_reply(
        &self,
        conn: &mut ClientConn,
        bucket: &Bucket<'_>,
        key: &str,
        mut up: OriginExchange,
        resp: ResponseHead,
        reply: Reply,
        consumed: bool,
    ) -> bool {
        let status = resp.status();
        let ok = (200..300).contains(&status);
        let code = resp.header_str("x-ms-error-code");
        match reply {
            Reply::Stream if ok || status == 304 => {
                let translated = response::translate_head(&resp, status, self.is_head);
                return self.relay_response(conn, up, translated, consumed).await;
            }
            Reply::Delete if ok || code == Some("BlobNotFound") => {
                self.settle(up).await;
                return self.answer(conn, 204, &[], Bytes::new(), consumed).await;
            }
            Reply::Put | Reply::Part { .. } if ok => {
                // A blob's ETag is the origin's; a part's is derived from its MD5 and block id.
                let etag = match &reply {
                    Reply::Part { block_id } => {
                        blocks::part_etag(resp.header_str("content-md5"), block_id)
                    }
                    _ => resp.header_str("etag").unwrap_or("").to_owned(),
                };
                self.settle(up).await;
                return self
                    .answer(
                        conn,
                        200,
                        &[(b"etag", etag.as_bytes())],
                        Bytes::new(),
                        consumed,
                    )
                    .await;
            }
            Reply::Complete if ok => {
                let etag = resp.header_str("etag").unwrap_or("").to_owned();
                self.settle(up).await;
                let xml = request::complete_result(bucket.client, key, &etag);
                return self
                    .answer(conn, 200, &[], Bytes::from(xml), consumed)
                    .await;
            }
            Reply::List(q) if ok => {
                let xml = match self.read_all(&mut up, list::MAX_LIST_BODY).await {
                    Ok(body) => list::translate(&q, &body),
                    Err(e) => Err(e),
                };
                return match xml {
                    Ok(xml) => {
                        up.finish(&self.ctx.origin);
                        self.answer(conn, 200, &[], Bytes::from(xml), consumed)
                            .await
                    }
                    Err(e) => self.fail(conn, &e, consumed).await,
                };
            }
            _ => {}
        }
        // An error: S3's code for the Blob service's; the origin connection is dropped with
        // its consumed body.
        tracing::debug!(status, code, "Azure Blob service refused a request");
        let err = response::s3_error(status, code);
        self.fail(conn, &err, consumed).await
    }

    /// Read a Blob answer's body whole, at most `max` bytes.
    async fn read_all(&self, up: &mut OriginExchange, max: usize) -> Result<Bytes, S3Error> {
        let mut out = BytesMut::new();
        loop {
            match up.next_body().await {
                Ok(Some(piece)) => {
                    if out.len() + piece.len() > max {
                        return Err(S3Error::bad_gateway(
                            "the Azure Blob service answer is too large",
                        ));
                    }
                    out.extend_from_slice(&piece);
                }
                Ok(None) => return Ok(out.freeze()),
                Err(e) => {
                    self.ctx.origin.count_error();
                    return Err(origin_error(&e.into_error(crate::Side::Origin)));
                }
            }
        }
    }

    /// Read an answer's (small or empty) body to its end so its connection can be reused.
    async fn settle(&self, mut up: OriginExchange) {
        if self.read_all(&mut up, 64 * 1024).await.is_ok() {
            up.finish(&self.ctx.origin);
        }
    }

    /// Answer with `status`, `headers` and a (possibly empty) XML `body`, after the fleet has
    /// forgotten what a successful write changed.
    async fn answer(
        &self,
        conn: &mut ClientConn,
        status: u16,
        headers: &[(&[u8], &[u8])],
        body: Bytes,
        consumed: bool,
    ) -> bool {
        if let (Some(w), 200..=299) = (&self.writes, status) {
            invalidate_after_write(self.ctx, w).await;
        }
        let keep = self.client_keep_alive && consumed;
        let date = http_date();
        let len = body.len().to_string();
        let mut h: Vec<(&[u8], &[u8])> = vec![
            (b"x-amz-request-id", self.request_id.as_bytes()),
            (b"date", &date),
            (b"server", b"rangecache"),
        ];
        if !body.is_empty() {
            h.push((b"content-type", b"application/xml"));
        }
        h.extend_from_slice(headers);
        if status != 204 {
            h.push((b"content-length", len.as_bytes()));
        }
        if !keep {
            h.push((b"connection", b"close"));
        }
        let mut head = BytesMut::with_capacity(256);
        encode_response_head(&mut head, status, h);
        let metrics = self.ctx.metrics();
        super::outcome::RequestMetrics::new(metrics, self.outcome).record_request(self.op, status);
        let mut parts = vec![head.freeze()];
        if !self.is_head && !body.is_empty() {
            parts.push(body);
        }
        let sent = respond::send(conn, parts, self.settings.send_timeout, metrics).await;
        sent && keep
    }
}
