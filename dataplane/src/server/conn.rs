//! One client connection: read request heads, hand each to the proxy, keep alive or close.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::{proxy, respond, WorkerCtx};
use crate::http::{parse_request, Limits, ParseError, RequestHead};
use crate::net::{BufStream, ClientConn, ClientStream};
use crate::s3::{new_request_id, S3Error};
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
pub async fn serve_connection(stream: ClientStream, ctx: Rc<WorkerCtx>) {
    let m = ctx.metrics();
    m.connections_open.fetch_add(1, Relaxed);
    WorkerMetrics::add(&m.connections_accepted, 1);
    let _ = stream.set_nodelay(true);
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
                refuse_head(&mut conn, &parse_error_to_s3(e), m).await;
                break;
            }
            Err(HeadError::Timeout) => {
                refuse_head(&mut conn, &S3Error::request_timeout(), m).await;
                break;
            }
        };
        let _inflight = ctx.begin_request();
        // The head may have waited out a reload: serve it with the newest configuration.
        let snapshot = ctx.snapshot.load_full();
        let keep_alive = proxy::handle(&mut conn, head, &ctx, &snapshot, &limits).await;
        if !keep_alive || ctx.draining() {
            break;
        }
    }
    let _ = conn.shutdown().await;
    m.connections_open.fetch_sub(1, Relaxed);
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

/// Answer a head that could not be read with `err`, and close.
async fn refuse_head(conn: &mut ClientConn, err: &S3Error, m: &WorkerMetrics) {
    let request_id = new_request_id();
    let reply = respond::ErrorReply {
        resource: "",
        request_id: &request_id,
        head_only: false,
        close: true,
    };
    let n = respond::write_error(conn, err, &reply, &[]).await;
    WorkerMetrics::add(&m.bytes_out, n);
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
