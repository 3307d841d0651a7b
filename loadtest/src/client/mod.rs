//! The load generator's HTTP/1.1 client: one keep-alive connection per [`Client`], request
//! heads written into one reused buffer, response bodies checked byte for byte against
//! [`crate::content`] as they stream through the read buffer (nothing is collected).

pub mod sign;

use std::io;
use std::io::Write as _;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use httparse::Status;
use tokio::net::TcpStream;

use crate::content;
use crate::http1::BufConn;
use crate::parquet_file::ParquetObject;
use crate::range::ByteRange;
pub use sign::Signer;

/// Read buffer per connection: large reads keep syscalls per byte low.
const READ_BUF: usize = 256 * 1024;

/// Where requests go and how they are authenticated.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Socket address to connect to.
    pub addr: SocketAddr,
    /// `Host` header value (also what is signed).
    pub host: String,
    /// Signs every request when set; unsigned requests otherwise.
    pub signer: Option<Signer>,
}

/// What a GET must return for it to count as correct.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The object's size.
    pub size: u64,
    /// Content seed to check every byte against; `None` checks only status and lengths.
    pub seed: Option<u64>,
    /// The synthetic Parquet file the object is (its magic and footer replace content).
    pub parquet: Option<Arc<ParquetObject>>,
}

/// Why a response did not match what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mismatch {
    /// A status other than the expected 200/206/416.
    Status(u16),
    /// `Content-Range` missing or not the interval asked for.
    ContentRange,
    /// Body length differs from the interval asked for.
    Length,
    /// Some body bytes differ from the object's content.
    Content,
}

/// The result of one GET.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// HTTP status.
    pub status: u16,
    /// Body bytes received.
    pub body_bytes: u64,
    /// Body bytes that failed verification.
    pub bad_bytes: u64,
    /// The first thing that was wrong, if anything.
    pub mismatch: Option<Mismatch>,
    /// Time from the start of the request to the first body byte (`None`: no body).
    pub first_byte: Option<Duration>,
}

/// A parsed response head.
#[derive(Debug, Default)]
pub struct RespHead {
    /// Status code.
    pub status: u16,
    /// `Content-Length`.
    pub content_length: Option<u64>,
    /// `Content-Range`.
    pub content_range: Option<String>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `Connection: close`.
    pub close: bool,
    /// `ETag`.
    pub etag: Option<String>,
}

/// One keep-alive connection to an [`Endpoint`]; reconnects after an error.
#[derive(Debug)]
pub struct Client {
    endpoint: Rc<Endpoint>,
    conn: Option<BufConn>,
    head: Vec<u8>,
    headers: Vec<(String, String)>,
}

impl Client {
    /// A client for `endpoint`; connects on first use.
    pub fn new(endpoint: Rc<Endpoint>) -> Self {
        Client {
            endpoint,
            conn: None,
            head: Vec::with_capacity(1024),
            headers: Vec::with_capacity(8),
        }
    }

    fn build_head(
        &mut self,
        method: &str,
        path: &str,
        range: Option<ByteRange>,
        body: &[u8],
    ) -> io::Result<()> {
        write_request_head(
            &self.endpoint,
            RequestLine {
                method,
                path,
                range,
            },
            body,
            &mut self.head,
            &mut self.headers,
        )
    }

    async fn connection(&mut self) -> io::Result<&mut BufConn> {
        if self.conn.is_none() {
            let s = TcpStream::connect(self.endpoint.addr).await?;
            s.set_nodelay(true)?;
            self.conn = Some(BufConn::new(s, READ_BUF));
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// Send one request and read the response, handing body slices to `sink`.
    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        range: Option<ByteRange>,
        body: &[u8],
        sink: impl FnMut(&[u8]),
    ) -> io::Result<RespHead> {
        self.build_head(method, path, range, body)?;
        let head = std::mem::take(&mut self.head);
        let result = async {
            let conn = self.connection().await?;
            conn.write_all(&head).await?;
            if !body.is_empty() {
                conn.write_all(body).await?;
            }
            let h = read_response_head(conn).await?;
            let bodiless = method == "HEAD" || h.status == 204 || h.status == 304;
            if !bodiless {
                if h.chunked {
                    conn.read_chunked(sink).await?;
                } else if let Some(len) = h.content_length {
                    conn.read_body(len, sink).await?;
                } else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "response without length",
                    ));
                }
            }
            Ok(h)
        }
        .await;
        self.head = head;
        match &result {
            Ok(h) if !h.close => {}
            _ => self.conn = None,
        }
        result
    }

    /// GET `path` (percent-encoded `/bucket/key`) with an optional range, checking the answer
    /// against `expect`. An `Err` is a transport failure (the connection is dropped).
    pub async fn get(
        &mut self,
        path: &str,
        range: Option<ByteRange>,
        expect: Expect,
    ) -> io::Result<Outcome> {
        let want = match range {
            None => (expect.size > 0)
                .then_some((0, expect.size))
                .or(Some((0, 0))),
            Some(r) => r.resolve(expect.size),
        };
        let start = want.map_or(0, |w| w.0);
        let (mut pos, mut bad) = (start, 0u64);
        let t0 = Instant::now();
        let mut first_byte = None;
        let h = self
            .exchange("GET", path, range, &[], |d| {
                if first_byte.is_none() && !d.is_empty() {
                    first_byte = Some(t0.elapsed());
                }
                if let Some(seed) = expect.seed {
                    bad += match &expect.parquet {
                        Some(p) => p.verify(seed, pos, d),
                        None => content::verify(seed, pos, d),
                    };
                }
                pos += d.len() as u64;
            })
            .await?;
        let received = pos - start;
        let mismatch = match want {
            None if h.status == 416 => None,
            None => Some(Mismatch::Status(h.status)),
            Some((s, e)) => {
                let whole = s == 0 && e == expect.size;
                let cr_ok = h.content_range.as_deref()
                    == Some(format!("bytes {s}-{}/{}", e.saturating_sub(1), expect.size).as_str());
                if !(h.status == 206 || (h.status == 200 && whole)) {
                    Some(Mismatch::Status(h.status))
                } else if h.status == 206 && !cr_ok {
                    Some(Mismatch::ContentRange)
                } else if received != e - s {
                    Some(Mismatch::Length)
                } else if bad > 0 {
                    Some(Mismatch::Content)
                } else {
                    None
                }
            }
        };
        let ok_status = matches!(h.status, 200 | 206);
        Ok(Outcome {
            status: h.status,
            body_bytes: received,
            bad_bytes: if ok_status { bad } else { 0 },
            mismatch,
            first_byte,
        })
    }

    /// HEAD `path`: (status, Content-Length, ETag).
    pub async fn head(&mut self, path: &str) -> io::Result<(u16, Option<u64>, Option<String>)> {
        let h = self.exchange("HEAD", path, None, &[], |_| {}).await?;
        Ok((h.status, h.content_length, h.etag))
    }

    /// PUT `body` at `path`; returns the status.
    pub async fn put(&mut self, path: &str, body: &[u8]) -> io::Result<u16> {
        Ok(self.exchange("PUT", path, None, body, |_| {}).await?.status)
    }

    /// GET `path` and return (status, body) whole; for small answers (errors, listings).
    pub async fn get_raw(
        &mut self,
        path: &str,
        range: Option<ByteRange>,
    ) -> io::Result<(u16, Vec<u8>)> {
        let mut body = Vec::new();
        let h = self
            .exchange("GET", path, range, &[], |d| body.extend_from_slice(d))
            .await?;
        Ok((h.status, body))
    }
}

/// What a request asks for: method, percent-encoded path, optional range.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    /// `GET`, `HEAD`, `PUT`.
    pub method: &'a str,
    /// Percent-encoded `/bucket/key[?query]`.
    pub path: &'a str,
    /// `Range` header.
    pub range: Option<ByteRange>,
}

/// Write the head of a request for `body` to `ep` into `head` (cleared first), signed when
/// the endpoint has a signer; `scratch` is reused for the signed header list.
pub fn write_request_head(
    ep: &Endpoint,
    req: RequestLine<'_>,
    body: &[u8],
    head: &mut Vec<u8>,
    scratch: &mut Vec<(String, String)>,
) -> io::Result<()> {
    let RequestLine {
        method,
        path,
        range,
    } = req;
    head.clear();
    write!(head, "{method} {path} HTTP/1.1\r\nHost: {}\r\n", ep.host)?;
    if let Some(r) = range {
        head.extend_from_slice(b"Range: ");
        r.write_value(head);
        head.extend_from_slice(b"\r\n");
    }
    if let Some(signer) = &ep.signer {
        scratch.clear();
        scratch.push(("host".into(), ep.host.clone()));
        if let Some(r) = range {
            scratch.push(("range".into(), r.value()));
        }
        signer
            .sign_with_body(method, &ep.host, path, scratch, body, SystemTime::now())
            .map_err(io::Error::other)?;
        for (k, v) in scratch.iter() {
            if k != "host" && k != "range" {
                write!(head, "{k}: {v}\r\n")?;
            }
        }
    }
    if method == "PUT" || !body.is_empty() {
        write!(head, "Content-Length: {}\r\n", body.len())?;
    }
    head.extend_from_slice(b"\r\n");
    Ok(())
}

/// Read and parse one response head from `conn` (skipping `100 Continue`).
pub async fn read_response_head(conn: &mut BufConn) -> io::Result<RespHead> {
    loop {
        if !conn.buffered().is_empty() {
            let parsed = {
                let mut hs = [httparse::EMPTY_HEADER; 48];
                let mut r = httparse::Response::new(&mut hs);
                match r.parse(conn.buffered()) {
                    Ok(Status::Complete(n)) => {
                        let mut h = RespHead {
                            status: r.code.unwrap_or(0),
                            ..RespHead::default()
                        };
                        for x in r.headers.iter() {
                            let v = std::str::from_utf8(x.value).unwrap_or("").trim();
                            if x.name.eq_ignore_ascii_case("content-length") {
                                h.content_length = v.parse().ok();
                            } else if x.name.eq_ignore_ascii_case("content-range") {
                                h.content_range = Some(v.to_owned());
                            } else if x.name.eq_ignore_ascii_case("transfer-encoding") {
                                h.chunked = v.to_ascii_lowercase().contains("chunked");
                            } else if x.name.eq_ignore_ascii_case("connection") {
                                h.close = v.eq_ignore_ascii_case("close");
                            } else if x.name.eq_ignore_ascii_case("etag") {
                                h.etag = Some(v.to_owned());
                            }
                        }
                        Some((h, n))
                    }
                    Ok(Status::Partial) => None,
                    Err(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "bad response head",
                        ))
                    }
                }
            };
            if let Some((h, n)) = parsed {
                conn.consume(n);
                if h.status == 100 {
                    continue;
                }
                return Ok(h);
            }
        }
        if conn.fill().await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// Percent-encode a key for a request path the way S3 clients do (`/` kept).
pub fn encode_path(bucket: &str, key: &str) -> String {
    let mut out = String::with_capacity(bucket.len() + key.len() + 2);
    out.push('/');
    out.push_str(bucket);
    out.push('/');
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
