//! The read pipeline's view of a real origin: one object, fetched with this worker's origin
//! client (pooled connections, SigV4 re-signing, its own framing).

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use super::{OriginClient, OriginExchange, OriginRequest, RequestBody};
use crate::cache::range::RangeSpec;
use crate::cache::read::{FetchBody, OriginFetch};
use crate::cache::ObjectId;
use crate::error::{Error, Side};
use crate::http::ResponseHead;
use crate::s3::uri;
use crate::snapshot::Origin;

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

/// A GET response body from a real origin.
pub struct ExchangeBody {
    exchange: OriginExchange,
    client: Rc<OriginClient>,
}

impl OriginFetch for ObjectFetch {
    type Body = ExchangeBody;

    async fn head(&self) -> Result<ResponseHead, Error> {
        let checksums = vec![("x-amz-checksum-mode".to_owned(), "ENABLED".to_owned())];
        let (mut up, resp) = self.send("HEAD", checksums).await?;
        // A HEAD response has no body: reading its end only settles the connection for reuse.
        let _ = up.next_body().await;
        up.finish(&self.client);
        Ok(resp)
    }

    async fn get(
        &self,
        range: RangeSpec,
        if_match: Option<&str>,
    ) -> Result<(ResponseHead, ExchangeBody), Error> {
        let mut headers = vec![("range".to_owned(), range_header(range))];
        if let Some(etag) = if_match {
            headers.push(("if-match".to_owned(), etag.to_owned()));
        }
        let (exchange, resp) = self.send("GET", headers).await?;
        Ok((
            resp,
            ExchangeBody {
                exchange,
                client: self.client.clone(),
            },
        ))
    }
}

impl FetchBody for ExchangeBody {
    async fn next(&mut self) -> Result<Option<Bytes>, Error> {
        self.exchange.next_body().await.map_err(|e| {
            self.client.count_error();
            e.into_error(Side::Origin)
        })
    }

    fn finish(self) {
        self.exchange.finish(&self.client);
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
