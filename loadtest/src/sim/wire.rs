//! The simulator's HTTP/1.1 wire: reading request heads, writing response heads and S3
//! error documents.

use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::time::SystemTime;

use httparse::Status;

use super::State;
use crate::http1::{header, BufConn};

/// A received request head, owned.
#[derive(Debug)]
pub(crate) struct Request {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: String,
    pub(super) headers: Vec<(String, String)>,
}

impl Request {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// Read the next request head; `None` at a clean end of stream.
pub(crate) async fn read_request(conn: &mut BufConn) -> io::Result<Option<Request>> {
    loop {
        if !conn.buffered().is_empty() {
            let parsed = {
                let mut hs = [httparse::EMPTY_HEADER; 96];
                let mut r = httparse::Request::new(&mut hs);
                match r.parse(conn.buffered()) {
                    Ok(Status::Complete(n)) => {
                        let target = r.path.unwrap_or("/");
                        let (path, query) = target.split_once('?').unwrap_or((target, ""));
                        let headers = r
                            .headers
                            .iter()
                            .map(|h| {
                                (
                                    h.name.to_ascii_lowercase(),
                                    String::from_utf8_lossy(h.value).into_owned(),
                                )
                            })
                            .collect();
                        Some((
                            Request {
                                method: r.method.unwrap_or("GET").to_owned(),
                                path: path.to_owned(),
                                query: query.to_owned(),
                                headers,
                            },
                            n,
                        ))
                    }
                    Ok(Status::Partial) => None,
                    Err(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "bad request head",
                        ))
                    }
                }
            };
            if let Some((req, n)) = parsed {
                conn.consume(n);
                return Ok(Some(req));
            }
        }
        if conn.fill().await? == 0 {
            return if conn.buffered().is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
    }
}

pub(super) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == name).then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

pub(super) fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

/// A response under construction: status, headers, body length.
pub(super) struct Head {
    buf: Vec<u8>,
}

impl Head {
    pub(super) fn new(state: &State, status: u16) -> Self {
        let reason = match status {
            200 => "OK",
            204 => "No Content",
            206 => "Partial Content",
            304 => "Not Modified",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            412 => "Precondition Failed",
            416 => "Range Not Satisfiable",
            501 => "Not Implemented",
            503 => "Service Unavailable",
            _ => "Unknown",
        };
        state.stats.status(status);
        let id = state.next_request_id.fetch_add(1, Relaxed);
        let mut h = Head {
            buf: Vec::with_capacity(512),
        };
        h.line(&format!("HTTP/1.1 {status} {reason}"));
        h.line(&format!("x-amz-request-id: {id:016X}"));
        h.line(&format!(
            "Date: {}",
            httpdate::fmt_http_date(SystemTime::now())
        ));
        h.line("Server: rangecache-loadtest-origin");
        h
    }

    pub(super) fn line(&mut self, l: &str) {
        self.buf.extend_from_slice(l.as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    pub(super) fn finish(mut self, content_length: u64) -> Vec<u8> {
        self.line(&format!("Content-Length: {content_length}"));
        self.buf.extend_from_slice(b"\r\n");
        self.buf
    }
}

pub(super) async fn send_error(
    conn: &mut BufConn,
    state: &State,
    (status, code, message): (u16, &str, &str),
    resource: &str,
    extra: &[String],
    head_only: bool,
) -> io::Result<()> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>sim</RequestId></Error>",
        xml_escape(message),
        xml_escape(resource)
    );
    let mut h = Head::new(state, status);
    h.line("Content-Type: application/xml");
    for l in extra {
        h.line(l);
    }
    let mut out = h.finish(body.len() as u64);
    if !head_only {
        out.extend_from_slice(body.as_bytes());
        state.stats.body_bytes.fetch_add(body.len() as u64, Relaxed);
    }
    conn.write_all(&out).await
}
