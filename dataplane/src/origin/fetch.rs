//! The read pipeline's view of a real origin: one object, fetched with this worker's origin
//! client (pooled connections, SigV4 re-signing, its own framing).

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use monoio::buf::{IoBuf, IoBufMut};

use super::{OriginClient, OriginExchange, OriginRequest, RequestBody};
use crate::cache::range::RangeSpec;
use crate::cache::read::{FetchBody, OriginFetch};
use crate::cache::ObjectId;
use crate::error::{Error, Side};
use crate::http::ResponseHead;
use crate::net::BodyError;
use crate::s3::uri;
use crate::snapshot::{Backend, Origin};

/// One object at one origin, for the read pipeline.
pub struct ObjectFetch {
    client: Rc<OriginClient>,
    origin: Arc<Origin>,
    object: ObjectId,
    /// Encoded origin path of the object (`/bucket/key`), made on the first request: a cache
    /// hit makes none.
    path: OnceCell<String>,
}

impl ObjectFetch {
    /// `object` (its bucket as the origin names it) at `origin`, fetched by `client`.
    pub fn new(client: Rc<OriginClient>, origin: Arc<Origin>, object: ObjectId) -> Self {
        Self {
            client,
            origin,
            object,
            path: OnceCell::new(),
        }
    }

    async fn send(
        &self,
        method: &str,
        headers: Vec<(String, String)>,
    ) -> Result<(OriginExchange, ResponseHead), Error> {
        let req = OriginRequest {
            method: method.to_owned(),
            path_and_query: self
                .path
                .get_or_init(|| uri::origin_path(self.object.bucket(), Some(self.object.key())))
                .clone(),
            headers,
            body: RequestBody::None,
        };
        self.client
            .send_bodyless(&self.origin, &req, method == "HEAD")
            .await
    }
}

impl ObjectFetch {
    /// The origin's answer as S3 would give it (Azure heads are translated).
    fn as_s3(&self, head: &ResponseHead, request_was_head: bool) -> ResponseHead {
        match self.origin.backend {
            Backend::Azure(_) => {
                super::azure::response::translate_head(head, head.status(), request_was_head)
            }
            _ => head.clone(),
        }
    }
}

/// A GET response body from a real origin.
pub struct ExchangeBody {
    exchange: Option<OriginExchange>,
    client: Rc<OriginClient>,
}

impl ExchangeBody {
    /// A body with nothing in it, for an answer that was a HEAD.
    fn none(client: &Rc<OriginClient>) -> Self {
        Self {
            exchange: None,
            client: client.clone(),
        }
    }
}

impl OriginFetch for ObjectFetch {
    type Body = ExchangeBody;

    async fn head(&self) -> Result<ResponseHead, Error> {
        let checksums = match self.origin.backend {
            // The Blob service has no S3 checksums to ask for.
            Backend::Azure(_) => Vec::new(),
            _ => vec![("x-amz-checksum-mode".to_owned(), "ENABLED".to_owned())],
        };
        let (mut up, resp) = self.send("HEAD", checksums).await?;
        // A HEAD response has no body: reading its end only settles the connection for reuse.
        let _ = up.next_body().await;
        up.finish(&self.client);
        Ok(self.as_s3(&resp, true))
    }

    /// A GET with `Range: range`. The Blob service has no suffix ranges: on Azure a suffix
    /// costs a HEAD (size and ETag) and then a GET of the absolute range under `If-Match`
    /// (a change in between answers 412, which the pipeline re-plans).
    async fn get(
        &self,
        range: RangeSpec,
        if_match: Option<&str>,
    ) -> Result<(ResponseHead, ExchangeBody), Error> {
        let (range, if_match) = match (&self.origin.backend, range) {
            (Backend::Azure(_), RangeSpec::Suffix { len }) => {
                let head = self.head().await?;
                let size = head
                    .header_str("content-length")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let etag = head.header_str("etag").map(str::to_owned);
                match (head.status(), size, etag) {
                    (200, Some(size), Some(etag)) if size > 0 => (
                        RangeSpec::From {
                            first: size.saturating_sub(len),
                        },
                        Some(if_match.map_or(etag, str::to_owned)),
                    ),
                    // Missing, empty or refused: the pipeline falls back to its own HEAD.
                    _ => return Ok((head, ExchangeBody::none(&self.client))),
                }
            }
            (_, range) => (range, if_match.map(str::to_owned)),
        };
        let mut headers = vec![("range".to_owned(), range_header(range))];
        if let Some(etag) = if_match {
            headers.push(("if-match".to_owned(), etag));
        }
        let (exchange, resp) = self.send("GET", headers).await?;
        Ok((
            self.as_s3(&resp, false),
            ExchangeBody {
                exchange: Some(exchange),
                client: self.client.clone(),
            },
        ))
    }
}

/// A body read that failed: counted as an origin error, and the data plane's error for it.
fn body_failed(client: &OriginClient, e: BodyError) -> Error {
    client.count_error();
    e.into_error(Side::Origin)
}

impl FetchBody for ExchangeBody {
    async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        let Some(exchange) = &mut self.exchange else {
            return Ok(None);
        };
        let res = exchange.next_body().await;
        res.map_err(|e| body_failed(&self.client, e))
    }

    fn reads_into(&self) -> bool {
        self.exchange
            .as_ref()
            .is_some_and(OriginExchange::reads_body_into)
    }

    async fn read_into<T: IoBuf + IoBufMut>(
        &mut self,
        dst: T,
    ) -> (Result<usize, Error>, Option<T>) {
        let Some(exchange) = &mut self.exchange else {
            return (Ok(0), Some(dst));
        };
        let (res, dst) = exchange.read_body_into(dst).await;
        (res.map_err(|e| body_failed(&self.client, e)), dst)
    }

    fn finish(self) {
        if let Some(exchange) = self.exchange {
            exchange.finish(&self.client);
        }
    }
}

/// The `Range` header value for `range`.
fn range_header(range: RangeSpec) -> String {
    match range {
        RangeSpec::FromTo { first, last } => format!("bytes={first}-{last}"),
        RangeSpec::From { first } => format!("bytes={first}-"),
        RangeSpec::Suffix { len } => format!("bytes=-{len}"),
    }
}
