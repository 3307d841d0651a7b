//! A one-shot HTTP/1.1 GET for JWKS documents: plain TCP or rustls, hyper's client
//! connection, a size cap and one overall deadline. No pooling: a JWKS is fetched every few
//! minutes at most.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Time a whole fetch (connect, TLS, request, body) may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest document accepted.
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL has no host (validation prevents this).
    #[error("the URL has no host")]
    NoHost,
    /// TCP connect (or name resolution) failed.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The TLS handshake failed.
    #[error("TLS handshake failed: {0}")]
    Tls(#[source] std::io::Error),
    /// The host is not a valid TLS server name.
    #[error("{0:?} is not a valid TLS server name")]
    ServerName(String),
    /// HTTP-level failure.
    #[error("HTTP error: {0}")]
    Http(#[source] hyper::Error),
    /// The request could not be built.
    #[error("cannot build the request: {0}")]
    Request(#[source] http::Error),
    /// A status other than 200.
    #[error("the server answered {0}")]
    Status(StatusCode),
    /// The body was too large or broke off.
    #[error("cannot read the body: {0}")]
    Body(String),
    /// [`FETCH_TIMEOUT`] passed.
    #[error("no answer within {}s", FETCH_TIMEOUT.as_secs())]
    Timeout,
}

/// GET `uri` (http, or https with `tls`) and return the body of a 200 answer.
pub async fn get(uri: &Uri, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Bytes, FetchError> {
    tokio::time::timeout(FETCH_TIMEOUT, get_now(uri, tls))
        .await
        .map_err(|_| FetchError::Timeout)?
}

async fn get_now(uri: &Uri, tls: Option<&Arc<rustls::ClientConfig>>) -> Result<Bytes, FetchError> {
    let host = uri
        .host()
        .ok_or(FetchError::NoHost)?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(FetchError::Connect)?;
    let _ = tcp.set_nodelay(true);
    match tls {
        Some(config) => {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|_| FetchError::ServerName(host.to_owned()))?;
            let stream = tokio_rustls::TlsConnector::from(config.clone())
                .connect(name, tcp)
                .await
                .map_err(FetchError::Tls)?;
            request(stream, uri).await
        }
        None => request(tcp, uri).await,
    }
}

async fn request<S>(stream: S, uri: &Uri) -> Result<Bytes, FetchError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(FetchError::Http)?;
    // The connection task ends when the sender is dropped or the server closes.
    let driver = tokio::spawn(conn);
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let authority = uri.authority().map_or("", |a| a.as_str());
    let req = Request::get(target)
        .header(header::HOST, authority)
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, "rangecache")
        .body(Empty::<Bytes>::new())
        .map_err(FetchError::Request)?;
    let result = async {
        let resp = sender.send_request(req).await.map_err(FetchError::Http)?;
        if resp.status() != StatusCode::OK {
            return Err(FetchError::Status(resp.status()));
        }
        Limited::new(resp.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .map_err(|e| FetchError::Body(e.to_string()))
    }
    .await;
    drop(sender);
    driver.abort();
    result
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A tiny HTTP server answering every request with `status` and the current `body()`;
    /// counts the requests it served.
    pub(crate) struct TestServer {
        /// `http://127.0.0.1:<port>`.
        pub base: String,
        /// Requests served.
        pub hits: Arc<AtomicUsize>,
    }

    impl TestServer {
        pub(crate) async fn start(
            status: u16,
            body: impl Fn() -> String + Send + Sync + 'static,
        ) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let hits = Arc::new(AtomicUsize::new(0));
            let counter = hits.clone();
            let body = Arc::new(body);
            tokio::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    let mut buf = vec![0; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let text = body();
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
                        text.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                }
            });
            TestServer { base, hits }
        }

        pub(crate) fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn fetches_a_document() {
        let server = TestServer::start(200, || "{\"keys\": []}".into()).await;
        let uri: Uri = format!("{}/jwks.json", server.base).parse().unwrap();
        assert_eq!(&get(&uri, None).await.unwrap()[..], b"{\"keys\": []}");
        assert_eq!(server.hits(), 1);

        let missing = TestServer::start(404, String::new).await;
        let uri: Uri = format!("{}/x", missing.base).parse().unwrap();
        let err = get(&uri, None).await.unwrap_err();
        assert!(
            matches!(err, FetchError::Status(StatusCode::NOT_FOUND)),
            "{err}"
        );

        let big = TestServer::start(200, || "x".repeat(MAX_BODY_BYTES + 1)).await;
        let uri: Uri = format!("{}/x", big.base).parse().unwrap();
        assert!(matches!(get(&uri, None).await, Err(FetchError::Body(_))));
    }

    #[tokio::test]
    async fn connection_failures_are_errors() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let uri: Uri = format!("http://{addr}/jwks").parse().unwrap();
        assert!(matches!(get(&uri, None).await, Err(FetchError::Connect(_))));
    }
}
