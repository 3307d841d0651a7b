//! One client connection: read request heads, hand each to the proxy, keep alive or close.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::outcome::Outcome;
use super::{proxy, respond, WorkerCtx};
use crate::http::{parse_request, Limits, ParseError, RequestHead};
use crate::net::{BufStream, ClientConn, ClientStream};
use crate::s3::S3Error;
use crate::WorkerMetrics;

/// Why no request head could be read.
enum HeadError {
    /// The client closed an idle connection, or stayed idle too long: close quietly.
    Gone,
    /// The head is malformed: answer with this error and close.
    Parse(ParseError),
    /// The head did not arrive in time: answer 400 RequestTimeout and close.
    Timeout,
}

/// Serve one accepted connection until the client closes it, an error forces a close, or the
/// worker drains.
pub async fn serve_connection(stream: ClientStream, peer: SocketAddr, ctx: Rc<WorkerCtx>) {
    let m = ctx.metrics();
    m.connections_open.fetch_add(1, Relaxed);
    WorkerMetrics::add(&m.connections_accepted, 1);
    let client = Some(peer);
    let mut conn = BufStream::new(stream);
    loop {
        let snapshot = ctx.snapshot.load_full();
        let settings = &snapshot.server;
        let limits = Limits {
            max_head_bytes: settings.max_head_bytes,
            max_headers: settings.max_headers,
            max_uri_bytes: settings.max_uri_bytes,
        };
        let head = match read_head(&mut conn, &limits, settings).await {
            Ok(head) => head,
            Err(HeadError::Gone) => break,
            Err(HeadError::Parse(e)) => {
                WorkerMetrics::add(&m.bad_requests, 1);
                answer_and_close(&mut conn, &ctx, &parse_error_to_s3(e), client).await;
                break;
            }
            Err(HeadError::Timeout) => {
                answer_and_close(&mut conn, &ctx, &S3Error::request_timeout(), client).await;
                break;
            }
        };
        let _inflight = ctx.begin_request();
        // The head may have waited out a reload: serve it with the newest configuration.
        let snapshot = ctx.snapshot.load_full();
        let outcome = Outcome::new(ctx.access_log.as_deref());
        let sent_before = conn.written();
        let from = effective_client(&snapshot, peer, &head, m);
        let keep_alive =
            proxy::handle(&mut conn, head, &ctx, &snapshot, &limits, &outcome, from).await;
        outcome.finish(&ctx, Some(from), conn.written() - sent_before);
        if !keep_alive || ctx.draining() {
            break;
        }
    }
    let _ = conn.shutdown().await;
    m.connections_open.fetch_sub(1, Relaxed);
}

/// The client of one request from `peer`: with `[proxy]` enabled, what a trusted peer's
/// forwarded header says (an untrusted peer's header is ignored and counted); `peer` otherwise.
fn effective_client(
    snapshot: &crate::Snapshot,
    peer: SocketAddr,
    head: &RequestHead,
    m: &WorkerMetrics,
) -> SocketAddr {
    match &snapshot.proxy {
        None => peer,
        Some(trust) => trust.client(peer, head).unwrap_or_else(|(peer, kind)| {
            m.edge.untrusted(kind);
            peer
        }),
    }
}

/// Time a connection refused at the connection limit gets to send its first bytes; those
/// that do are answered `503 SlowDown`, the others closed unanswered.
const REFUSE_WAIT: Duration = Duration::from_millis(100);

/// Refuse a connection the worker has no room for (`server.max_connections`): if the client
/// sends a request within [`REFUSE_WAIT`], answer `503 SlowDown` (S3 clients back off and
/// retry); then close. On a TLS listener the socket is closed at once: answering would need a
/// handshake, the very work there is no room for.
pub async fn refuse_connection(stream: monoio::net::TcpStream, peer: SocketAddr, ctx: &WorkerCtx) {
    if ctx.snapshot.load().server.tls.is_some() {
        return;
    }
    let client = Some(peer);
    let mut conn = BufStream::new(ClientStream::Plain(stream));
    if let Ok(Ok(1..)) = monoio::time::timeout(REFUSE_WAIT, conn.fill()).await {
        answer_and_close(&mut conn, ctx, &S3Error::slow_down(), client).await;
    }
    let _ = conn.shutdown().await;
}

/// Answer with `err` and `Connection: close` a connection that gets no request served (a
/// malformed or late head, no room at the connection limit), and account for it like any
/// request.
async fn answer_and_close(
    conn: &mut ClientConn,
    ctx: &WorkerCtx,
    err: &S3Error,
    client: Option<SocketAddr>,
) {
    let outcome = Outcome::new(ctx.access_log.as_deref());
    outcome.status(err.status());
    let reply = respond::ErrorReply {
        resource: "",
        request_id: outcome.request_id(),
        head_only: false,
        close: true,
    };
    let n = respond::write_error(conn, err, &reply, &[]).await;
    WorkerMetrics::add(&ctx.metrics().bytes_out, n);
    outcome.finish(ctx, client, n);
}

/// Read until one complete request head is buffered. The first byte may take up to the idle
/// timeout; once it arrived, the whole head must arrive within the header-read timeout.
async fn read_head(
    conn: &mut ClientConn,
    limits: &Limits,
    settings: &crate::ServerSettings,
) -> Result<RequestHead, HeadError> {
    let mut started: Option<Instant> = None;
    loop {
        if !conn.buffer().is_empty() {
            started.get_or_insert_with(Instant::now);
            match parse_request(conn.buffer(), limits) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(HeadError::Parse(e)),
            }
        }
        let wait = match started {
            None => settings.idle_timeout,
            Some(t) => match settings.header_read_timeout.checked_sub(t.elapsed()) {
                Some(left) => left,
                None => return Err(HeadError::Timeout),
            },
        };
        match monoio::time::timeout(wait, conn.fill()).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(HeadError::Gone),
            Ok(Ok(_)) => {}
            Err(_) if started.is_none() => return Err(HeadError::Gone),
            Err(_) => return Err(HeadError::Timeout),
        }
    }
}

/// The S3 error for a malformed request head.
fn parse_error_to_s3(e: ParseError) -> S3Error {
    match e.status() {
        431 => S3Error::request_header_section_too_large(),
        414 => S3Error::new("RequestURITooLong", 414, "Your request URI is too long."),
        501 => S3Error::new("NotImplemented", 501, e.message()),
        _ => S3Error::bad_request(e.message()),
    }
}
