//! Sending one request to an origin and reading its response, over pooled connections.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use monoio::buf::{IoBuf, IoBufMut};

use super::{sign_request, OriginStream, Pool};
use crate::error::{Error, ErrorKind, Side};
use crate::http::{encode_request_head, parse_response, Limits, ResponseFraming, ResponseHead};
use crate::net::{BodyError, BodyReader, BufStream};
use crate::snapshot::{Backend, Origin, Scheme};
use crate::{Metrics, WorkerMetrics};

/// How the upstream request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestBody {
    /// No body.
    None,
    /// Exactly this many bytes (sent with `Content-Length`).
    Length(u64),
    /// Length unknown: sent with `Transfer-Encoding: chunked`.
    Chunked,
}

/// A request to send upstream, before signing.
#[derive(Debug, Clone)]
pub struct OriginRequest {
    /// HTTP method.
    pub method: String,
    /// Encoded path and query (`/bucket/key?partNumber=1`), in the form S3 signs.
    pub path_and_query: String,
    /// End-to-end headers to forward; all of them are signed. Must not contain `host`,
    /// framing headers, or any client authentication header.
    pub headers: Vec<(String, String)>,
    /// Body framing.
    pub body: RequestBody,
}

/// The origin client of one worker: its connection pool, response-parsing limits, and the
/// worker's metrics block, where it counts every request it sends (and retries, and
/// failures): origin accounting happens here and nowhere else.
pub struct OriginClient {
    pool: Pool,
    limits: Limits,
    metrics: Arc<Metrics>,
    worker: usize,
}

/// Where an exchange records its origin first-byte time: a worker's metrics block.
#[derive(Clone)]
struct Timing {
    metrics: Arc<Metrics>,
    worker: usize,
}

/// One request/response exchange on one origin connection.
pub struct OriginExchange {
    conn: BufStream<OriginStream>,
    key: String,
    reused: bool,
    chunked_request: bool,
    body: Option<BodyReader>,
    keep_alive: bool,
    max_idle: usize,
    response_timeout: Duration,
    /// When the request head was handed to the connection.
    sent: Instant,
    timing: Option<Timing>,
}

fn pool_key(origin: &Origin) -> String {
    let scheme = match origin.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    format!("{scheme}://{}:{}", origin.host, origin.port)
}

impl OriginClient {
    /// A client with an empty pool, counting into `metrics.worker(worker)`.
    pub fn new(metrics: Arc<Metrics>, worker: usize) -> Self {
        Self {
            pool: Pool::new(),
            limits: Limits {
                max_head_bytes: 256 * 1024,
                max_headers: 256,
                max_uri_bytes: 16 * 1024,
            },
            metrics,
            worker,
        }
    }

    fn metrics(&self) -> &WorkerMetrics {
        self.metrics.worker(self.worker)
    }

    /// Count a failed origin request (the caller tells: a response body that broke off is
    /// read outside this client).
    pub fn count_error(&self) {
        WorkerMetrics::add(&self.metrics().origin_errors, 1);
    }

    /// Idle pooled connections (for tests and metrics).
    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }

    /// Sign `req` for `origin` and write its head on a pooled (unless `fresh`) or new
    /// connection. The caller then writes the body (if any) and reads the response.
    pub async fn start(
        &self,
        origin: &Origin,
        req: &OriginRequest,
        fresh: bool,
    ) -> Result<OriginExchange, Error> {
        WorkerMetrics::add(&self.metrics().origin_requests, 1);
        let started = async {
            let mut ex = self.connect(origin, req, fresh).await?;
            ex.write_head(origin, req).await?;
            Ok(ex)
        }
        .await;
        if started.is_err() {
            self.count_error();
        }
        started
    }

    async fn connect(
        &self,
        origin: &Origin,
        req: &OriginRequest,
        fresh: bool,
    ) -> Result<OriginExchange, Error> {
        let key = pool_key(origin);
        let pooled = if fresh {
            None
        } else {
            self.pool.take(&key, origin.pool_idle_timeout)
        };
        let reused = pooled.is_some();
        let conn = match pooled {
            Some(conn) => conn,
            None => BufStream::new(OriginStream::connect(origin).await?),
        };
        Ok(OriginExchange {
            conn,
            key,
            reused,
            chunked_request: req.body == RequestBody::Chunked,
            body: None,
            keep_alive: false,
            max_idle: origin.pool_max_idle,
            response_timeout: origin.response_timeout,
            sent: Instant::now(),
            timing: Some(Timing {
                metrics: self.metrics.clone(),
                worker: self.worker,
            }),
        })
    }

    /// Send a request without a body and read the response head. A failure on a reused pooled
    /// connection before any response byte arrived is retried once on a new connection (the
    /// origin may have closed the idle connection).
    pub async fn send_bodyless(
        &self,
        origin: &Origin,
        req: &OriginRequest,
        is_head: bool,
    ) -> Result<(OriginExchange, ResponseHead), Error> {
        let m = self.metrics();
        let mut fresh = false;
        loop {
            WorkerMetrics::add(&m.origin_requests, 1);
            let mut ex = match self.connect(origin, req, fresh).await {
                Ok(ex) => ex,
                Err(e) => {
                    self.count_error();
                    return Err(e);
                }
            };
            let result = async {
                ex.write_head(origin, req).await?;
                ex.read_response_head(&self.limits, is_head).await
            }
            .await;
            match result {
                Ok(head) => return Ok((ex, head)),
                Err(e) if ex.reused && !fresh && ex.conn_received_nothing() && !e.is_timeout() => {
                    fresh = true;
                    WorkerMetrics::add(&m.origin_retries, 1);
                }
                Err(e) => {
                    self.count_error();
                    return Err(e);
                }
            }
        }
    }

    /// Response-parsing limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn release(&self, ex: OriginExchange) {
        let max = ex.max_idle;
        self.pool.put(&ex.key, ex.conn, max);
    }
}

fn build_head(origin: &Origin, req: &OriginRequest) -> Result<Bytes, Error> {
    let authority = origin.authority();
    let mut headers: Vec<(String, String)> = Vec::with_capacity(req.headers.len() + 6);
    headers.push(("host".to_owned(), authority.clone()));
    headers.extend(req.headers.iter().cloned());
    if let RequestBody::Length(n) = req.body {
        // S3 wants Content-Length on every upload; it is signed like the other headers.
        headers.push(("content-length".to_owned(), n.to_string()));
    }
    if origin.backend == Backend::Gcs {
        super::gcs::adapt_headers(&mut headers);
    }
    if let Some(source) = &origin.credentials {
        let scheme = match origin.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let url = format!("{scheme}://{authority}{}", req.path_and_query);
        let now = SystemTime::now();
        source
            .with_current(now, |creds| {
                sign_request(
                    &req.method,
                    &url,
                    &mut headers,
                    req.body != RequestBody::None,
                    creds,
                    &origin.region,
                    now,
                )
            })
            .map_err(|e| {
                Error::new(
                    ErrorKind::NoCredentials,
                    Side::Internal,
                    "sign origin request",
                )
                .with_cause(e)
            })?
            .map_err(|e| {
                Error::new(ErrorKind::Signing, Side::Internal, "sign origin request").with_cause(e)
            })?;
    }
    // An Azure request is signed (or carries its SAS) under its full path, endpoint prefix
    // included.
    let azure_target = match &origin.backend {
        Backend::Azure(az) => Some(az.authorize(
            &req.method,
            &req.path_and_query,
            &mut headers,
            SystemTime::now(),
        )),
        _ => None,
    };
    if req.body == RequestBody::Chunked {
        headers.push(("transfer-encoding".to_owned(), "chunked".to_owned()));
    }
    let mut out = BytesMut::with_capacity(512 + req.path_and_query.len());
    encode_request_head(
        &mut out,
        &req.method,
        azure_target.as_deref().unwrap_or(&req.path_and_query),
        headers.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
    );
    Ok(out.freeze())
}

impl OriginExchange {
    /// True when this exchange runs on a connection taken from the pool.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Time since the request head was sent (for a fill read to its end: the whole fill).
    pub fn since_sent(&self) -> Duration {
        self.sent.elapsed()
    }

    async fn write_head(&mut self, origin: &Origin, req: &OriginRequest) -> Result<(), Error> {
        let head = build_head(origin, req)?;
        self.sent = Instant::now();
        self.conn
            .write_all(head)
            .await
            .map_err(|e| Error::io(Side::Origin, "write request head to origin", e))
    }

    fn conn_received_nothing(&mut self) -> bool {
        self.conn.buffer().is_empty()
    }

    /// Write one piece of the request body (framed as a chunk when the length is unknown).
    pub async fn write_body(&mut self, piece: Bytes) -> Result<(), Error> {
        if piece.is_empty() {
            return Ok(());
        }
        let res = if self.chunked_request {
            let size = crate::http::chunk_size_line(piece.len());
            self.conn
                .write_vectored(vec![size, piece, Bytes::from_static(crate::http::CRLF)])
                .await
                .map(|_| ())
        } else {
            self.conn.write_all(piece).await
        };
        res.map_err(|e| Error::io(Side::Origin, "write request body to origin", e))
    }

    /// End the request body (the last chunk for chunked bodies).
    pub async fn finish_body(&mut self) -> Result<(), Error> {
        if self.chunked_request {
            self.conn
                .write_all(Bytes::from_static(crate::http::LAST_CHUNK))
                .await
                .map_err(|e| Error::io(Side::Origin, "write request body to origin", e))?;
        }
        // The origin's first byte is timed from the request's end.
        self.sent = Instant::now();
        Ok(())
    }

    /// Read the response head (skipping any 1xx interim responses) within the origin's response
    /// timeout, and prepare the body reader.
    pub async fn read_response_head(
        &mut self,
        limits: &Limits,
        is_head: bool,
    ) -> Result<ResponseHead, Error> {
        let deadline = self.response_timeout;
        let read = async {
            loop {
                match parse_response(self.conn.buffer(), limits, is_head) {
                    Ok(Some(head)) if head.status() < 200 => continue,
                    Ok(Some(head)) => return Ok(head),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(Error::new(
                            ErrorKind::Protocol,
                            Side::Origin,
                            "malformed origin response head",
                        )
                        .with_cause(e))
                    }
                }
                match self.conn.fill().await {
                    Ok(0) => {
                        return Err(Error::new(
                            ErrorKind::Closed,
                            Side::Origin,
                            "origin closed the connection before responding",
                        ))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(Error::io(Side::Origin, "read origin response", e)),
                }
            }
        };
        let head = match monoio::time::timeout(deadline, read).await {
            Ok(res) => res?,
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    Side::Origin,
                    "origin response timed out",
                ))
            }
        };
        self.body = Some(match head.framing() {
            ResponseFraming::None => BodyReader::empty(),
            ResponseFraming::Length(n) => BodyReader::length(n),
            ResponseFraming::Chunked => BodyReader::chunked(limits),
            ResponseFraming::UntilClose => BodyReader::until_close(),
        });
        self.keep_alive =
            head.keep_alive() && !matches!(head.framing(), ResponseFraming::UntilClose);
        if let Some(t) = &self.timing {
            let m = t.metrics.worker(t.worker);
            m.ops.observe_origin_first_byte(self.sent.elapsed());
        }
        Ok(head)
    }

    /// The next piece of the response body, `None` at its end.
    pub async fn next_body(&mut self) -> Result<Option<Bytes>, BodyError> {
        let timeout = self.response_timeout;
        match &mut self.body {
            Some(body) => body.next(&mut self.conn, timeout).await,
            None => Ok(None),
        }
    }

    /// True when the body can be read straight into the caller's memory (see
    /// [`Exchange::read_body_into`]).
    pub fn reads_body_into(&self) -> bool {
        self.body.as_ref().is_some_and(BodyReader::reads_into)
    }

    /// Read the body's next bytes straight into `dst`, as [`BodyReader::read_into`] does.
    pub async fn read_body_into<T: IoBuf + IoBufMut>(
        &mut self,
        dst: T,
    ) -> (Result<usize, BodyError>, Option<T>) {
        let timeout = self.response_timeout;
        match &mut self.body {
            Some(body) => body.read_into(&mut self.conn, dst, timeout).await,
            None => (Ok(0), Some(dst)),
        }
    }

    /// Hand the connection back to the pool if the response was read to its end and the origin
    /// allows keep-alive; otherwise close it.
    pub fn finish(self, client: &OriginClient) {
        let complete = self.body.as_ref().is_some_and(BodyReader::is_done);
        if complete && self.keep_alive {
            client.release(self);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::credentials::OriginCredentials;
    use crate::origin::azure::{AzureAuth, AzureOrigin};
    use crate::Credentials;

    fn origin(backend: Backend, credentials: Option<Credentials>, region: &str) -> Origin {
        Origin {
            name: "b".into(),
            scheme: Scheme::Https,
            host: "storage.example".into(),
            port: 443,
            addrs: Vec::new(),
            region: region.into(),
            credentials: credentials.map(OriginCredentials::Static),
            tls: None,
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            pool_idle_timeout: Duration::from_secs(1),
            pool_max_idle: 1,
            backend,
        }
    }

    fn head_text(origin: &Origin, req: &OriginRequest) -> String {
        String::from_utf8(build_head(origin, req).unwrap().to_vec()).unwrap()
    }

    /// What rangecache sends to GCS for a cached read's metadata HEAD and for a part upload
    /// with a client's checksums: no S3 checksum headers, a CRC32C as `x-goog-hash`, SigV4 in
    /// region `auto` over exactly the headers that remain.
    #[test]
    fn gcs_requests_carry_no_s3_checksums() {
        let creds = Credentials {
            access_key_id: "GOOG1EXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
        };
        let gcs = origin(Backend::Gcs, Some(creds), "auto");
        let req = OriginRequest {
            method: "PUT".into(),
            path_and_query: "/lake/a.parquet?partNumber=1&uploadId=U".into(),
            headers: vec![
                ("x-amz-checksum-mode".into(), "ENABLED".into()),
                ("x-amz-sdk-checksum-algorithm".into(), "CRC32C".into()),
                ("x-amz-checksum-crc32c".into(), "yZRlqg==".into()),
                ("x-amz-checksum-crc32".into(), "AAAAAA==".into()),
            ],
            body: RequestBody::Length(9),
        };
        let text = head_text(&gcs, &req);
        assert!(
            text.starts_with("PUT /lake/a.parquet?partNumber=1&uploadId=U HTTP/1.1\r\n"),
            "{text}"
        );
        assert!(
            !text.to_ascii_lowercase().contains("x-amz-checksum"),
            "{text}"
        );
        assert!(!text.contains("x-amz-sdk-checksum-algorithm"), "{text}");
        assert!(text.contains("x-goog-hash: crc32c=yZRlqg==\r\n"), "{text}");
        assert!(
            text.contains("x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n"),
            "{text}"
        );
        assert!(
            text.contains("/auto/s3/aws4_request, SignedHeaders=content-length;host;x-amz-content-sha256;x-amz-date;x-goog-hash, Signature="),
            "{text}"
        );
        // The same request to an S3 origin keeps every checksum header.
        let s3 = origin(
            Backend::S3,
            gcs.credentials
                .as_ref()
                .and_then(|c| c.as_static().cloned()),
            "us-east-1",
        );
        assert!(head_text(&s3, &req).contains("x-amz-checksum-crc32: AAAAAA==\r\n"));
    }

    /// An Azure request goes out under the endpoint's path prefix, dated and versioned, with a
    /// Shared Key signature and no SigV4 header.
    #[test]
    fn azure_requests_are_shared_key_signed_under_the_prefix() {
        let az = Arc::new(AzureOrigin {
            account: "devstoreaccount1".into(),
            path_prefix: "/devstoreaccount1".into(),
            auth: AzureAuth::SharedKey(b"key".to_vec()),
        });
        let o = origin(Backend::Azure(az), None, "azure");
        let req = OriginRequest {
            method: "GET".into(),
            path_and_query: "/data/k".into(),
            headers: vec![("range".into(), "bytes=0-9".into())],
            body: RequestBody::None,
        };
        let text = head_text(&o, &req);
        assert!(
            text.starts_with("GET /devstoreaccount1/data/k HTTP/1.1\r\nhost: storage.example\r\n"),
            "{text}"
        );
        assert!(text.contains("x-ms-version: 2021-12-02\r\n"), "{text}");
        assert!(
            text.contains("authorization: SharedKey devstoreaccount1:"),
            "{text}"
        );
        assert!(!text.contains("x-amz-"), "{text}");
    }
}
